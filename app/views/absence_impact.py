"""Absence impact: after an absence is saved, the bookings it collides with, and per
booking the colleagues free at exactly that time or the employee's next free slots.
The manager picks; every chosen move happens in one transaction (all or nothing),
each moved booking's customer gets a `booking_moved` notification queued.

Mixed into AbsenceView: the page lives at /absenceview/impact/<pk> and needs the
view's can_edit (Manager/Owner), the same right that changes the absence."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.extensions import db
from app.formatting import fmt_datetime, to_local
from app.models import Absence, Booking, Employee
from app.models.staff import WEEKDAYS
from app.security import restrict
from app.services.availability import free_slots
from app.services.bookings import BookingOverlap, flush_booking
from app.services.notifications import queue_booking_notification
from app.services.working_time import working_time_conflict
from app.views.validators import parse_id

KEEP = "keep"
NEAREST_SLOTS = 3
MAX_COLLEAGUES = 5
SEARCH_DAYS = 14


@dataclass
class MoveOption:
    value: str  # "<employee_id>@<unix start>"
    label: str


@dataclass
class Impact:
    booking: Booking
    colleagues: list[MoveOption] = field(default_factory=list)
    slots: list[MoveOption] = field(default_factory=list)


def colliding_bookings(session: Session, absence: Absence) -> list[Booking]:
    """Non-cancelled bookings of the absent employee overlapping the absence (row rules applied)."""
    stmt = (
        select(Booking)
        .options(joinedload(Booking.customer), joinedload(Booking.service), joinedload(Booking.employee))
        .where(Booking.employee_id == absence.employee_id, Booking.cancelled.isnot(True),
               Booking.start_at < absence.end_at, Booking.end_at > absence.start_at)
        .order_by(Booking.start_at, Booking.id)
    )
    return list(session.scalars(restrict(stmt, Booking)).unique())


def option_value(employee_id: int, start: datetime) -> str:
    return f"{employee_id}@{int(start.timestamp())}"


LAST_TIMESTAMP = 253402300799  # 9999-12-31 23:59:59 UTC, the last datetime Python holds


def parse_option(value: str) -> tuple[int, datetime] | None:
    emp, _sep, stamp = value.partition("@")
    employee_id = parse_id(emp)
    valid_stamp = stamp.isascii() and stamp.isdigit() and int(stamp) <= LAST_TIMESTAMP
    if employee_id is None or not valid_stamp:
        return None
    return employee_id, datetime.fromtimestamp(int(stamp), timezone.utc)


def _slot_label(start: datetime) -> str:
    local = to_local(start)
    return f"{WEEKDAYS[local.weekday()]}, {local:%d.%m.%Y %H:%M}"


def colleague_options(session: Session, booking: Booking) -> list[MoveOption]:
    """Colleagues of the booking's location free at exactly the booking's time (working,
    not absent, no overlap, the room free); those who have done this service before
    first. A customer is never moved to another branch from here."""
    candidates = set(session.scalars(select(Employee.id).where(
        Employee.active.is_(True), Employee.location_id == booking.location_id,
        Employee.id != booking.employee_id,
    )))
    if not candidates:
        return []
    day = to_local(booking.start_at).date()
    free = {slot.employee_id for slot in free_slots(
        booking.service_id, day, day, step_minutes=1, now=booking.start_at, session=session,
        exclude_booking_id=booking.id, employee_ids=candidates,
    ) if slot.start == booking.start_at}
    if not free:
        return []
    experienced = set(session.scalars(
        select(Booking.employee_id).where(Booking.service_id == booking.service_id, Booking.employee_id.in_(free))
        .distinct()
    ))
    colleagues = session.scalars(select(Employee).options(joinedload(Employee.location))
                                 .where(Employee.id.in_(free))).all()
    colleagues = sorted(colleagues, key=lambda emp: (emp.id not in experienced, emp.last_name,
                                                     emp.first_name))[:MAX_COLLEAGUES]
    return [MoveOption(option_value(emp.id, booking.start_at),
                       _("%(name)s (%(location)s), gleiche Zeit", name=emp.full_name,
                         location=emp.location or "–"))
            for emp in colleagues]


def slot_options(session: Session, booking: Booking,
                 offered: list[tuple[datetime, datetime]] | None = None) -> list[MoveOption]:
    """The next free slots of the same employee from the booking's day on; none that
    overlaps a slot already `offered` to another booking of the page (picking the same
    time twice would only be refused), and the new offers are added to `offered`."""
    offered = [] if offered is None else offered
    day = to_local(booking.start_at).date()
    slots = free_slots(booking.service_id, day, day + timedelta(days=SEARCH_DAYS), booking.employee_id,
                       session=session, exclude_booking_id=booking.id)
    chosen = [slot for slot in slots
              if not any(slot.start < until and slot.end > since for since, until in offered)][:NEAREST_SLOTS]
    offered.extend((slot.start, slot.end) for slot in chosen)
    return [MoveOption(option_value(slot.employee_id, slot.start), _slot_label(slot.start)) for slot in chosen]


def impacts(session: Session, absence: Absence) -> list[Impact]:
    offered: list[tuple[datetime, datetime]] = []
    return [Impact(booking, colleague_options(session, booking), slot_options(session, booking, offered))
            for booking in colliding_bookings(session, absence)]


def move_bookings(session: Session, moves: list[tuple[Booking, int, datetime]]) -> None:
    """Move every booking to (employee, start), keeping its duration, in one transaction:
    a move refused (working hours, absence, an overlap the database refuses) rolls all
    back and raises ValueError naming the booking. Commits on success."""
    try:
        for booking, employee_id, start in moves:
            label = str(booking)
            end = start + (booking.end_at - booking.start_at)
            reason = working_time_conflict(session, employee_id, start, end)
            if reason:
                raise ValueError(_("Termin %(booking)s: %(reason)s", booking=label, reason=reason))
            employee = session.get(Employee, employee_id)
            if employee.id != booking.employee_id and employee.location is not None:
                booking.location = employee.location
            booking.employee, booking.start_at, booking.end_at = employee, start, end
            try:
                flush_booking(session, booking)
            except BookingOverlap as exc:
                raise ValueError(_("Termin %(booking)s: %(reason)s", booking=label, reason=exc)) from exc
        for booking, _emp, _start in moves:
            queue_booking_notification(session, booking, "booking_moved")
        session.commit()
    except Exception:
        session.rollback()
        raise


class AbsenceImpactMixin:
    """For AbsenceView: after add/edit, go to the impact page when bookings collide."""

    show_template = "terminbuch/absence_impact_show.html"  # detail page with the "Betroffene Termine" link

    def post_add(self, item: Absence) -> None:
        super().post_add(item)
        g._saved_absence_id = item.id

    def post_update(self, item: Absence) -> None:
        super().post_update(item)
        g._saved_absence_id = item.id

    def _impact_redirect(self):
        absence = db.session.get(Absence, getattr(g, "_saved_absence_id", None) or 0)
        if absence is None or not colliding_bookings(db.session, absence):
            return None
        flash(_("Die Abwesenheit betrifft Termine: bitte entscheiden, was mit ihnen geschieht."), "warning")
        return redirect(url_for(f"{self.endpoint}.impact", pk=absence.id))

    def post_add_redirect(self):
        return self._impact_redirect() or super().post_add_redirect()

    def post_edit_redirect(self):
        return self._impact_redirect() or super().post_edit_redirect()

    @expose("/impact/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("edit")
    def impact(self, pk):
        """GET: the colliding bookings and the options. POST (CSRF): move the chosen ones."""
        absence = self.datamodel.get(pk, self._base_filters)
        if absence is None:
            abort(404)
        if request.method == "POST":
            return self._move_chosen(absence)
        return self.render_template(
            "terminbuch/absence_impact.html", title=_("Betroffene Termine"), absence=absence,
            impacts=impacts(db.session, absence), keep=KEEP, fmt_datetime=fmt_datetime,
        )

    def _move_chosen(self, absence: Absence):
        moves = []
        for booking in colliding_bookings(db.session, absence):  # forged ids of other bookings are ignored
            choice = request.form.get(f"move_{booking.id}", KEEP)
            if choice == KEEP:
                continue
            target = parse_option(choice)
            employee = db.session.get(Employee, target[0]) if target else None
            if employee is None or not employee.active:
                flash(_("Termin %(booking)s: ungültige Auswahl.", booking=booking), "danger")
                return redirect(url_for(f"{self.endpoint}.impact", pk=absence.id))
            moves.append((booking, employee.id, target[1]))
        if not moves:
            flash(_("Keine Termine verschoben."), "info")
            return redirect(url_for(f"{self.endpoint}.show", pk=absence.id))
        try:
            move_bookings(db.session, moves)
        except ValueError as exc:
            flash(_("Nichts verschoben. %(reason)s", reason=exc), "danger")
            return redirect(url_for(f"{self.endpoint}.impact", pk=absence.id))
        flash(_("%(count)d Termin(e) verschoben; die Kund:innen werden benachrichtigt.", count=len(moves)),
              "success")
        return redirect(url_for(f"{self.endpoint}.show", pk=absence.id))
