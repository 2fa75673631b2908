"""Booking reminders: who gets one, which are due, and the claim that makes each happen once.

A booking's "Erinnerung" switch defaults from its service (`reminder_default`) and
the customer's consent to e-mail or SMS. `dispatch_due_reminders` claims every due
booking (reminder on, not cancelled, starting within `reminder_hours`) by inserting
(booking_id, start_at) into booking_reminder with ON CONFLICT DO NOTHING: a second
worker, a retried job or an overlapping cron run finds the claim and sends nothing;
a moved booking has a new start time, so it is claimed (and reminded) again.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from app.jobs.queue import enqueue_after_commit
from app.models import Booking, BookingReminder, Customer, NotificationLog, Service, Setting
from app.models.types import utcnow

REMINDER_HOURS_KEY = "reminder_hours"
DEFAULT_REMINDER_HOURS = 24
BATCH = 500
SEND_JOB = "app.jobs.notifications.send_notification"


def reminder_hours(session: Session) -> int:
    value = session.scalar(select(Setting.value).where(Setting.key == REMINDER_HOURS_KEY))
    try:
        hours = int(str(value).strip())
    except (TypeError, ValueError):
        return DEFAULT_REMINDER_HOURS
    return hours if 1 <= hours <= 24 * 14 else DEFAULT_REMINDER_HOURS


def reminder_channel(customer: Customer | None) -> tuple[str, str] | None:
    """(channel, recipient) the customer agreed to: e-mail first, then SMS; None without consent."""
    if customer is None or customer.erased_at is not None:
        return None
    if customer.consent_email and customer.email:
        return "email", customer.email
    if customer.consent_sms and customer.phone:
        return "sms", customer.phone
    return None


def reminder_default(service: Service | None, customer: Customer | None) -> bool:
    return bool(service is not None and service.reminder_default and reminder_channel(customer) is not None)


def _insert(session: Session):
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(
        BookingReminder.__table__)


def claim_due(session: Session, now: datetime, hours: int, limit: int = BATCH) -> list[tuple[int, datetime]]:
    """Claim up to `limit` due reminders; returns the claimed (booking_id, start_at)."""
    claimed = exists().where(BookingReminder.booking_id == Booking.id, BookingReminder.start_at == Booking.start_at)
    due = (
        select(Booking.id, Booking.start_at, literal(now, BookingReminder.created_at.type))
        .where(Booking.reminder.is_(True), Booking.cancelled.is_(False),
               Booking.start_at > now, Booking.start_at <= now + timedelta(hours=hours), ~claimed)
        .order_by(Booking.start_at, Booking.id).limit(limit)
    )
    table = BookingReminder.__table__
    statement = (
        _insert(session).from_select(["booking_id", "start_at", "created_at"], due)
        .on_conflict_do_nothing(index_elements=["booking_id", "start_at"])
        .returning(table.c.booking_id, table.c.start_at)
    )
    return [tuple(row) for row in session.execute(statement)]


def dispatch_due_reminders(session: Session, now: datetime | None = None) -> int:
    """Claim, record (NotificationLog "queued") and enqueue every due reminder, in
    batches, each batch one transaction. Returns how many were queued."""
    now = now or utcnow()
    hours = reminder_hours(session)
    queued = 0
    while True:
        claims = claim_due(session, now, hours)
        if not claims:
            session.commit()
            return queued
        ids = [booking_id for booking_id, _start in claims]
        bookings = {booking.id: booking for booking in session.scalars(
            select(Booking).where(Booking.id.in_(ids)).options(selectinload(Booking.customer)))}  # no N+1
        entries: dict[int, NotificationLog] = {}
        for booking_id, _start in claims:
            booking = bookings[booking_id]
            target = reminder_channel(booking.customer)
            if target is None:  # consent withdrawn since the switch was set: claimed, nothing sent
                continue
            channel, recipient = target
            entries[booking_id] = NotificationLog(
                kind="reminder", channel=channel, recipient=recipient, customer_id=booking.customer_id,
                employee_id=booking.employee_id, booking_id=booking_id, status="queued")
        session.add_all(entries.values())
        session.flush()
        links = [{"b": booking_id, "s": start, "n": entries[booking_id].id}
                 for booking_id, start in claims if booking_id in entries]
        if links:
            table = BookingReminder.__table__
            session.execute(
                table.update().where(and_(table.c.booking_id == bindparam("b"), table.c.start_at == bindparam("s")))
                .values(notification_id=bindparam("n")), links)
        for link in links:
            enqueue_after_commit(session, SEND_JOB, link["n"], queue="notifications")
        session.commit()
        queued += len(entries)


# --- coverage (Erinnerungsübersicht) ----------------------------------------------------------
COVERAGE_DAYS = 7


def _window(now: datetime, past: bool) -> tuple[datetime, datetime]:
    span = timedelta(days=COVERAGE_DAYS)
    return (now - span, now) if past else (now, now + span)


def coverage(session: Session, now: datetime, restrict_to=None) -> dict[str, dict[str, int]]:
    """Not cancelled bookings of the last and the next 7 days with and without reminder;
    for the past also how many reminders went out. `restrict_to` applies the row rules
    to a statement (app.security.restrict)."""
    restrict_to = restrict_to or (lambda statement, _model: statement)
    result = {}
    for key, past in (("past", True), ("future", False)):
        start, end = _window(now, past)
        rows = session.execute(restrict_to(
            select(Booking.reminder, func.count()).where(
                Booking.cancelled.is_(False), Booking.start_at >= start, Booking.start_at < end,
            ).group_by(Booking.reminder), Booking)).all()
        counts = {bool(reminder): count for reminder, count in rows}
        result[key] = {"with": counts.get(True, 0), "without": counts.get(False, 0)}
    start, end = _window(now, True)
    result["past"]["sent"] = session.scalar(restrict_to(
        select(func.count(func.distinct(Booking.id))).join(NotificationLog, NotificationLog.booking_id == Booking.id)
        .where(Booking.cancelled.is_(False), Booking.start_at >= start, Booking.start_at < end,
               NotificationLog.kind == "reminder", NotificationLog.status == "sent"), Booking)) or 0
    return result


def without_reminder(now: datetime):
    """Future bookings of the next 7 days without reminder (statement; the view adds row rules and paging)."""
    start, end = _window(now, False)
    return (select(Booking).where(Booking.cancelled.is_(False), Booking.reminder.is_(False),
                                  Booking.start_at >= start, Booking.start_at < end)
            .order_by(Booking.start_at, Booking.id))
