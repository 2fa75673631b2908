"""Free start times for the back-office booking form (GET /bookingview/slots):
`free_slots` as JSON, with the row rules (an Employee gets only their own)."""
from __future__ import annotations

from datetime import date, timedelta

from flask import jsonify, request
from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.formatting import to_local
from app.models import Booking, Employee
from app.security import employee_scope, restrict
from app.services.availability import free_slots
from app.views.validators import parse_id

MAX_DAYS = 14


class BadSlotRequest(ValueError):
    pass


def _int_arg(name: str) -> int | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    number = parse_id(value)
    if number is None:
        raise BadSlotRequest(_("Ungültige Angabe: %(name)s.", name=name))
    return number


def _date_arg() -> date | None:
    value = (request.args.get("date") or "").strip()[:10]
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadSlotRequest(_("Ungültiges Datum.")) from exc


def _visible_booking(pk: int | None) -> int | None:
    """The booking being edited does not block its own time (when the user may see it)."""
    if pk is None:
        return None
    return db.session.scalar(restrict(select(Booking.id).where(Booking.id == pk), Booking))


def slots_response():
    """?service=&employee=&date=YYYY-MM-DD[&days=n][&booking=id] → {"slots": [...]}, local
    starts in the form's format. Nothing chosen yet → no slots; bad input → 400."""
    try:
        service_id, employee_id, booking_id = _int_arg("service"), _int_arg("employee"), _int_arg("booking")
        day, days = _date_arg(), _int_arg("days") or 1
        if not 1 <= days <= MAX_DAYS:
            raise BadSlotRequest(_("Höchstens %(days)d Tage.", days=MAX_DAYS))
    except BadSlotRequest as exc:
        return jsonify(message=str(exc)), 400
    scope = employee_scope()
    if scope is not None:
        if employee_id not in (None, scope):
            return jsonify(message=_("Sie können nur eigene Termine anlegen oder ändern.")), 403
        employee_id = scope
    if service_id is None or day is None:
        return jsonify(slots=[])
    try:
        slots = free_slots(service_id, day, day + timedelta(days=days - 1), employee_id,
                           exclude_booking_id=_visible_booking(booking_id))
    except LookupError:
        return jsonify(message=_("Unbekannte Dienstleistung.")), 400
    names = dict(db.session.execute(
        select(Employee.id, Employee.first_name + " " + Employee.last_name)
        .where(Employee.id.in_({slot.employee_id for slot in slots}))
    ).all())
    return jsonify(slots=[
        {"employee_id": slot.employee_id, "employee": names.get(slot.employee_id, ""),
         "start": f"{to_local(slot.start):%Y-%m-%d %H:%M:%S}", "label": f"{to_local(slot.start):%H:%M}",
         "utc": slot.start.isoformat()}
        for slot in slots
    ])
