"""Working hours and absences as a rule for booking writes.

A booking (new, or moved to another time or employee) must lie inside one working
block of its employee and outside their absences, unless a Manager/Owner overrides
it explicitly (`Booking.hours_override`, versioned: the audit trail says who). The
rule lives in the write checks of the screens and the API (`check_booking`), not in
the flush listener: the demo seeder and jobs write what they are given.

An employee without any working hours entered has no schedule to keep: only their
absences count. The interval logic is availability's (`weekly_hours`, `day_blocks`,
`absences_between`, `Intervals`).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from app.formatting import business_tz, fmt_datetime
from app.models import Booking, Employee, Service
from app.models.staff import ABSENCE_KINDS, WEEKDAYS
from app.security import MANAGER, OWNER, SYSTEM_USERNAME, current_user, role_names
from app.services.availability import Intervals, absences_between, day_blocks, weekly_hours


def may_override_hours() -> bool:
    """Manager, Owner (and the system user of jobs) may book outside working hours."""
    user = current_user()
    if user is None:
        return False
    return user.username == SYSTEM_USERNAME or bool(role_names(user) & {OWNER, MANAGER})


def within_working_hours(session: Session, employee_id: int, start: datetime, end: datetime,
                         tz: ZoneInfo | None = None) -> bool:
    """True when [start, end) lies inside one working block (adjacent blocks joined) of
    the employee's local day of `start`, or when the employee has no working hours at all."""
    week = weekly_hours(session, [employee_id]).get(employee_id)
    if not week:
        return True
    tz = tz or business_tz()
    day = start.astimezone(tz).date()
    return Intervals(day_blocks(day, week, tz)).covers(start, end)


def working_time_conflict(session: Session, employee_id: int | None, start: datetime, end: datetime,
                          tz: ZoneInfo | None = None) -> str | None:
    """The German reason why the employee cannot take [start, end) — an absence
    overlapping it, or the time lies outside their working hours — or None."""
    if employee_id is None:
        return None
    employee = session.get(Employee, employee_id)
    if employee is None:
        return None
    absences = absences_between(session, [employee_id], start, end)
    if absences:
        _emp, absent_from, absent_to, kind = absences[0]
        return _("%(name)s ist vom %(start)s bis %(end)s abwesend (%(kind)s).", name=employee.full_name,
                 start=fmt_datetime(absent_from), end=fmt_datetime(absent_to),
                 kind=ABSENCE_KINDS.get(kind, kind))
    tz = tz or business_tz()
    if not within_working_hours(session, employee_id, start, end, tz):
        local = start.astimezone(tz)
        return _("%(name)s arbeitet am %(weekday)s, %(date)s nicht zu dieser Zeit.", name=employee.full_name,
                 weekday=WEEKDAYS[local.weekday()], date=f"{local:%d.%m.%Y}")
    return None


PLACEMENT = ("start_at", "end_at", "employee_id", "employee")


def _placement_changed(booking: Booking) -> bool:
    state = sa_inspect(booking)
    return state.identity is None or any(state.attrs[key].history.has_changes() for key in PLACEMENT)


def _booking_end(session: Session, booking: Booking) -> datetime:
    """The end the booking will be stored with (a blank end follows from the service's duration)."""
    if booking.end_at is not None:
        return booking.end_at
    service = booking.service or (session.get(Service, booking.service_id) if booking.service_id else None)
    return booking.start_at + timedelta(minutes=service.duration_minutes if service is not None else 0)


def check_booking_working_time(session: Session, booking: Booking) -> None:
    """Write check for a booking (foreign keys synced): raises ValueError with the German
    reason when it is new or moved (time or employee) outside working hours or into an
    absence without an override, or when someone who may not override sets one. A pure
    status/comment change is not checked."""
    state = sa_inspect(booking)
    override = bool(booking.hours_override)
    if override and not may_override_hours():
        if state.identity is None or state.attrs.hours_override.history.has_changes():
            raise ValueError(_("Nur Manager:innen und Inhaber:innen dürfen außerhalb der Arbeitszeit "
                               "oder während einer Abwesenheit buchen."))
        if _placement_changed(booking):  # moved by someone who may not override: the rule applies again
            booking.hours_override = override = False
    if override or booking.employee_id is None or booking.start_at is None or not _placement_changed(booking):
        return
    message = working_time_conflict(session, booking.employee_id, booking.start_at, _booking_end(session, booking))
    if message:
        raise ValueError(message)
