"""GDPR: "Datenauskunft" (everything stored about one customer, history included) and
"Löschen auf Anfrage" (the customer anonymized in the live rows and in every version row;
statistics stay, issued invoices stay under the retention duty).

Which rows belong to a customer is read from the metadata: the customer row, every table
with a foreign key to customer.id, then every table with a foreign key to one of those
rows (pass redemptions, invoice lines …). A new table is found without a code change;
`ERASE` must say what erasure does with it (tests/test_gdpr.py fails otherwise)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_appbuilder import Model
from flask_babel import gettext as _
from sqlalchemy import Table, delete, false, func, or_, select, text, true, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement
from sqlalchemy_continuum import versioning_manager

from app.models import Customer, CustomerErasure, CustomerMerge, Invoice, model_for_table
from app.models.types import aware_utc, utcnow

RETENTION_REASON = "Aufbewahrungspflicht 10 Jahre (§ 147 AO, § 14b UStG)"
ERASED_NAME = "Gelöscht"
ERASED_TEXT = "gelöscht"
CUSTOMER_TABLE = "customer"
# Columns that hold a customer id without a foreign key (the removed customer of a merge is deleted).
CUSTOMER_ID_COLUMNS_WITHOUT_FK = {"customer_merge": ("removed_id",)}
NOT_LINKED = ("ab_", "transaction")  # FAB's users/roles and Continuum's transactions: not customer data


@dataclass(frozen=True)
class Rule:
    """What erasure does with a table's rows of the customer: `values` set on the live rows
    and on their version rows, `delete` removes the live rows (their version rows get
    `values`), `keep` names the text columns that hold no personal data (checked by the tests)."""

    values: dict[str, Any] = field(default_factory=dict)
    delete: bool = False
    keep: frozenset[str] = frozenset()


ERASE: dict[str, Rule] = {
    # customer: see _customer_values (names → placeholders, everything else personal emptied)
    CUSTOMER_TABLE: Rule(keep=frozenset({"country", "geocode_status", "language"})),
    "pet": Rule({"name": ERASED_NAME, "breed": None, "birth_date": None, "notes": None},
                keep=frozenset({"species"})),
    "document": Rule({"title": ERASED_NAME, "filename": ERASED_TEXT}, delete=True,
                     keep=frozenset({"stored_name", "content_type"})),
    "booking": Rule({"comment": None, "cancel_reason": None}, keep=frozenset({"source"})),
    "notification_log": Rule({"recipient": ERASED_TEXT, "error": None}, keep=frozenset({"kind", "channel", "status"})),
    "bonus_transaction": Rule({"reason": ERASED_TEXT}, keep=frozenset({"kind"})),
    # drafts are deleted (no document yet); issued/cancelled invoices are retained untouched
    "invoice": Rule({"note": None, "recipient_name": None, "recipient_address": None}, delete=True,
                    keep=frozenset({"number", "status"})),
    "invoice_line": Rule({"description": ERASED_TEXT}),  # a draft's lines go with the draft
    "booking_reminder": Rule(),  # booking, start time and log id: nothing personal
    "pass_card": Rule(),
    "pass_redemption": Rule(),
    "duplicate_dismissal": Rule(),
    "customer_merge": Rule(keep=frozenset({"moved", "filled"})),  # ids and field names only
    "customer_erasure": Rule(keep=frozenset({"retained"})),  # who and when, ids of what was retained
}


class ErasureRefused(ValueError):
    """Erasure not possible (German message); nothing was changed."""


# --- which tables and rows belong to a customer --------------------------------------
def _tables() -> dict[str, Table]:
    return dict(Model.metadata.tables)


def _version_tables() -> dict[str, Table]:
    """Live table name → its Continuum version table."""
    return {model.__table__.name: cls.__table__ for model, cls in versioning_manager.version_class_map.items()}


def _is_candidate(table: Table, version_names: set[str]) -> bool:
    return table.name not in version_names and not table.name.startswith(NOT_LINKED)


def linked_tables() -> dict[str, list[tuple[str, str]]]:
    """Table name → its links (column, parent table) to the customer, parents first:
    "customer" itself, tables with a foreign key to customer.id (only by those columns),
    then tables with a foreign key to rows of already linked tables."""
    tables, version_names = _tables(), {t.name for t in _version_tables().values()}
    links: dict[str, list[tuple[str, str]]] = {CUSTOMER_TABLE: []}
    for table in sorted(tables.values(), key=lambda t: t.name):
        if table.name == CUSTOMER_TABLE or not _is_candidate(table, version_names):
            continue
        found = [(fk.parent.name, CUSTOMER_TABLE) for fk in table.foreign_keys
                 if fk.column.table.name == CUSTOMER_TABLE]
        found += [(name, CUSTOMER_TABLE) for name in CUSTOMER_ID_COLUMNS_WITHOUT_FK.get(table.name, ())]
        if found:
            links[table.name] = sorted(found)
    changed = True
    while changed:
        changed = False
        for table in sorted(tables.values(), key=lambda t: t.name):
            if table.name in links or not _is_candidate(table, version_names):
                continue
            found = sorted((fk.parent.name, fk.column.table.name) for fk in table.foreign_keys
                           if fk.column.table.name in links and fk.column.name == "id")
            if found:
                links[table.name] = found
                changed = True
    return links


def absorbed_customer_ids(session: Session, customer_id: int) -> list[int]:
    """Customers merged into this one (not undone, transitively): the same person, whose
    earlier data lives on in their version rows."""
    found: list[int] = []
    todo = [customer_id]
    while todo:
        kept = todo.pop()
        for removed in session.scalars(select(CustomerMerge.removed_id).where(
                CustomerMerge.kept_id == kept, CustomerMerge.undone_at.is_(None))):
            if removed != customer_id and removed not in found and session.get(Customer, removed) is None:
                found.append(removed)
                todo.append(removed)
    return sorted(found)


class Scope:
    """WHERE clauses for the customer's rows: live rows (`live`) and version rows (`history`)."""

    def __init__(self, session: Session, customer_id: int):
        self.customer_id = customer_id
        self.customer_ids = [customer_id, *absorbed_customer_ids(session, customer_id)]
        self.links = linked_tables()
        self.tables = _tables()
        self.versions = _version_tables()
        self._live: dict[str, ColumnElement[bool]] = {}
        self._history: dict[str, ColumnElement[bool]] = {}

    def live(self, name: str) -> ColumnElement[bool]:
        if name not in self._live:
            table = self.tables[name]
            if name == CUSTOMER_TABLE:
                self._live[name] = table.c.id == self.customer_id
            else:
                terms = [table.c[col] == self.customer_id if parent == CUSTOMER_TABLE
                         else table.c[col].in_(select(self.tables[parent].c.id).where(self.live(parent)))
                         for col, parent in self.links[name]]
                self._live[name] = or_(*terms) if terms else false()
        return self._live[name]

    def history(self, name: str) -> ColumnElement[bool]:
        """Version rows that belonged to the customer (or to a customer merged into it) at their
        time, and those linked to any live or historic row of the parent tables."""
        if name not in self._history:
            table = self.versions[name]
            if name == CUSTOMER_TABLE:
                self._history[name] = table.c.id.in_(self.customer_ids)
            else:
                terms = [table.c[col].in_(self.customer_ids) if parent == CUSTOMER_TABLE
                         else table.c[col].in_(self.parent_ids(parent)) for col, parent in self.links[name]]
                self._history[name] = or_(*terms) if terms else false()
        return self._history[name]

    def parent_ids(self, name: str):
        """Ids of the parent table's rows now and in the past (a deleted booking's redemption)."""
        live = select(self.tables[name].c.id).where(self.live(name))
        if name not in self.versions:
            return live
        return live.union(select(self.versions[name].c.id).where(self.history(name)))


# --- Datenauskunft ------------------------------------------------------------------
def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return aware_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None
    return value


def _display_names(session: Session, table: Table, rows: list[dict[str, Any]], linked: set[str]) -> None:
    """Add "<column>_name" for references to rows outside the customer's data (service,
    employee, status, staff user …): never for another customer's row."""
    from app.services.history import user_names

    for fk in table.foreign_keys:
        target, column = fk.column.table, fk.parent.name
        if target.name in linked:
            continue
        ids = {row[column] for row in rows if row.get(column) is not None}
        if not ids:
            continue
        if target.name == "ab_user":
            names = user_names(session, ids)
        else:
            cls = next((m.class_ for m in Model.registry.mappers if m.local_table is target), None)
            if cls is None:
                continue
            names = {obj.id: str(obj) for obj in session.scalars(select(cls).where(cls.id.in_(ids)))}
        key = f"{column[:-3] if column.endswith('_id') else column}_name"
        for row in rows:
            if row.get(column) is not None:
                row[key] = names.get(row[column])


def collect(session: Session, customer_id: int) -> dict[str, list[dict[str, Any]]]:
    """Everything stored about the customer: table name → rows (column → value), the live
    tables first, then "<table>_version" with each version's transaction time and user."""
    from app.services.history import user_names

    scope = Scope(session, customer_id)
    data: dict[str, list[dict[str, Any]]] = {}
    linked = set(scope.links)
    for name in scope.links:
        table = scope.tables[name]
        rows = [dict(row._mapping) for row in session.execute(
            select(table).where(scope.live(name)).order_by(*table.primary_key.columns))]
        _display_names(session, table, rows, linked)
        data[name] = rows
    tx_table = versioning_manager.transaction_cls.__table__
    for name in scope.links:
        if name not in scope.versions:
            continue
        version = scope.versions[name]
        stmt = (select(version, tx_table.c.issued_at.label("transaction_issued_at"),
                       tx_table.c.user_id.label("transaction_user_id"))
                .join(tx_table, tx_table.c.id == version.c.transaction_id, isouter=True)
                .where(scope.history(name)).order_by(version.c.id, version.c.transaction_id))
        rows = [dict(row._mapping) for row in session.execute(stmt)]
        users = user_names(session, {row["transaction_user_id"] for row in rows})
        for row in rows:
            row["transaction_user"] = users.get(row["transaction_user_id"])
        data[version.name] = rows
    return data


def columns_of(rows: list[dict[str, Any]], session_table: Table | None) -> list[str]:
    """The column order of a table's sheet: the table's columns, then added ones."""
    names = [c.name for c in session_table.columns] if session_table is not None else []
    for row in rows:
        names += [key for key in row if key not in names]
    return names


def export_json(session: Session, customer_id: int) -> str:
    data = collect(session, customer_id)
    document = {
        "customer_id": customer_id,
        "generated_at": utcnow().isoformat(),
        "tables": {name: [{key: _json_value(value) for key, value in row.items()} for row in rows]
                   for name, rows in data.items()},
    }
    return json.dumps(document, ensure_ascii=False, indent=2, default=str)


def export_sheets(session: Session, customer_id: int) -> Iterator[tuple[str, list[str], list[dict[str, Any]]]]:
    """(table name, columns, rows) for the XLSX: one sheet per table, empty ones included."""
    tables = _tables()
    for name, rows in collect(session, customer_id).items():
        yield name, columns_of(rows, tables.get(name)), rows


# --- Löschen auf Anfrage ------------------------------------------------------------
def _customer_values(customer_id: int) -> dict[str, Any]:
    return {
        "first_name": ERASED_NAME, "last_name": f"#{customer_id}", "emoji_marker": None, "email": None,
        "phone": None, "street": None, "postal_code": None, "city": None, "birth_date": None, "lat": None,
        "lon": None, "geocoded_at": None, "geocode_status": None, "geocoded_address": None, "notes": None,
        "consent_email": False, "consent_sms": False, "consent_at": None, "referred_by_id": None,
    }


def retained_invoices(session: Session, customer_id: int) -> list[Invoice]:
    """Issued and cancelled invoices: kept untouched under the retention duty."""
    return list(session.scalars(select(Invoice).where(Invoice.customer_id == customer_id,
                                                      Invoice.status != "draft").order_by(Invoice.id)))


def _not_retained(name: str, table: Table) -> ColumnElement[bool]:
    """Leaves out what erasure must not touch: issued and cancelled invoices (of anyone) and
    their lines, live and in the history (their draft versions included)."""
    issued = select(Invoice.id).where(Invoice.status != "draft")
    if name == "invoice":
        return table.c.id.not_in(issued)
    if name == "invoice_line":
        return table.c.invoice_id.not_in(issued)
    return true()


def erasure_preview(session: Session, customer_id: int) -> dict[str, Any]:
    """What erasure would change: per table (live rows, version rows, deleted?) and the retained
    invoices. Tables erasure leaves as they are (pass cards: no personal data) are left out."""
    scope = Scope(session, customer_id)
    invoices = retained_invoices(session, customer_id)
    counts: dict[str, tuple[int, int, bool]] = {}
    for name in scope.links:
        rule = ERASE.get(name, Rule())
        if name != CUSTOMER_TABLE and not (rule.values or rule.delete):
            continue
        table = scope.tables[name]
        live = session.scalar(select(func.count()).select_from(table).where(
            scope.live(name), _not_retained(name, table))) or 0
        versions = 0
        if name in scope.versions:
            version = scope.versions[name]
            versions = session.scalar(select(func.count()).select_from(version).where(
                scope.history(name), _not_retained(name, version))) or 0
        if live or versions:
            counts[name] = (live, versions, rule.delete or name == "invoice_line")  # lines go with their draft
    return {"counts": counts, "retained": invoices}


def _compact_search_indexes(session: Session) -> None:
    """SQLite's FTS5 indexes (booking comments) keep a removed text's tokens in their segments
    until those are merged: merge them now, so the erased words are gone from the file's tables."""
    if session.get_bind().dialect.name != "sqlite":
        return
    for (name,) in session.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%fts5%'")):
        session.execute(text(f'INSERT INTO "{name}"("{name}") VALUES (\'optimize\')'))


def erase_customer(session: Session, customer_id: int) -> CustomerErasure:
    """Anonymize the customer in one transaction (flushes; the caller commits): the live rows
    through the ORM (Continuum records the change), then every version row of them, those just
    written included. Documents (rows, and their files after the commit) and draft invoices
    are deleted; issued/cancelled invoices stay untouched (an invoice issued without its addressee
    gets the name and address copied in first) and are listed in `retained`.
    LookupError for a missing customer, ErasureRefused (German) when already erased."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise LookupError(customer_id)
    if customer.erased_at is not None:
        raise ErasureRefused(_("Diese Kund:in wurde bereits auf Anfrage gelöscht; es wurde nichts geändert."))
    scope = Scope(session, customer_id)
    invoices = retained_invoices(session, customer_id)
    unknown = sorted(set(scope.links) - set(ERASE))
    if unknown:  # a new table linked to customers: decide in ERASE before erasing anything
        raise ErasureRefused(_("Löschen nicht möglich: für diese Tabellen ist keine Löschregel festgelegt: "
                               "%(tables)s", tables=", ".join(unknown)))
    for invoice in invoices:  # the retained invoice keeps its addressee (§ 14 UStG)
        invoice.keep_recipient()
    with session.no_autoflush:
        for name, value in _customer_values(customer_id).items():
            setattr(customer, name, value)
        customer.erased_at = utcnow()
        for name in reversed(list(scope.links)):  # children first: a draft's lines before the draft
            rule, cls = ERASE[name], model_for_table(_tables()[name])
            if name == CUSTOMER_TABLE or not (rule.values or rule.delete):
                continue
            table = scope.tables[name]
            ids = select(table.c.id).where(scope.live(name), _not_retained(name, table))
            if cls is None:  # a plain table: no history, no ORM events
                stmt = delete(table) if rule.delete else update(table).values(rule.values)
                session.execute(stmt.where(table.c.id.in_(ids)))
                continue
            rows = list(session.scalars(select(cls).where(cls.id.in_(ids))))
            for row in rows:
                if rule.delete:
                    session.delete(row)
                else:
                    for key, value in rule.values.items():
                        setattr(row, key, value)
    session.flush()  # Continuum writes this transaction's version rows now
    for name in scope.links:
        if name not in scope.versions:
            continue
        version = scope.versions[name]
        if name == CUSTOMER_TABLE:
            for pk in scope.customer_ids:
                values = {k: v for k, v in _customer_values(pk).items() if k in version.c}
                if pk != customer_id:  # a merged-away duplicate: restored from its versions, it comes back erased
                    values["erased_at"] = customer.erased_at
                session.execute(update(version).where(version.c.id == pk).values(values))
            continue
        values = {k: v for k, v in ERASE[name].values.items() if k in version.c}
        if values:
            session.execute(update(version).where(scope.history(name), _not_retained(name, version))
                            .values(values))
    _compact_search_indexes(session)
    erasure = CustomerErasure(customer_id=customer_id, retained=[
        {"table": "invoice", "id": inv.id, "number": inv.number, "reason": RETENTION_REASON} for inv in invoices])
    session.add(erasure)
    session.flush()
    return erasure


