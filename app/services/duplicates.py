"""Duplicate customers: candidate pairs (blocking + scoring), "Keine Dublette", merge and its undo.

Candidate search is not quadratic: every customer gets a few blocking keys (normalized
e-mail, E.164 phone, the Kölner-Phonetik codes of last + first name in either order) and
only customers sharing a key are compared. A block larger than MAX_BLOCK is compared as a
sorted neighbourhood (each customer with the next WINDOW ones in name order).

A merge moves every row that references the removed customer — found through the foreign
keys to `customer.id` in the metadata, so a future table is moved too — fills the kept
customer's empty fields, deletes the removed customer, and records all of it in a
CustomerMerge row so the Owner can undo it."""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from flask_appbuilder import Model
from flask_babel import gettext as _
from sqlalchemy import Table, or_, select, update
from sqlalchemy.orm import Session

from app.extensions import acting_user_id
from app.models import BonusTransaction, Customer, CustomerMerge, DuplicateDismissal, Invoice, model_for_table
from app.models.types import utcnow
from app.services.bonus import reverse, reverse_merged_referral
from app.services.phone import normalize_phone
from app.services.phonetics import cologne, fold


def N_(message: str) -> str:
    """Marks a string for `pybabel extract`; the reasons stay German (templates translate them)."""
    return message


REASON_EMAIL = N_("gleiche E-Mail-Adresse")
REASON_PHONE = N_("gleiche Telefonnummer")
REASON_SAME_NAME = N_("gleicher Name")
REASON_PHONETIC = N_("ähnlicher Name (Kölner Phonetik)")
REASON_SIMILAR = N_("ähnlich geschriebener Name")
REASON_SWAPPED = N_("Vor- und Nachname vertauscht")
REASON_ABBREVIATED = N_("Vorname abgekürzt")
REASON_BIRTH_DATE = N_("gleiches Geburtsdatum")
REASON_POSTAL_CODE = N_("gleiche Postleitzahl")

MIN_SCORE = 40
NAME_ONLY_MAX = 55  # same name (50) + same postal code (5): the most a pair gets without contact data
NAME_BLOCK = "n:"
MAX_BLOCK = 200
WINDOW = 30


@dataclass(frozen=True)
class Candidate:
    low_id: int
    high_id: int
    score: int  # 0..100
    reasons: tuple[str, ...]  # German (msgids), best evidence first


@dataclass(slots=True)
class _Person:
    id: int
    first: str  # folded spelling
    last: str
    first_code: str  # Kölner Phonetik
    last_code: str
    email: str | None
    phone: str | None
    birth_date: date | None
    postal_code: str | None
    sig: tuple[str, str] = ("", "")  # (last_code, first_code)
    rev: tuple[str, str] = ("", "")  # (first_code, last_code)


def normalize_email(email: str | None) -> str | None:
    text = (email or "").strip().lower()
    return text or None


def person_record(pk: int, first_name: str | None, last_name: str | None, email: str | None,
                  phone: str | None, birth_date: date | None = None, postal_code: str | None = None) -> _Person:
    first_code, last_code = cologne(first_name or ""), cologne(last_name or "")
    return _Person(
        id=pk, first=fold(first_name), last=fold(last_name), first_code=first_code, last_code=last_code,
        email=normalize_email(email), phone=normalize_phone(phone) if phone else None,
        birth_date=birth_date, postal_code=(postal_code or "").strip() or None,
        sig=(last_code, first_code) if last_code and first_code else ("", "-"),
        rev=(first_code, last_code) if last_code and first_code else ("-", ""),
    )


def _keys(person: _Person) -> list[str]:
    """The blocks a customer is compared in: normalized e-mail; E.164 phone; both Kölner-Phonetik
    codes in either order ("Anna Meyer", "Anna Maier" and "Maier Anna" meet); and one name's code
    with the birth date ("M. Müller" and "Maria Mueller" born the same day meet)."""
    keys = []
    if person.email:
        keys.append("e:" + person.email)
    if person.phone:
        keys.append("p:" + person.phone)
    if person.last_code or person.first_code:
        low, high = sorted((person.last_code, person.first_code))
        keys.append(f"{NAME_BLOCK}{low}|{high}")
    if person.birth_date:
        born = person.birth_date.isoformat()
        keys += [f"b:{code}|{born}" for code in {person.last_code, person.first_code} if code]
    return keys


def _name_penalty(count: int) -> int:
    """Points off a name-only match shared by `count` customers: the more, the weaker the evidence."""
    return 0 if count <= 2 else min(20, round(5 * (math.log2(count) - 1)))


def _name_only_hopeless(count: int, min_score: int = MIN_SCORE) -> bool:
    """In a name block this large no pair reaches `min_score` on the name alone; the pairs
    with more in common meet in an e-mail, phone or birth-date block."""
    return NAME_ONLY_MAX - _name_penalty(count) < min_score


@lru_cache(maxsize=1 << 18)
def _ratio(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _abbreviated(first: str, other: str) -> bool:
    """One first name is an initial or a short form of the other ("M." / "Maria", "Kati" / "Katharina")."""
    if not first or not other or first == other:
        return False
    short, full = sorted((first, other), key=len)
    return full.startswith(short)


def _compatible(first: str, other: str) -> bool:
    """Could be the same first name: similar spelling, one an initial or short form of the
    other, or one missing (no evidence against)."""
    if not first or not other:
        return True
    return _abbreviated(first, other) or _ratio(first, other) >= 0.6


def _name_points(a: _Person, b: _Person) -> tuple[int, list[str]]:
    if a.last and a.last == b.last and a.first == b.first:
        return 50, [REASON_SAME_NAME]
    same_last = bool(a.last) and (a.last == b.last or (bool(a.last_code) and a.last_code == b.last_code))
    if same_last and a.first_code and a.first_code == b.first_code:
        direct = (_ratio(a.last, b.last) + _ratio(a.first, b.first)) / 2
        return 35 + round(10 * direct), [REASON_PHONETIC]
    swapped_last = bool(a.last) and (a.last == b.first or (bool(a.last_code) and a.last_code == b.first_code))
    if swapped_last and a.first and (a.first == b.last or (bool(a.first_code) and a.first_code == b.last_code)):
        if a.last == b.first and a.first == b.last:
            return 45, [REASON_SWAPPED]
        swapped = (_ratio(a.last, b.first) + _ratio(a.first, b.last)) / 2
        return 35 + round(10 * swapped), [REASON_SWAPPED, REASON_PHONETIC]
    if same_last and _abbreviated(a.first, b.first):
        return 30, [REASON_ABBREVIATED] + ([REASON_PHONETIC] if a.last != b.last else [])
    if swapped_last and _abbreviated(a.first, b.last):
        return 25, [REASON_SWAPPED, REASON_ABBREVIATED]
    if (_ratio(a.last, b.last) + _ratio(a.first, b.first)) / 2 >= 0.85:
        return 30, [REASON_SIMILAR]
    if not (_compatible(a.first, b.first) or _compatible(a.first, b.last)):
        return -30, []  # a family sharing an e-mail or phone: different first names
    return 0, []


def _worth_scoring(a: _Person, b: _Person) -> bool:
    """Without a shared e-mail or phone a pair needs the same birth date or a strong name
    match (same, phonetic, swapped); cheap checks only."""
    return a.sig == b.sig or a.sig == b.rev or (a.birth_date is not None and a.birth_date == b.birth_date)


def score_pair(a: _Person, b: _Person, name_count: int = 1) -> tuple[int, tuple[str, ...]]:
    """(score 0..100, German reasons) for two customers. `name_count`: how many customers
    share the name block — a common name alone is weaker evidence than a rare one."""
    points = 0
    reasons: list[str] = []
    if a.email and a.email == b.email:
        points += 50
        reasons.append(REASON_EMAIL)
    if a.phone and a.phone == b.phone:
        points += 40
        reasons.append(REASON_PHONE)
    contact = bool(reasons)
    if not contact and not _worth_scoring(a, b):
        return 0, ()  # the name alone cannot reach MIN_SCORE: spare the string similarity
    name, name_reasons = _name_points(a, b)
    points += name
    reasons += name_reasons
    if a.birth_date and b.birth_date:
        if a.birth_date == b.birth_date:
            points += 15
            contact = True
            reasons.append(REASON_BIRTH_DATE)
        else:
            points -= 30  # two people who share a name
    if a.postal_code and a.postal_code == b.postal_code and points > 0:
        points += 5
        reasons.append(REASON_POSTAL_CODE)
    if a.email and b.email and a.email != b.email:
        points -= 10
    if a.phone and b.phone and a.phone != b.phone:
        points -= 10
    if not contact:
        points -= _name_penalty(name_count)
    return max(0, min(100, points)), tuple(reasons)


def load_people(session: Session) -> list[_Person]:
    """Every customer that is not erased, as the search compares them (one SELECT of the needed columns)."""
    rows = session.execute(
        select(Customer.id, Customer.first_name, Customer.last_name, Customer.email, Customer.phone,
               Customer.birth_date, Customer.postal_code)
        .where(Customer.erased_at.is_(None))
    )
    return [person_record(*row) for row in rows]


def _dismissed(session: Session) -> set[tuple[int, int]]:
    return set(session.execute(select(DuplicateDismissal.customer_low_id, DuplicateDismissal.customer_high_id)))


def _block_pairs(members: list[_Person]) -> Iterable[tuple[_Person, _Person]]:
    if len(members) <= MAX_BLOCK:
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                yield a, b
        return
    ordered = sorted(members, key=lambda p: (p.last, p.first, p.id))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1:i + 1 + WINDOW]:
            yield a, b


def _candidates(people: list[_Person], dismissed: set[tuple[int, int]],
                min_score: int = MIN_SCORE) -> list[Candidate]:
    blocks: dict[str, list[_Person]] = defaultdict(list)
    for person in people:
        for key in _keys(person):
            blocks[key].append(person)
    seen: set[tuple[int, int]] = set()
    found: list[Candidate] = []
    for key, members in blocks.items():
        size = len(members)
        if size < 2:
            continue
        name_block = key.startswith(NAME_BLOCK)
        if name_block and _name_only_hopeless(size, min_score):
            continue
        for a, b in _block_pairs(members):
            # The cheap test of score_pair first (the same in every block): most pairs end here.
            if a.sig != b.sig and a.sig != b.rev and (a.email is None or a.email != b.email) and (
                    a.phone is None or a.phone != b.phone) and (a.birth_date is None or a.birth_date != b.birth_date):
                continue
            pair = (a.id, b.id) if a.id < b.id else (b.id, a.id)
            if pair in seen or pair in dismissed:
                continue
            seen.add(pair)
            score, reasons = score_pair(a, b, size if name_block else 1)
            if score >= min_score:
                found.append(Candidate(pair[0], pair[1], score, reasons))
    found.sort(key=lambda c: (-c.score, c.low_id, c.high_id))
    return found


def candidate_pairs(session: Session, *, limit: int | None = None) -> list[Candidate]:
    """Pairs of customers that may be the same person, best score first; dismissed pairs
    and erased customers are left out."""
    found = _candidates(load_people(session), _dismissed(session))
    return found[:limit] if limit is not None else found


def duplicate_customer_ids(session: Session) -> set[int]:
    """Every customer that is part of some candidate pair."""
    ids: set[int] = set()
    for candidate in candidate_pairs(session):
        ids.add(candidate.low_id)
        ids.add(candidate.high_id)
    return ids


class CustomerIndex:
    """The blocking index of all (not erased) customers, for checking many new records
    (an import) against them with one SELECT: build once, call `matches` per record,
    `add` the records stored meanwhile."""

    def __init__(self, people: Iterable[_Person] = ()) -> None:
        self.blocks: dict[str, list[_Person]] = defaultdict(list)
        for person in people:
            self._insert(person)

    @classmethod
    def load(cls, session: Session) -> CustomerIndex:
        return cls(load_people(session))

    def _insert(self, person: _Person) -> None:
        for key in _keys(person):
            self.blocks[key].append(person)

    def add(self, pk: int, *, first_name: str, last_name: str, email: str | None = None,
            phone: str | None = None) -> None:
        self._insert(person_record(pk, first_name, last_name, email, phone))

    def matches(self, *, first_name: str, last_name: str, email: str | None = None,
                phone: str | None = None) -> list[tuple[int, int, tuple[str, ...]]]:
        new = person_record(0, first_name, last_name, email, phone)
        found: dict[int, tuple[int, tuple[str, ...]]] = {}
        for key in _keys(new):
            members = self.blocks.get(key, ())
            name_block = key.startswith(NAME_BLOCK)
            if name_block and _name_only_hopeless(len(members) + 1):
                continue
            for person in members:
                if person.id not in found:
                    found[person.id] = score_pair(new, person, len(members) + 1 if name_block else 1)
        return sorted(((pk, score, reasons) for pk, (score, reasons) in found.items() if score >= MIN_SCORE),
                      key=lambda m: (-m[1], m[0]))


def matches_for(session: Session, *, first_name: str, last_name: str, email: str | None = None,
                phone: str | None = None, index: CustomerIndex | None = None) -> list[tuple[int, int, tuple[str, ...]]]:
    """(customer id, score, reasons) of existing customers that look like this new record,
    best first. Pass a `CustomerIndex` when checking many records."""
    index = index if index is not None else CustomerIndex.load(session)
    return index.matches(first_name=first_name, last_name=last_name, email=email, phone=phone)


# --- "Keine Dublette" -----------------------------------------------------------
def dismiss_pair(session: Session, a: int, b: int) -> DuplicateDismissal:
    """Never propose this pair again. The caller commits. ValueError (German) when refused."""
    if a == b:
        raise ValueError(_("Eine Kund:in ist keine Dublette von sich selbst."))
    low, high = sorted((a, b))
    for pk in (low, high):
        if session.get(Customer, pk) is None:
            raise LookupError(pk)
    existing = session.scalar(select(DuplicateDismissal).where(
        DuplicateDismissal.customer_low_id == low, DuplicateDismissal.customer_high_id == high))
    if existing is not None:
        return existing
    dismissal = DuplicateDismissal(customer_low_id=low, customer_high_id=high)
    session.add(dismissal)
    session.flush()
    return dismissal


# --- merge ---------------------------------------------------------------------
# Filled on the kept customer only when empty there. The address goes as a whole (with
# its geocoding), never mixed from two records.
FILL_FIELDS = ("email", "phone", "birth_date", "emoji_marker", "notes", "referred_by_id")
ADDRESS_FIELDS = ("street", "postal_code", "city")
GEO_FIELDS = ("lat", "lon", "geocoded_at", "geocode_status", "geocoded_address")
DISMISSAL = "duplicate_dismissal"
DISMISSAL_DELETED = "duplicate_dismissal:deleted"
REFERRAL_CLEARED = "customer.referred_by_id:cleared"
REFERRAL_TAKEN_BACK = "bonus_transaction:referral_taken_back"  # the merge's correction of a double referral


def customer_references() -> list[tuple[Table, str]]:
    """(table, column) of every foreign key to customer.id in the metadata."""
    customer = Customer.__table__
    found = []
    for table in Model.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is customer and fk.column.name == "id":
                found.append((table, fk.parent.name))
    return sorted(found, key=lambda item: (item[0].name, item[1]))


def reference_key(table: Table, column: str) -> str:
    """The key of `CustomerMerge.moved` for this reference: "booking", "customer.referred_by_id", …"""
    return table.name if column == "customer_id" else f"{table.name}.{column}"


def related_counts(session: Session, customer_id: int) -> dict[str, int]:
    """How many rows of each referencing table point at the customer (what a merge moves)."""
    from sqlalchemy import func

    counts = {}
    for table, column in customer_references():
        if table.name in (DISMISSAL, "customer_merge", "customer_erasure"):
            continue
        count = session.scalar(select(func.count()).select_from(table).where(table.c[column] == customer_id))
        if count:
            counts[reference_key(table, column)] = count
    return counts


def _check_mergeable(session: Session, kept_id: int, removed_id: int) -> tuple[Customer, Customer]:
    if kept_id == removed_id:
        raise ValueError(_("Eine Kund:in kann nicht mit sich selbst zusammengeführt werden."))
    kept, removed = session.get(Customer, kept_id), session.get(Customer, removed_id)
    if kept is None or removed is None:
        raise LookupError(kept_id if kept is None else removed_id)
    if kept.erased_at is not None or removed.erased_at is not None:
        raise ValueError(_("Gelöschte (anonymisierte) Kund:innen können nicht zusammengeführt werden."))
    return kept, removed


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def fill_plan(kept: Customer, removed: Customer) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in FILL_FIELDS:
        if _empty(getattr(kept, name)) and not _empty(getattr(removed, name)):
            values[name] = getattr(removed, name)
    if values.get("referred_by_id") == kept.id:
        del values["referred_by_id"]
    if all(_empty(getattr(kept, n)) for n in ADDRESS_FIELDS) and any(
            not _empty(getattr(removed, n)) for n in ADDRESS_FIELDS):
        for name in ADDRESS_FIELDS + GEO_FIELDS:
            if not _empty(getattr(removed, name)):
                values[name] = getattr(removed, name)
    return values


def _move_dismissals(session: Session, kept_id: int, removed_id: int, moved: dict[str, list]) -> None:
    """A dismissal (removed, X) becomes (kept, X): X is not the removed person, so not the
    kept one either. One that would duplicate a pair, or pair kept with itself, is deleted."""
    rows = session.scalars(select(DuplicateDismissal).where(
        (DuplicateDismissal.customer_low_id == removed_id) | (DuplicateDismissal.customer_high_id == removed_id)))
    for row in rows:
        other = row.customer_high_id if row.customer_low_id == removed_id else row.customer_low_id
        low, high = sorted((kept_id, other))
        clash = other == kept_id or session.scalar(select(DuplicateDismissal.id).where(
            DuplicateDismissal.customer_low_id == low, DuplicateDismissal.customer_high_id == high))
        if clash:
            moved.setdefault(DISMISSAL_DELETED, []).append({
                "id": row.id, "low": row.customer_low_id, "high": row.customer_high_id,
                "at": row.dismissed_at.isoformat(), "by": row.dismissed_by_id})
            session.delete(row)
        else:
            moved.setdefault(DISMISSAL, []).append([row.id, row.customer_low_id, row.customer_high_id])
            row.customer_low_id, row.customer_high_id = low, high
        session.flush()


def _move_rows(session: Session, table: Table, column: str, from_id: int, to_id: int,
               ids: list[int] | None = None) -> list[int]:
    """Point `column` of the rows (all referencing `from_id`, or `ids`) at `to_id` through the
    ORM, so Continuum records the change; returns the ids moved."""
    cls = model_for_table(table)
    if cls is None:  # a plain table: no history to keep
        where = table.c.id.in_(ids) if ids is not None else table.c[column] == from_id
        moved = list(session.scalars(select(table.c.id).where(where)))
        if moved:
            session.execute(update(table).where(table.c.id.in_(moved)).values({column: to_id}))
        return sorted(moved)
    where = cls.id.in_(ids) if ids is not None else getattr(cls, column) == from_id
    rows = list(session.scalars(select(cls).where(where)))
    for row in rows:
        setattr(row, column, to_id)
    return sorted(row.id for row in rows)


def merge_customers(session: Session, kept_id: int, removed_id: int) -> CustomerMerge:
    """Merge `removed_id` into `kept_id` (flushes; the caller commits the one transaction).
    ValueError (German) or LookupError (missing customer) when refused; nothing changed then."""
    kept, removed = _check_mergeable(session, kept_id, removed_id)
    fill = fill_plan(kept, removed)
    moved: dict[str, list] = {}
    for invoice in session.scalars(select(Invoice).where(Invoice.customer_id == removed_id,
                                                         Invoice.status != "draft")):
        invoice.keep_recipient()  # an issued invoice keeps the addressee it was issued to
    with session.no_autoflush:
        for table, column in customer_references():
            key = reference_key(table, column)
            if table.name == DISMISSAL:
                continue
            if key == "customer.referred_by_id":
                if kept.referred_by_id == removed_id:
                    kept.referred_by_id = None  # would refer to itself
                    moved[REFERRAL_CLEARED] = [kept_id]
                others = list(session.scalars(select(Customer.id).where(
                    Customer.referred_by_id == removed_id, Customer.id.not_in((kept_id, removed_id)))))
                ids = _move_rows(session, table, column, removed_id, kept_id, ids=others) if others else []
            else:
                ids = _move_rows(session, table, column, removed_id, kept_id)
            if ids:
                moved[key] = ids
    session.flush()
    _move_dismissals(session, kept_id, removed_id, moved)
    # The removed customer goes first: the e-mail address is unique.
    session.expire(removed)
    session.delete(removed)
    session.flush()
    for name, value in fill.items():
        setattr(kept, name, value)
    merge = CustomerMerge(kept_id=kept_id, removed_id=removed_id, moved=moved, filled=sorted(fill))
    session.add(merge)
    session.flush()
    correction = reverse_merged_referral(session, kept_id, removed_id)  # one person, one referral payout
    if correction is not None:
        session.flush()
        merge.moved = {**merge.moved, REFERRAL_TAKEN_BACK: [correction.id]}  # the undo books it back
        session.flush()
    merge.transaction_id = _transaction_id(session)
    return merge


def _transaction_id(session: Session) -> int | None:
    try:
        from sqlalchemy_continuum import versioning_manager

        uow = versioning_manager.unit_of_work(session)
        transaction = uow.current_transaction
        return transaction.id if transaction is not None else None
    except Exception:  # the id is a convenience, never a reason to fail a merge
        return None


def undo_merge(session: Session, merge_id: int) -> None:
    """Bring the removed customer back (same id, data from its last version), move the moved
    rows back and empty the fields the merge filled. The caller commits. ValueError (German)
    when refused, LookupError when there is no such merge."""
    from app.services import history

    merge = session.get(CustomerMerge, merge_id)
    if merge is None:
        raise LookupError(merge_id)
    if merge.undone_at is not None:
        raise ValueError(_("Diese Zusammenführung wurde schon rückgängig gemacht."))
    later = session.scalars(select(CustomerMerge).where(
        CustomerMerge.id > merge.id, CustomerMerge.undone_at.is_(None)))
    for other in later:
        if merge.id in (other.moved or {}).get("customer_merge.kept_id", []) or other.removed_id == merge.kept_id:
            raise ValueError(_("Die behaltene Kund:in wurde später noch einmal zusammengeführt: bitte zuerst "
                               "diese spätere Zusammenführung rückgängig machen."))
    if history.is_deleted(session, Customer, merge.removed_id) is None:
        raise ValueError(_("Die entfernte Kund:in kann nicht wiederhergestellt werden."))
    before = history.last_live_versions(session, Customer, [merge.removed_id]).get(merge.removed_id)
    kept = session.get(Customer, merge.kept_id) if merge.kept_id is not None else None
    if before is None or kept is None:
        raise ValueError(_("Die entfernte Kund:in kann nicht wiederhergestellt werden."))
    moved = merge.moved or {}
    # Empty what the merge filled (unless changed since), so the unique e-mail is free again.
    for name in merge.filled or []:
        if getattr(kept, name) == getattr(before, name):
            setattr(kept, name, None)
    session.flush()
    try:
        history.restore_row(session, Customer, merge.removed_id)
    except LookupError as exc:
        raise ValueError(_("Die entfernte Kund:in kann nicht wiederhergestellt werden.")) from exc
    references = {reference_key(table, column): (table, column) for table, column in customer_references()}
    with session.no_autoflush:
        for key, ids in moved.items():
            if key in references:
                table, column = references[key]
                _move_rows(session, table, column, merge.kept_id, merge.removed_id, ids=list(ids))
        if moved.get(REFERRAL_CLEARED):
            kept.referred_by_id = merge.removed_id
        # ledger lines booked on the kept customer since, for what goes back (a moved booking
        # taken back, a moved line corrected), go back with it
        since = select(BonusTransaction).where(
            BonusTransaction.customer_id == merge.kept_id,
            or_(BonusTransaction.booking_id.in_(moved.get("booking", [])),
                BonusTransaction.reverses_id.in_(moved.get("bonus_transaction", []))))
        for line in session.scalars(since):
            line.customer_id = merge.removed_id
    for pk in moved.get(REFERRAL_TAKEN_BACK, []):
        correction = session.get(BonusTransaction, pk)
        if correction is not None:
            reverse(session, correction, _("Zusammenführung rückgängig: Empfehlung wieder gutgeschrieben"))
    session.flush()
    _undo_dismissals(session, moved)
    merge.undone_at = utcnow()
    merge.undone_by_id = acting_user_id()
    session.flush()


def _undo_dismissals(session: Session, moved: dict[str, list]) -> None:
    for pk, low, high in moved.get(DISMISSAL, []):
        row = session.get(DuplicateDismissal, pk)
        if row is not None:
            row.customer_low_id, row.customer_high_id = low, high
    session.flush()
    for item in moved.get(DISMISSAL_DELETED, []):
        exists = session.scalar(select(DuplicateDismissal.id).where(
            DuplicateDismissal.customer_low_id == item["low"], DuplicateDismissal.customer_high_id == item["high"]))
        if exists is None and session.get(Customer, item["low"]) and session.get(Customer, item["high"]):
            session.add(DuplicateDismissal(
                id=item["id"], customer_low_id=item["low"], customer_high_id=item["high"],
                dismissed_at=datetime.fromisoformat(item["at"]), dismissed_by_id=item["by"]))
    session.flush()
