"""Staff notifications: an employee who chose SMS or Telegram hears of a new booking,
a cancellation, and a change of their next day's schedule (seed 000).

A session hook records them as NotificationLog "queued" in the same flush as the
booking change (before_flush) and enqueues their sending after the commit
(after_flush, when the rows have ids); a rolled-back change sends nothing.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import g, has_app_context
from sqlalchemy import event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from app.jobs.queue import enqueue_after_commit
from app.models import Booking, Employee, NotificationLog
from app.models.types import utcnow

PENDING_KEY = "terminbuch_staff_notifications"
SEND_JOB = "app.jobs.notifications.send_notification"


def staff_target(employee: Employee | None) -> tuple[str, str] | None:
    """(channel, recipient) of the employee's choice; None if off or the number/chat id is missing."""
    if employee is None or not employee.active:
        return None
    if employee.notify_channel == "sms" and employee.phone:
        return "sms", employee.phone
    if employee.notify_channel == "telegram" and employee.telegram_chat_id:
        return "telegram", employee.telegram_chat_id
    return None


def _tomorrow() -> date:
    from app.formatting import business_tz

    return (datetime.now(business_tz()) + timedelta(days=1)).date()


def _local_day(value: datetime | None) -> date | None:
    from app.formatting import to_local

    return to_local(value).date() if value is not None else None


def _changes(booking: Booking) -> list[tuple[str, int]]:
    """(kind, employee_id) notifications a dirty booking calls for."""
    attrs = sa_inspect(booking).attrs
    if True in attrs.cancelled.history.added:
        return [("staff_cancelled", booking.employee_id)] if booking.employee_id else []
    if booking.cancelled:
        return []
    start, employee = attrs.start_at.history, attrs.employee_id.history
    if not (start.has_changes() or employee.has_changes()):
        return []
    tomorrow = _tomorrow()
    days = {_local_day(value) for value in [*start.added, *start.deleted, *start.unchanged]}
    if tomorrow not in days:
        return []
    employees = {value for value in [*employee.added, *employee.deleted, *employee.unchanged] if value}
    return [("staff_schedule_changed", employee_id) for employee_id in sorted(employees)]


def _acting_employee_id(session: Session) -> int | None:
    user = getattr(g, "user", None) if has_app_context() else None
    user_id = getattr(user, "id", None)
    if user_id is None:
        return None
    return session.query(Employee.id).filter(Employee.user_id == user_id).scalar()


@event.listens_for(Session, "before_flush")
def _record_staff_notifications(session: Session, flush_context, instances) -> None:
    wanted: list[tuple[str, Booking, int]] = []
    now = utcnow()
    for obj in session.new:
        if isinstance(obj, Booking) and obj.employee_id and not obj.cancelled \
                and obj.start_at is not None and obj.start_at > now:
            wanted.append(("staff_new_booking", obj, obj.employee_id))
    for obj in session.dirty:
        if isinstance(obj, Booking) and obj.start_at is not None and obj.start_at > now:
            wanted.extend((kind, obj, employee_id) for kind, employee_id in _changes(obj))
    if not wanted:
        return
    with session.no_autoflush:
        myself = _acting_employee_id(session)
        entries = []
        for kind, booking, employee_id in wanted:
            if employee_id == myself:  # nobody needs a message about their own change
                continue
            target = staff_target(session.get(Employee, employee_id))
            if target is None:
                continue
            entry = NotificationLog(kind=kind, channel=target[0], recipient=target[1], employee_id=employee_id,
                                    booking=booking, status="queued")
            session.add(entry)
            entries.append(entry)
    if entries:
        session.info.setdefault(PENDING_KEY, []).extend(entries)


@event.listens_for(Session, "after_flush")
def _enqueue_staff_notifications(session: Session, flush_context) -> None:
    for entry in session.info.pop(PENDING_KEY, []):
        if entry.id is not None:
            enqueue_after_commit(session, SEND_JOB, entry.id, queue="notifications")


@event.listens_for(Session, "after_soft_rollback")
def _drop_staff_notifications(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(PENDING_KEY, None)
