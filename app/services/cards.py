"""Mehrfachkarten: redeeming a unit when a booking is completed (or a no-show, if the card
type says so) and giving it back when the booking leaves that status.

The hook is a `before_flush` listener (app/models/cards.py) rather than a call in
`change_status`: a booking's status also moves through the edit forms, the REST API and a
history revert, and every one of those flushes the booking. The rule is a state, not a
step: after the flush a booking in a redeeming status has exactly one redemption, any
other booking none — so repeating a change never counts twice.

Never twice, never below zero, also under concurrency: the booking row is locked first
(SELECT … FOR UPDATE on PostgreSQL), then the customer's covering cards; the unit is taken
by one conditional UPDATE (`units_used < units_total`), and `pass_redemption.booking_id`
is UNIQUE. SQLite serialises writers, so the conditional UPDATE and the UNIQUE constraint
hold there too.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, not_, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.models import Booking, NotificationLog, PassCard, PassCardType, PassRedemption, Service
from app.models.bookings import _status_kind
from app.models.cards import pass_card_type_service
from app.models.types import utcnow

REDEEMING_KINDS = frozenset({"completed", "no_show"})
RENEWAL_SETTING = "card_renewal_remaining"
RENEWAL_DEFAULT = 2
RENEWAL_KIND = "card_renewal"


# --- coverage --------------------------------------------------------------------
def covers(service_id: object, category: object):
    """SQL condition: the card type (PassCardType) covers a service. A type with services
    covers exactly those; a type without services covers its category's services."""
    listed = exists().where(pass_card_type_service.c.type_id == PassCardType.id)
    return or_(
        exists().where(pass_card_type_service.c.type_id == PassCardType.id,
                       pass_card_type_service.c.service_id == service_id),
        and_(not_(listed), PassCardType.category.is_not(None), PassCardType.category == category),
    )


def live_card(now: datetime):
    """SQL condition: the card (PassCard) is not expired at `now`."""
    return or_(PassCard.expires_at.is_(None), PassCard.expires_at > now)


def expiry_for(card_type: PassCardType, purchased_at: datetime) -> datetime | None:
    return purchased_at + timedelta(days=card_type.validity_days) if card_type.validity_days else None


def sell_card(session: Session, card_type: PassCardType, customer, purchased_at: datetime | None = None,
              price=None) -> PassCard:
    """A new card of `card_type` for `customer` with the type's units, price and validity."""
    purchased_at = purchased_at or utcnow()
    card = PassCard(type=card_type, customer=customer, units_total=card_type.units, units_used=0,
                    price=card_type.price if price is None else price, purchased_at=purchased_at,
                    expires_at=expiry_for(card_type, purchased_at))
    session.add(card)
    return card


# --- the flush hook --------------------------------------------------------------
def _status_changed(booking: Booking) -> bool:
    attrs = sa_inspect(booking).attrs
    return attrs.status.history.has_changes() or attrs.status_id.history.has_changes()


def booking_customer_id(booking: Booking) -> int | None:
    """The booking's customer id as it will be flushed, without loading the customer."""
    customer = sa_inspect(booking).dict.get("customer")
    return customer.id if customer is not None else booking.customer_id


def sync_redemptions(session: Session) -> None:
    """Bring the redemptions of every new, status-changed or deleted booking of this flush
    in line with its status (called before each flush)."""
    new, dirty, deleted = session.new, session.dirty, session.deleted
    entering: list[tuple[Booking, str]] = []
    leaving: list[Booking] = [obj for obj in deleted if isinstance(obj, Booking)]
    kinds: dict[int, str] = {}
    with session.no_autoflush:
        for obj in [*new, *dirty]:
            if not isinstance(obj, Booking) or obj in deleted:
                continue
            is_new = obj in new
            if not is_new and not _status_changed(obj):
                continue
            kind = _status_kind(session, obj, kinds)
            if kind in REDEEMING_KINDS:
                entering.append((obj, kind))
            elif not is_new:
                leaving.append(obj)
        if not entering and not leaving:
            return
        for booking in leaving:
            existing = _locked_redemption(session, booking)
            if existing is not None:
                refund(session, existing)
        if entering:
            now = utcnow()
            with_cards = set(session.scalars(
                select(PassCard.customer_id).where(
                    PassCard.customer_id.in_({booking_customer_id(b) for b, _ in entering}),
                    PassCard.units_used < PassCard.units_total, live_card(now),
                ).distinct()
            ))
            for booking, kind in entering:
                _settle(session, booking, kind, booking_customer_id(booking) in with_cards, now)


def _locked_redemption(session: Session, booking: Booking) -> PassRedemption | None:
    """The booking's redemption, read after locking the booking row (PostgreSQL): a
    concurrent change of the same booking waits here and then sees what the other wrote."""
    if booking.id is None:
        return None
    session.execute(select(Booking.id).where(Booking.id == booking.id).with_for_update())
    return session.scalars(
        select(PassRedemption).where(PassRedemption.booking_id == booking.id)
        .execution_options(populate_existing=True)
    ).first()


def _settle(session: Session, booking: Booking, kind: str, may_have_card: bool, now: datetime) -> None:
    existing = _locked_redemption(session, booking)
    if existing is not None:
        card_type = session.get(PassCardType, existing.card.type_id) if existing.card is not None else None
        if kind == "no_show" and card_type is not None and not card_type.no_show_costs_unit:
            refund(session, existing)  # completed → no-show on a card where no-shows are free
        else:
            return
    if may_have_card:
        redeem(session, booking, kind, now)


def covering_cards(session: Session, booking: Booking, kind: str, now: datetime | None = None,
                   lock: bool = False) -> list[PassCard]:
    """The customer's valid cards that cover the booking's service, oldest first (locked for
    update on PostgreSQL when `lock`)."""
    service = booking.service or session.get(Service, booking.service_id)
    customer_id = booking_customer_id(booking)
    if service is None or customer_id is None:
        return []
    stmt = (
        select(PassCard).join(PassCardType, PassCardType.id == PassCard.type_id)
        .where(PassCard.customer_id == customer_id, live_card(now or utcnow()),
               PassCard.units_used < PassCard.units_total, covers(service.id, service.category))
        .order_by(PassCard.purchased_at, PassCard.id)
        .execution_options(populate_existing=True)
    )
    if kind == "no_show":
        stmt = stmt.where(PassCardType.no_show_costs_unit.is_(True))
    if lock:
        stmt = stmt.with_for_update(of=PassCard)
    return list(session.scalars(stmt))


def redeem(session: Session, booking: Booking, kind: str = "completed",
           now: datetime | None = None) -> PassRedemption | None:
    """Take one unit for `booking` from the customer's oldest valid covering card; None
    when there is none with a unit left."""
    now = now or utcnow()
    for card in covering_cards(session, booking, kind, now, lock=True):
        used = session.execute(
            update(PassCard).where(PassCard.id == card.id, PassCard.units_used < PassCard.units_total)
            .values(units_used=PassCard.units_used + 1).returning(PassCard.units_used)
            .execution_options(synchronize_session=False)
        ).scalar()
        if used is None:
            continue  # taken meanwhile (SQLite: another writer went first)
        set_committed_value(card, "units_used", used)
        redemption = PassRedemption(card=card, booking=booking, units=1, redeemed_at=now)
        session.add(redemption)
        return redemption
    return None


def refund(session: Session, redemption: PassRedemption) -> None:
    """Give the redemption's units back to its card and remove it."""
    used = session.execute(
        update(PassCard).where(PassCard.id == redemption.card_id, PassCard.units_used >= redemption.units)
        .values(units_used=PassCard.units_used - redemption.units).returning(PassCard.units_used)
        .execution_options(synchronize_session=False)
    ).scalar()
    card = session.identity_map.get(sa_inspect(PassCard).identity_key_from_primary_key((redemption.card_id,)))
    if card is not None and used is not None:
        set_committed_value(card, "units_used", used)
    session.delete(redemption)


# --- renewal reminders -----------------------------------------------------------
def renewal_threshold(session: Session) -> int:
    from app.models import Setting

    value = session.scalar(select(Setting.value).where(Setting.key == RENEWAL_SETTING))
    try:
        return max(0, int(str(value).strip()))
    except (TypeError, ValueError):
        return RENEWAL_DEFAULT


def cards_to_renew(session: Session, remaining: int | None = None, now: datetime | None = None) -> list[PassCard]:
    """Valid cards with at most `remaining` units left (default: the setting
    card_renewal_remaining) whose customer has no newer card of the same type and was not
    yet reminded since buying it; oldest first."""
    now = now or utcnow()
    remaining = renewal_threshold(session) if remaining is None else remaining
    other = PassCard.__table__.alias("newer_card")
    reminded = exists().where(
        NotificationLog.customer_id == PassCard.customer_id, NotificationLog.kind == RENEWAL_KIND,
        NotificationLog.created_at >= PassCard.purchased_at,
    )
    has_newer = exists().where(
        other.c.customer_id == PassCard.customer_id, other.c.type_id == PassCard.type_id,
        or_(other.c.purchased_at > PassCard.purchased_at,
            and_(other.c.purchased_at == PassCard.purchased_at, other.c.id > PassCard.id)),
    )
    return list(session.scalars(
        select(PassCard).where(
            live_card(now), PassCard.units_total - PassCard.units_used <= remaining,
            not_(has_newer), not_(reminded),
        ).order_by(PassCard.purchased_at, PassCard.id)
    ))


def queue_card_renewals(session: Session, remaining: int | None = None) -> list[NotificationLog]:
    """Enqueue a renewal reminder (through `queue_customer_message`) for each card of
    `cards_to_renew`, its text (app/services/notification_texts.py) in the customer's
    language; customers who cannot get an e-mail are left out."""
    from app.services.notification_texts import card_context, render
    from app.services.notifications import MessageRefused, queue_customer_message

    queued: list[NotificationLog] = []
    for card in cards_to_renew(session, remaining):
        subject, body = render(RENEWAL_KIND, getattr(card.customer, "language", "de"), card_context(session, card))
        try:
            queued.append(queue_customer_message(session, card.customer, RENEWAL_KIND, subject, body))
        except MessageRefused:
            continue
    return queued


def remaining_units(session: Session, customer_id: int) -> int:
    now = utcnow()
    return session.scalar(
        select(func.coalesce(func.sum(PassCard.units_total - PassCard.units_used), 0))
        .where(PassCard.customer_id == customer_id, live_card(now))
    ) or 0

