"""Linsen (issue 4, point 2): named filters of a list view, stored as the list's own URL
arguments. A lens is nothing but list arguments, so the list's row rules always apply.

The built-in lenses are rows keyed by `builtin_key`, each of one list (BUILTIN_LENSES).
What the customer lenses select is code (`lens_clause`), reached through the customer list's
custom filter column `lens`; the invoice list's "Offene Posten" uses its column `payment`
(`payment_clause`)."""
from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.formatting import to_local
from app.models import Booking, BookingStatus, Customer, Invoice, InvoiceLine, Lens, PassCard, Setting
from app.models.settings import lens_role
from app.security import restrict

FILTER_COLUMN = "lens"  # the customer list's filter column: `_flt_0_lens=<key>`
ACTIVE_QUERY = "_flt_0_active_category=alle"  # the existing "aktiv" filter (app/views/customer_metrics.py)

# The lists a lens can be saved for: view class name → label.
LENS_VIEWS = {
    "CustomerView": _l("Kunden"),
    "BookingView": _l("Termine"),
    "PassCardView": _l("Mehrfachkarten"),
    "InvoiceView": _l("Rechnungen"),
}

BUILTIN_VIEW = "CustomerView"  # the list of the built-in customer lenses
NO_COORDINATES_KEY = "no_coordinates"
INVOICE_VIEW = "InvoiceView"
PAYMENT_COLUMN = "payment"  # the invoice list's filter column: `_flt_0_payment=open|paid`
OPEN_ITEMS_KEY = "open_items"
GEOCODE_FAILED_KEY = "geocode_failed"  # "Adresse nicht gefunden" (app/services/geocoding.py)
GEOCODE_FAILED_STATUSES = ("not_found", "error")


class BuiltinLens(NamedTuple):
    name: str  # German, as stored
    label: object  # shown (translated)
    query: str  # the list arguments
    view: str  # the list's view class name (a key of LENS_VIEWS)


# key → the built-in lens
BUILTIN_LENSES: dict[str, BuiltinLens] = {
    "with_card": BuiltinLens("Mit Mehrfachkarte", _l("Mit Mehrfachkarte"), "_flt_0_lens=with_card", BUILTIN_VIEW),
    "duplicates": BuiltinLens("Dubletten", _l("Dubletten"), "_flt_0_lens=duplicates", BUILTIN_VIEW),
    "active": BuiltinLens("Aktiv (zukünftiger Termin)", _l("Aktiv (zukünftiger Termin)"), ACTIVE_QUERY, BUILTIN_VIEW),
    "callback": BuiltinLens("Rückruf 📞", _l("Rückruf 📞"), "_flt_0_lens=callback", BUILTIN_VIEW),
    "new": BuiltinLens("Neu (letzte 30 Tage)", _l("Neu (letzte 30 Tage)"), "_flt_0_lens=new", BUILTIN_VIEW),
    "no_show": BuiltinLens("Mehrfach nicht erschienen", _l("Mehrfach nicht erschienen"), "_flt_0_lens=no_show",
                           BUILTIN_VIEW),
    "overdue": BuiltinLens("Überfällig", _l("Überfällig"), "_flt_0_lens=overdue", BUILTIN_VIEW),
    # Geocoding found nothing or failed for good: staff fix the address.
    GEOCODE_FAILED_KEY: BuiltinLens("Adresse nicht gefunden", _l("Adresse nicht gefunden"),
                                    f"_flt_0_lens={GEOCODE_FAILED_KEY}", BUILTIN_VIEW),
    # Customers the map cannot place (never geocoded, not found, error): the map's count links here.
    NO_COORDINATES_KEY: BuiltinLens("Ohne Koordinaten", _l("Ohne Koordinaten"), f"_flt_0_lens={NO_COORDINATES_KEY}",
                                    BUILTIN_VIEW),
    OPEN_ITEMS_KEY: BuiltinLens("Offene Posten", _l("Offene Posten"), f"_flt_0_{PAYMENT_COLUMN}=open", INVOICE_VIEW),
}
# Values of the customer list's `lens` filter column (the "active" lens uses the existing active filter).
FILTER_KEYS = [key for key, lens in BUILTIN_LENSES.items()
               if lens.view == BUILTIN_VIEW and lens.query.startswith("_flt_0_lens=")]
CARD_KEY = "with_card"  # needs the right to see pass cards

NEW_DAYS = 30
NO_SHOW_MIN = 2
OVERDUE_MIN_VISITS = 3
OVERDUE_FACTOR = 1.5  # overdue when the time since the last visit exceeds the usual gap × this
CALLBACK_MARKER = "📞"

MAX_NAME = 120
MAX_QUERY = 2000
MAX_VALUE = 200
FILTER_ARG = re.compile(r"^_flt_(\d)_(\w+)$")


class LensRefused(ValueError):
    """A lens cannot be saved; the text says why (German, for the user)."""


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


# --- seeding ---------------------------------------------------------------------------
def seed_builtin_lenses(session: Session) -> None:
    """Create or refresh the built-in lenses (keyed by builtin_key). Idempotent; no commit."""
    existing = {lens.builtin_key: lens for lens in session.scalars(sa.select(Lens).where(Lens.builtin_key.isnot(None)))}
    for key, (name, _label, query, view_name) in BUILTIN_LENSES.items():
        lens = existing.get(key)
        if lens is None:
            session.add(Lens(name=name, view_name=view_name, query_string=query, builtin=True, builtin_key=key,
                             shared=False, owner_id=None))
            continue
        for attr, value in (("name", name), ("view_name", view_name), ("query_string", query), ("builtin", True)):
            if getattr(lens, attr) != value:
                setattr(lens, attr, value)


def lens_label(lens: Lens) -> str:
    """The built-ins' names in the user's language, a user's lens as named."""
    builtin = BUILTIN_LENSES.get(lens.builtin_key or "")
    return str(builtin[1]) if builtin is not None and lens.builtin else lens.name


# --- what the built-in customer lenses select ----------------------------------------
def _valid_cards(now: datetime) -> sa.Select:
    stmt = sa.select(PassCard.customer_id).where(
        PassCard.units_used < PassCard.units_total,
        sa.or_(PassCard.expires_at.is_(None), PassCard.expires_at > now),
    )
    return restrict(stmt, PassCard)


def remaining_units(session: Session, customer_ids: Sequence[int], now: datetime | None = None) -> dict[int, int]:
    """Units left on the customers' valid pass cards (cards the current user may see)."""
    if not customer_ids:
        return {}
    now = _now(now)
    stmt = restrict(sa.select(PassCard.customer_id, sa.func.sum(PassCard.units_total - PassCard.units_used)).where(
        PassCard.customer_id.in_(list(customer_ids)),
        PassCard.units_used < PassCard.units_total,
        sa.or_(PassCard.expires_at.is_(None), PassCard.expires_at > now),
    ), PassCard).group_by(PassCard.customer_id)
    return {customer_id: int(units) for customer_id, units in session.execute(stmt)}


def no_show_customer_ids() -> sa.Select:
    """Customers with at least NO_SHOW_MIN bookings in a status of kind "no_show"."""
    return (
        sa.select(Booking.customer_id).join(BookingStatus, Booking.status_id == BookingStatus.id)
        .where(BookingStatus.kind == "no_show").group_by(Booking.customer_id)
        .having(sa.func.count(Booking.id) >= NO_SHOW_MIN)
    )


def future_customer_ids(now: datetime) -> sa.Select:
    return sa.select(Booking.customer_id).where(Booking.start_at > now, Booking.cancelled.is_(False))


def _visit_dates(session: Session, now: datetime) -> dict[int, list[date]]:
    """Past visits (not cancelled, not no-show) as local dates per customer, of the customers
    the current user may see with at least OVERDUE_MIN_VISITS of them and no future booking.
    One query of (customer_id, start_at) rows."""
    counted = sa.and_(
        Booking.start_at <= now, Booking.cancelled.is_(False),
        Booking.status_id.in_(
            sa.select(BookingStatus.id).where(BookingStatus.kind.notin_(("no_show", "cancellation")))),
    )
    regulars = (sa.select(Booking.customer_id).where(counted).group_by(Booking.customer_id)
                .having(sa.func.count(Booking.id) >= OVERDUE_MIN_VISITS))
    candidates = restrict(sa.select(Customer.id).where(Customer.erased_at.is_(None)), Customer)
    stmt = (
        sa.select(Booking.customer_id, Booking.start_at)
        .where(counted, Booking.customer_id.in_(regulars), Booking.customer_id.in_(candidates),
               Booking.customer_id.notin_(future_customer_ids(now)))
        .order_by(Booking.customer_id, Booking.start_at)
    )
    visits: dict[int, list[date]] = {}
    for customer_id, start_at in session.execute(stmt):
        day = to_local(start_at).date()
        days = visits.setdefault(customer_id, [])
        if not days or days[-1] != day:  # two bookings on one day are one visit
            days.append(day)
    return visits


def is_overdue(days: Sequence[date], today: date, factor: float = OVERDUE_FACTOR) -> bool:
    """At least OVERDUE_MIN_VISITS visits, and the days since the last one exceed the
    median gap between them × factor."""
    if len(days) < OVERDUE_MIN_VISITS:
        return False
    gaps = [(later - earlier).days for earlier, later in itertools.pairwise(days)]
    return (today - days[-1]).days > statistics.median(gaps) * factor


def overdue_customer_ids(session: Session, now: datetime | None = None) -> list[int]:
    """Regulars whose time since their last visit exceeds their own usual interval by the
    margin, with no future booking — among the customers the current user may see."""
    now = _now(now)
    today = to_local(now).date()
    return sorted(cid for cid, days in _visit_dates(session, now).items() if is_overdue(days, today))


def overdue_details(session: Session, now: datetime | None = None) -> dict[int, tuple[date, int]]:
    """Overdue customer id → (last visit, usual gap in days): why the customer is listed."""
    now = _now(now)
    today = to_local(now).date()
    return {cid: (days[-1], round(statistics.median(
                [(later - earlier).days for earlier, later in itertools.pairwise(days)])))
            for cid, days in _visit_dates(session, now).items() if is_overdue(days, today)}


def lens_clause(session: Session, key: str, may_see_cards: bool, now: datetime | None = None):
    """The WHERE clause on Customer of a built-in filter key; an unknown key matches nothing."""
    now = _now(now)
    if key == CARD_KEY:
        return Customer.id.in_(_valid_cards(now)) if may_see_cards else sa.false()
    if key == "duplicates":
        from app.services.duplicates import duplicate_customer_ids

        ids = sorted(duplicate_customer_ids(session))
        return Customer.id.in_(ids) if ids else sa.false()
    if key == "callback":
        return Customer.emoji_marker.contains(CALLBACK_MARKER)
    if key == "new":
        return Customer.created_at >= now - timedelta(days=NEW_DAYS)
    if key == "no_show":
        return Customer.id.in_(no_show_customer_ids())
    if key == "overdue":
        ids = overdue_customer_ids(session, now)
        return Customer.id.in_(ids) if ids else sa.false()
    if key == GEOCODE_FAILED_KEY:
        return Customer.geocode_status.in_(GEOCODE_FAILED_STATUSES)
    if key == NO_COORDINATES_KEY:  # not erased (an erased customer has no address to fix)
        return sa.and_(sa.or_(Customer.lat.is_(None), Customer.lon.is_(None)), Customer.erased_at.is_(None))
    return sa.false()


# --- what the invoice list's `payment` column selects ("Offene Posten") ---------------
def payment_clause(value: str):
    """The WHERE clause on Invoice of a `payment` value: "open" = issued, not paid and not a
    Storno invoice itself (a cancelled invoice is not open); "paid" = paid_at set; any other
    value matches nothing."""
    value = (value or "").strip()
    if value == "open":
        return sa.and_(Invoice.status == "issued", Invoice.paid_at.is_(None), Invoice.cancels_id.is_(None))
    if value == "paid":
        return Invoice.paid_at.isnot(None)
    return sa.false()


def gross_totals(session: Session, invoice_ids) -> dict[int, Decimal]:
    """Gross total per invoice of `invoice_ids` (a SELECT of Invoice.id, e.g. a list's filtered
    rows): one query of their lines, summed with the lines' own pricing (InvoiceLine.gross).
    An invoice without lines is missing (0)."""
    totals: dict[int, Decimal] = {}
    for line in session.scalars(sa.select(InvoiceLine).where(InvoiceLine.invoice_id.in_(invoice_ids))):
        totals[line.invoice_id] = totals.get(line.invoice_id, Decimal("0.00")) + line.gross
    return totals


# --- recall e-mails ----------------------------------------------------------------------
RECALL_SUBJECT = "Zeit für Ihren nächsten Termin bei {business}"
RECALL_BODY = (
    "Hallo {first_name},\n\n"
    "Ihr letzter Besuch bei uns ist schon eine Weile her. Wir freuen uns, Sie bald wieder zu sehen — "
    "vereinbaren Sie gern einen neuen Termin.\n\n"
    "Viele Grüße\n{business}"
)


def business_name(session: Session) -> str:
    value = session.scalar(sa.select(Setting.value).where(Setting.key == "business_name"))
    return (value or "").strip() or "Terminbuch"


@dataclass
class RecallResult:
    queued: list[Customer] = field(default_factory=list)
    refused: dict[str, list[Customer]] = field(default_factory=dict)  # German reason → customers


def queue_recalls(session: Session, customers: Iterable[Customer], now: datetime | None = None) -> RecallResult:
    """A recall e-mail to each customer who is overdue (for the current user) and may get
    one; the others are refused with the reason. No commit."""
    from app.services.notifications import MessageRefused, queue_customer_message

    overdue = set(overdue_customer_ids(session, now))
    business = business_name(session)
    result = RecallResult()
    for customer in customers:
        try:
            if customer.id not in overdue:
                raise MessageRefused(_("Diese Kund:in ist nicht überfällig."))
            subject = RECALL_SUBJECT.format(business=business)
            body = RECALL_BODY.format(first_name=customer.first_name, business=business)
            queue_customer_message(session, customer, "recall", subject, body)
        except MessageRefused as exc:
            result.refused.setdefault(str(exc), []).append(customer)
        else:
            result.queued.append(customer)
    return result


# --- list arguments ----------------------------------------------------------------------
def _parse_int(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


def clean_list_args(view, pairs: Iterable[tuple[str, str]], max_page_size: int = 100) -> list[tuple[str, str]]:
    """The list arguments a lens may keep, validated against `view` (a registered ModelView):
    `_flt_<n>_<col>` of its search filters with a value the column can hold, `_oc_`/`_od_`
    of its order columns and `psize_` of this view. Everything else is dropped."""
    from app.views.base import _valid_filter_value

    name = type(view).__name__
    filters = view._filters.get_search_filters()
    kept: list[tuple[str, str]] = []
    for key, value in pairs:
        value = (value or "").replace("\x00", "")
        if len(value) > MAX_VALUE:
            continue
        match = FILTER_ARG.match(key)
        if match:
            col = match.group(2)
            if col in filters and int(match.group(1)) < len(filters[col]) and value.strip() \
                    and _valid_filter_value(view.datamodel, col, value):
                kept.append((key, value))
        elif key == f"_oc_{name}":
            if value in (view.order_columns or []):
                kept.append((key, value))
        elif key == f"_od_{name}":
            if value in ("asc", "desc"):
                kept.append((key, value))
        elif key == f"psize_{name}":
            size = _parse_int(value)
            if size is not None and 1 <= size <= max_page_size:
                kept.append((key, str(size)))
    return list(dict.fromkeys(kept))  # the same pair twice is once


def clean_query_string(view, query: str, max_page_size: int = 100) -> str:
    return urlencode(clean_list_args(view, parse_qsl(query or "", keep_blank_values=True), max_page_size))


# --- visibility, tabs, saving -----------------------------------------------------------
def tab_lenses(session: Session, user, view_name: str) -> list[Lens]:
    """The lenses shown as tabs above a list: built-ins, the user's own, and those shared
    with one of the user's roles (an Owner's tabs hold no other user's private lens)."""
    role_ids = [role.id for role in getattr(user, "roles", [])]
    shared = sa.and_(Lens.shared.is_(True), Lens.id.in_(
        sa.select(lens_role.c.lens_id).where(lens_role.c.role_id.in_(role_ids))))
    stmt = sa.select(Lens).where(
        Lens.view_name == view_name, sa.or_(Lens.builtin.is_(True), Lens.owner_id == user.id, shared),
    ).order_by(Lens.builtin.desc(), Lens.id)
    return list(session.scalars(stmt))


def name_taken(session: Session, owner_id: int | None, view_name: str, name: str, lens_id: int | None = None) -> bool:
    """A lens of the same owner and list has this name (any case), or a built-in of the list does."""
    names = session.scalars(sa.select(Lens.name).where(
        Lens.view_name == view_name, sa.or_(Lens.owner_id == owner_id, Lens.builtin.is_(True)),
        Lens.id != (lens_id or 0),
    ))  # compared in Python: SQLite's lower() leaves "Ü" as it is
    wanted = name.casefold()
    return any(other.casefold() == wanted for other in names)


def save_lens(session: Session, owner_id: int, view, name: str, query: str, roles: Sequence,
              max_page_size: int = 100) -> Lens:
    """Store the list arguments of `query` (cleaned, see clean_list_args) as a lens of `owner_id`,
    shared with `roles` (none: private). Raises LensRefused (German) and stores nothing then."""
    name = " ".join((name or "").split())
    if not name:
        raise LensRefused(_("Bitte einen Namen für die Linse angeben."))
    if len(name) > MAX_NAME:
        raise LensRefused(_("Der Name ist zu lang (höchstens %(max)d Zeichen).", max=MAX_NAME))
    view_name = type(view).__name__
    cleaned = clean_query_string(view, query, max_page_size)
    if not cleaned:
        raise LensRefused(_("Die Liste hat keine Filter oder Sortierung, die gespeichert werden könnten."))
    if len(cleaned) > MAX_QUERY:
        raise LensRefused(_("Die Filter sind zu lang für eine Linse."))
    if name_taken(session, owner_id, view_name, name):
        raise LensRefused(_("Sie haben schon eine Linse mit diesem Namen für diese Liste."))
    lens = Lens(name=name, view_name=view_name, query_string=cleaned, owner_id=owner_id,
                shared=bool(roles), builtin=False, roles=list(roles))
    session.add(lens)
    session.flush()
    return lens


def query_matches(lens_query: str, current: Sequence[tuple[str, str]], implicit: re.Pattern | None = None) -> bool:
    """Whether the current (cleaned) list arguments show the lens: the same filters, and its
    order/page size if it has them. Filters the list adds by itself (`implicit`, e.g. the
    booking list's date window) count only when the lens has them."""
    wanted = parse_qsl(lens_query or "", keep_blank_values=True)
    has_implicit = implicit is not None and any(implicit.match(key) for key, _value in wanted)

    def filters(pairs) -> list[tuple[str, str]]:
        return sorted(pair for pair in pairs if FILTER_ARG.match(pair[0])
                      and (has_implicit or implicit is None or not implicit.match(pair[0])))

    others = {pair for pair in wanted if not FILTER_ARG.match(pair[0])}
    return filters(wanted) == filters(current) and others <= set(current)


def has_filters(current: Sequence[tuple[str, str]], implicit: re.Pattern | None = None) -> bool:
    return any(FILTER_ARG.match(key) and not (implicit is not None and implicit.match(key)) for key, _v in current)
