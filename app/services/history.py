"""The audit trail read from SQLAlchemy-Continuum's version tables: what changed
when and by whom (`versions_of`), putting a row back to an earlier state
(`revert_row`), bringing a deleted booking or customer back (`deleted_entries`,
`restore_row`) and removing old history (`purge_history`)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, exists, func, literal, select, union_all
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import MANYTOONE, Session, aliased, selectinload
from sqlalchemy_continuum import versioning_manager

from app.formatting import fmt_date, fmt_datetime, fmt_money
from app.models.types import aware_utc
from app.security import SYSTEM_USERNAME

INSERT, UPDATE, DELETE = 0, 1, 2
OPERATIONS = {INSERT: _l("angelegt"), UPDATE: _l("geändert"), DELETE: _l("gelöscht")}
RESTORED = _l("wiederhergestellt")  # an insert that follows a delete of the same row
TECHNICAL_COLUMNS = {"transaction_id", "end_transaction_id", "operation_type"}
RETENTION_KEY = "history_retention_days"
# What the Verlauf shows per model (by class name), decided here for every screen:
# columns left out (derived ones that mirror another field; a revert still copies
# them) and labels for columns no view labels.
HISTORY_HIDDEN: dict[str, set[str]] = {
    "Booking": {"cancelled", "shared_slot"},  # mirror the status's kind / the service's shared slots
    "BookingStatus": {"builtin"},  # set by the seed, never by a screen
    "Document": {"stored_name"},  # the file's internal name on disk
}
HISTORY_LABELS: dict[str, dict[str, Any]] = {
    "Customer": {"lat": _l("Breitengrad"), "lon": _l("Längengrad"), "geocoded_at": _l("Geokodiert am"),
                 "created_by_id": _l("Angelegt von")},
    "Location": {"lat": _l("Breitengrad"), "lon": _l("Längengrad")},
    "BonusTransaction": {"created_by_id": _l("Erfasst von"), "referred_customer_id": _l("Empfohlene Kund:in (Nr.)")},
}


@dataclass
class FieldChange:
    label: str
    old: str
    new: str


@dataclass
class VersionEntry:
    transaction_id: int
    issued_at: datetime | None  # aware UTC
    when: str  # business-local
    who: str
    operation_type: int
    operation: str
    changes: list[FieldChange] = field(default_factory=list)
    revertible: bool = False  # every version but the current state and deletes


@dataclass
class DeletedEntry:
    kind: str  # "booking" | "customer"
    id: int
    transaction_id: int
    when: str
    who: str
    summary: str


# --- reading ------------------------------------------------------------------
def is_versioned(model: type) -> bool:
    return model in versioning_manager.version_class_map


def version_cls(model: type) -> type:
    return versioning_manager.version_class_map[model]


def transaction_cls() -> type:
    return versioning_manager.transaction_cls



def data_columns(model: type) -> list[str]:
    """Attribute names of the versioned columns (no primary key, no Continuum columns)."""
    table = version_cls(model).__table__
    mapper = sa_inspect(model)
    names = []
    for column in table.columns:
        if column.name in TECHNICAL_COLUMNS or column.name.endswith("_mod") or column.name == "id":
            continue
        if column.name in mapper.columns:
            names.append(mapper.get_property_by_column(mapper.columns[column.name]).key)
    return names


def shown_columns(model: type) -> list[str]:
    """The versioned columns the Verlauf shows (HISTORY_HIDDEN left out)."""
    hidden = HISTORY_HIDDEN.get(model.__name__, set())
    return [key for key in data_columns(model) if key not in hidden]


def history_labels(model: type, labels: Mapping[str, Any]) -> dict[str, Any]:
    """A view's labels plus the model's HISTORY_LABELS."""
    return {**labels, **HISTORY_LABELS.get(model.__name__, {})}


def user_columns(model: type) -> set[str]:
    """Attributes that refer to a FAB user (shown by the user's name)."""
    mapper = sa_inspect(model)
    user_table = current_app.appbuilder.sm.user_model.__tablename__
    return {mapper.get_property_by_column(column).key for column in mapper.local_table.columns
            if any(fk.column.table.name == user_table for fk in column.foreign_keys)}


def foreign_keys(model: type) -> dict[str, tuple[str, type, bool]]:
    """Foreign-key attribute → (relation name, related model, nullable)."""
    mapper = sa_inspect(model)
    found = {}
    for rel in mapper.relationships:
        if rel.direction is not MANYTOONE or len(rel.local_columns) != 1:
            continue
        column = next(iter(rel.local_columns))
        if column.table is not mapper.local_table:
            continue
        key = mapper.get_property_by_column(column).key
        found.setdefault(key, (rel.key, rel.mapper.class_, column.nullable))
    return found


def user_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of FAB users in one query; "System" for the system user."""
    ids = {uid for uid in user_ids if uid is not None}
    if not ids:
        return {}
    user_model = current_app.appbuilder.sm.user_model
    names = {}
    for user in session.scalars(select(user_model).where(user_model.id.in_(ids))):
        if user.username == SYSTEM_USERNAME:
            names[user.id] = _("System")
        else:
            names[user.id] = f"{user.first_name} {user.last_name}".strip() or user.username
    return names


def related_names(session: Session, wanted: Mapping[type, set[int]]) -> dict[tuple[type, int], str]:
    """str() of the related rows the current user may see (row rules): one query per
    related model (their own many-to-one relations loaded along, so a booking's
    str() costs no query per booking). A row missing here is shown by its id."""
    from app.security import restrict

    names: dict[tuple[type, int], str] = {}
    for model, ids in wanted.items():
        ids = {pk for pk in ids if pk is not None}
        if not ids:
            continue
        loads = [selectinload(getattr(model, rel.key)) for rel in sa_inspect(model).relationships
                 if rel.direction is MANYTOONE]
        stmt = restrict(select(model).where(model.id.in_(ids)), model).options(*loads)
        for row in session.scalars(stmt):
            names[(model, row.id)] = str(row)
    return names


def field_label(labels: Mapping[str, Any], key: str, fks: Mapping[str, tuple[str, type, bool]]) -> str:
    if key in labels:
        return str(labels[key])
    if key in fks and fks[key][0] in labels:
        return str(labels[fks[key][0]])
    return key


def _is_money(key: str) -> bool:
    return "price" in key


def format_value(key: str, value: Any, fk: tuple[str, type, bool] | None = None,
                 names: Mapping[tuple[type, int], str] | None = None, users: Mapping[int, str] | None = None) -> str:
    if value is None or value == "":
        return "–"
    if users is not None:
        return users.get(value, f"#{value}")
    if fk is not None:
        name = (names or {}).get((fk[1], value))
        return name if name is not None else f"#{value}"  # deleted, or not visible to the user
    if isinstance(value, bool):
        return _("Ja") if value else _("Nein")
    if isinstance(value, datetime):
        return fmt_datetime(aware_utc(value))
    if isinstance(value, date):
        return fmt_date(value)
    if isinstance(value, Decimal):
        if _is_money(key):
            return fmt_money(value)
        return f"{value:f}".replace(".", ",")
    return str(value)


def _diff(model: type, version: Any, previous: Any | None, keys: list[str]) -> list[tuple[str, Any, Any]]:
    if version.operation_type == DELETE:
        return []
    if previous is None or previous.operation_type == DELETE:
        return [(key, None, getattr(version, key)) for key in keys if getattr(version, key) not in (None, "")]
    return [(key, getattr(previous, key), getattr(version, key)) for key in keys
            if getattr(previous, key) != getattr(version, key)]


def versions_of(model: type, pk: Any, labels: Mapping[str, Any] | None = None, *, limit: int = 50,
                before: int | None = None, session: Session | None = None,
                choices: Mapping[str, Mapping[Any, Any]] | None = None) -> list[VersionEntry]:
    """The row's versions, newest first (at most `limit`, older than transaction
    `before` when given), each with the changed fields against the version before
    it (the first version lists the fields it set), labelled with `labels` and the
    model's HISTORY_LABELS, HISTORY_HIDDEN left out; `choices` maps a column's stored
    values to their German names (source "phone" → "Telefon"). A constant number of queries:
    versions, users, and one per related model."""
    from app.extensions import db

    session = session or db.session
    cls, tx_cls = version_cls(model), transaction_cls()
    stmt = (select(cls, tx_cls.issued_at, tx_cls.user_id)
            .join(tx_cls, tx_cls.id == cls.transaction_id, isouter=True)
            .where(cls.id == pk).order_by(cls.transaction_id.desc()).limit(limit + 1))
    if before is not None:
        stmt = stmt.where(cls.transaction_id < before)
    rows = session.execute(stmt).all()
    keys, fks, by_user = shown_columns(model), foreign_keys(model), user_columns(model)
    previous = [rows[i + 1][0] if i + 1 < len(rows) else None for i in range(len(rows[:limit]))]
    diffs = [_diff(model, row[0], prev, keys) for row, prev in zip(rows[:limit], previous, strict=False)]
    wanted: dict[type, set[int]] = {}
    user_ids = {row[2] for row in rows[:limit]}
    for changes in diffs:
        for key, old, new in changes:
            if key in fks:
                wanted.setdefault(fks[key][1], set()).update({old, new})
            elif key in by_user:
                user_ids.update({old, new})
    names = related_names(session, wanted)
    users = user_names(session, user_ids)
    labels = history_labels(model, labels or {})

    def shown(key: str, value: Any) -> str:
        chosen = str((choices or {}).get(key, {}).get(value, ""))
        return chosen or format_value(key, value, fks.get(key), names, users if key in by_user else None)

    return [VersionEntry(
        transaction_id=version.transaction_id,
        issued_at=aware_utc(issued_at),
        when=fmt_datetime(aware_utc(issued_at)),
        who=users.get(user_id, _("Unbekannt")),
        operation_type=version.operation_type,
        operation=_operation(version, prev),
        changes=[FieldChange(field_label(labels, key, fks), shown(key, old), shown(key, new))
                 for key, old, new in changes],
        revertible=version.operation_type != DELETE and not (before is None and index == 0),
    ) for index, ((version, issued_at, user_id), prev, changes) in enumerate(
        zip(rows[:limit], previous, diffs, strict=False))]


def _operation(version: Any, previous: Any | None) -> str:
    if version.operation_type == INSERT and previous is not None and previous.operation_type == DELETE:
        return str(RESTORED)
    return str(OPERATIONS.get(version.operation_type, version.operation_type))


def version_at(session: Session, model: type, pk: Any, transaction_id: int) -> Any | None:
    cls = version_cls(model)
    return session.scalar(select(cls).where(cls.id == pk, cls.transaction_id == transaction_id))


def has_older(session: Session, model: type, pk: Any, transaction_id: int) -> bool:
    cls = version_cls(model)
    return session.scalar(select(exists().where(cls.id == pk, cls.transaction_id < transaction_id))) or False


# --- writing ------------------------------------------------------------------
def _check_references(session: Session, model: type, values: dict[str, Any]) -> None:
    """A referenced row that no longer exists: a required one refuses the change
    with a German message, an optional one is left empty."""
    for key, (_rel, related, nullable) in foreign_keys(model).items():
        value = values.get(key)
        if value is None or session.get(related, value) is not None:
            continue
        if not nullable:
            raise ValueError(_("Der frühere Stand verweist auf einen Eintrag, den es nicht mehr gibt."))
        values[key] = None


def _store(session: Session, item: Any) -> None:
    """Flush now: a booking through flush_booking (an overlap becomes the German
    BookingOverlap message), any other refusal of the database a German message;
    both roll the session back, nothing is stored."""
    from app.models import Booking
    from app.services.bookings import flush_booking

    if isinstance(item, Booking):
        try:
            flush_booking(session, item)
        except IntegrityError as exc:  # not an overlap (flush_booking rolled back already)
            raise ValueError(_("Der frühere Stand verletzt eine Regel der Datenbank.")) from exc
        return
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise ValueError(_("Der frühere Stand verletzt eine Regel der Datenbank "
                           "(z. B. eine E-Mail-Adresse, die jetzt ein anderer Eintrag hat).")) from exc


def revert_row(session: Session, item: Any, transaction_id: int) -> None:
    """Copy the columns of the item's version of `transaction_id` onto the item and
    flush (the caller commits: Continuum records it as a new version of the acting
    user). ValueError with a German message when refused; nothing is stored then."""
    model = type(item)
    version = version_at(session, model, sa_inspect(item).identity[0], transaction_id)
    if version is None or version.operation_type == DELETE:
        raise ValueError(_("Diese Version gibt es nicht."))
    values = {key: getattr(version, key) for key in data_columns(model)}
    _check_references(session, model, values)
    if model.__name__ == "Booking" and values.get("price") != item.price:
        from app.services.bonus import check_price_revert

        check_price_revert(session, item)
    for key, value in values.items():
        if getattr(item, key) != value:
            setattr(item, key, value)
    _store(session, item)


def last_live_versions(session: Session, model: type, ids: Iterable[int]) -> dict[int, Any]:
    """For each id the newest version that is not a delete, in one query."""
    cls = version_cls(model)
    ids = list(ids)
    if not ids:
        return {}
    found: dict[int, Any] = {}
    rows = session.scalars(select(cls).where(cls.id.in_(ids), cls.operation_type != DELETE)
                           .order_by(cls.id, cls.transaction_id.desc()))
    for version in rows:
        found.setdefault(version.id, version)
    return found


def _deleted_ids_stmt(model: type, kind: str):
    """(kind, id, transaction_id) of rows whose newest version is a delete and
    that do not exist now."""
    cls = version_cls(model)
    newer = aliased(cls)
    return (select(literal(kind).label("kind"), cls.id.label("id"), cls.transaction_id.label("transaction_id"))
            .where(cls.operation_type == DELETE,
                   ~exists().where(newer.id == cls.id, newer.transaction_id > cls.transaction_id),
                   ~exists().where(model.id == cls.id)))


def restorable_models() -> dict[str, type]:
    from app.models import Booking, Customer

    return {"booking": Booking, "customer": Customer}


def deleted_entries(session: Session, page: int = 0, page_size: int = 25) -> tuple[int, list[DeletedEntry]]:
    """Deleted bookings and customers, newest delete first, one page: (total, entries)."""
    union = union_all(*(_deleted_ids_stmt(model, kind) for kind, model in restorable_models().items())).subquery()
    total = session.scalar(select(func.count()).select_from(union)) or 0
    rows = session.execute(select(union.c.kind, union.c.id, union.c.transaction_id)
                           .order_by(union.c.transaction_id.desc(), union.c.kind, union.c.id)
                           .limit(page_size).offset(page * page_size)).all()
    tx_cls = transaction_cls()
    txs = {tx.id: tx for tx in session.scalars(select(tx_cls).where(tx_cls.id.in_({r[2] for r in rows})))}
    users = user_names(session, (tx.user_id for tx in txs.values()))
    summaries = _summaries(session, rows)
    return total, [
        DeletedEntry(kind=kind, id=pk, transaction_id=tx_id,
                     when=fmt_datetime(aware_utc(txs[tx_id].issued_at)) if tx_id in txs else "",
                     who=users.get(txs[tx_id].user_id, _("Unbekannt")) if tx_id in txs else _("Unbekannt"),
                     summary=summaries.get((kind, pk), ""))
        for kind, pk, tx_id in rows
    ]


def _summaries(session: Session, rows: list) -> dict[tuple[str, int], str]:
    from app.models import Customer, Service

    models = restorable_models()
    live = {kind: last_live_versions(session, models[kind], [r[1] for r in rows if r[0] == kind])
            for kind in models}
    bookings = live["booking"].values()
    names = related_names(session, {Customer: {v.customer_id for v in bookings},
                                    Service: {v.service_id for v in bookings}})
    deleted_customers = last_live_versions(
        session, Customer, [v.customer_id for v in bookings if (Customer, v.customer_id) not in names])
    for pk, version in deleted_customers.items():
        names[(Customer, pk)] = _("%(name)s (gelöscht)", name=f"{version.first_name} {version.last_name}")
    found = {}
    for pk, version in live["booking"].items():
        found[("booking", pk)] = " · ".join((
            fmt_datetime(aware_utc(version.start_at)),
            names.get((Customer, version.customer_id), "–"),
            names.get((Service, version.service_id), "–"),
        ))
    for pk, version in live["customer"].items():
        found[("customer", pk)] = f"{version.first_name} {version.last_name}"
    return found


def is_deleted(session: Session, model: type, pk: int) -> int | None:
    """The transaction id of the row's delete when its newest version is a delete
    and the row does not exist now, else None."""
    cls = version_cls(model)
    newest = session.scalar(select(cls).where(cls.id == pk).order_by(cls.transaction_id.desc()).limit(1))
    if newest is None or newest.operation_type != DELETE or session.get(model, pk) is not None:
        return None
    return newest.transaction_id


def pets_deleted_with(session: Session, customer_id: int, delete_tx: int) -> list[int]:
    """Ids of the customer's pets that went with it: missing now, and their newest
    version belongs to the customer and is no delete of its own (the database's
    ON DELETE CASCADE removes them without a version) or the delete of the same
    transaction. A pet deleted on its own before stays deleted."""
    from app.models import Pet

    cls = version_cls(Pet)
    ids = set(session.scalars(select(cls.id).where(cls.customer_id == customer_id)))
    ids -= set(session.scalars(select(Pet.id).where(Pet.id.in_(ids)))) if ids else set()
    newest: dict[int, Any] = {}
    for version in session.scalars(select(cls).where(cls.id.in_(ids)).order_by(cls.id, cls.transaction_id.desc())):
        newest.setdefault(version.id, version)
    return sorted(pk for pk, version in newest.items() if version.customer_id == customer_id and (
        version.operation_type != DELETE or version.transaction_id == delete_tx))


def _recreate(session: Session, model: type, pk: int) -> Any:
    version = last_live_versions(session, model, [pk]).get(pk)
    if version is None:
        raise ValueError(_("Für diesen Eintrag gibt es keinen früheren Stand."))
    values = {key: getattr(version, key) for key in data_columns(model)}
    _check_references(session, model, values)
    item = model(id=pk, **values)
    session.add(item)
    return item


def restore_row(session: Session, model: type, pk: int) -> tuple[Any, int]:
    """Recreate a deleted row (same id) from its last version before the delete;
    for a customer also the pets deleted with it. Returns (row, pets restored).
    The caller commits (Continuum records new versions of the acting user).
    ValueError with a German message when refused; nothing is stored then."""
    from app.models import Booking, Customer, Pet, Service

    delete_tx = is_deleted(session, model, pk)
    if delete_tx is None:
        raise LookupError(pk)
    if model is Booking:
        version = last_live_versions(session, Booking, [pk]).get(pk)
        if version is not None and (session.get(Customer, version.customer_id) is None
                                    or session.get(Service, version.service_id) is None):
            raise ValueError(_("Der Termin kann nicht wiederhergestellt werden: die Kund:in oder die "
                               "Dienstleistung gibt es nicht mehr."))
    item = _recreate(session, model, pk)
    pets = 0
    if model is Customer:
        session.flush()  # the customer first: the pets refer to it
        for pet_id in pets_deleted_with(session, pk, delete_tx):
            _recreate(session, Pet, pet_id)
            pets += 1
    _store(session, item)
    return item, pets


# --- retention ----------------------------------------------------------------
def parse_retention_days(value: str | None) -> int | None:
    """The setting's value as days; None = keep forever (empty or 0).
    ValueError with a German message for anything else than a whole number ≥ 0."""
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(_("Aufbewahrung des Verlaufs: bitte eine ganze Zahl ≥ 0 eingeben "
                           "(leer oder 0 = unbegrenzt)."))
    return int(text) or None


def retention_days(session: Session) -> int | None:
    from app.models import Setting

    value = session.scalar(select(Setting.value).where(Setting.key == RETENTION_KEY))
    try:
        return parse_retention_days(value)
    except ValueError:
        return None  # a broken value never deletes history


def _purge_filter(model: type, cls: type, old_transactions):
    """Version rows of old transactions, except the newest version of a row that still exists."""
    table = cls.__table__
    newest = aliased(cls)
    keep = and_(
        table.c.transaction_id == select(func.max(newest.transaction_id)).where(newest.id == table.c.id)
        .scalar_subquery(),
        exists().where(model.id == table.c.id),
    )
    return and_(table.c.transaction_id.in_(old_transactions), ~keep)


def purge_cutoff(session: Session, now: datetime | None = None) -> datetime | None:
    days = retention_days(session)
    if days is None:
        return None
    now = now or datetime.now(timezone.utc)
    return (now.astimezone(timezone.utc) - timedelta(days=days)).replace(tzinfo=None)


def purgeable_count(session: Session, now: datetime | None = None) -> int:
    """How many version rows `purge_history` would remove now."""
    cutoff = purge_cutoff(session, now)
    if cutoff is None:
        return 0
    tx_cls = transaction_cls()
    old = select(tx_cls.id).where(tx_cls.issued_at < cutoff)
    return sum(session.scalar(select(func.count()).select_from(cls.__table__).where(_purge_filter(model, cls, old)))
               or 0 for model, cls in versioning_manager.version_class_map.items())


def purge_history(session: Session, now: datetime | None = None) -> int:
    """Remove history older than the setting `history_retention_days` (empty or 0:
    keep forever, nothing is removed). Rule, on every versioned table: a version
    whose transaction was issued before now − days is removed, except the newest
    version of a row that still exists — a current row keeps its baseline, so its
    Verlauf starts at that state; a deleted row older than the limit loses its
    whole history (and can no longer be restored). Transactions no version refers
    to any more are removed too. The caller commits; returns the number of version rows removed."""
    cutoff = purge_cutoff(session, now)
    if cutoff is None:
        return 0
    tx_cls = transaction_cls()
    old = select(tx_cls.id).where(tx_cls.issued_at < cutoff)
    removed = 0
    for model, cls in versioning_manager.version_class_map.items():
        result = session.execute(delete(cls.__table__).where(_purge_filter(model, cls, old)))
        removed += result.rowcount or 0
    referenced = [exists().where(cls.__table__.c.transaction_id == tx_cls.id)
                  for cls in versioning_manager.version_class_map.values()]
    session.execute(delete(tx_cls.__table__).where(tx_cls.__table__.c.issued_at < cutoff,
                                                   *[~ref for ref in referenced]))
    return removed


def entry_summary(session: Session, kind: str, pk: int) -> str:
    """The summary the Gelöschte-Einträge list shows for one deleted row."""
    return _summaries(session, [(kind, pk, None)]).get((kind, pk), "")
