"""No double booking: the database refuses an overlap (see the migration
`7c1e2f9a4b10_no_double_booking`); this module turns that refusal into a clean
German message for forms, the API and jobs alike."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.formatting import fmt_datetime
from app.models import Booking, Employee, Resource, Service

PG_EXCLUSION_VIOLATION = "23P01"
CAPACITY_FULL = "booking_capacity_full"


class BookingOverlap(ValueError):
    """The booking overlaps another non-cancelled booking of the same employee or
    resource. A ValueError, so FAB's forms flash it like any other refusal."""


def overlap_kind(exc: BaseException) -> str | None:
    """'employee' or 'resource' when `exc` is the database refusing an overlap,
    'capacity' when a group session is full, else None."""
    if not isinstance(exc, IntegrityError):
        return None
    orig = exc.orig
    if CAPACITY_FULL in str(orig):  # both databases: the capacity trigger's message
        return "capacity"
    if getattr(orig, "pgcode", None) == PG_EXCLUSION_VIOLATION:  # PostgreSQL: the exclusion constraint
        diag = getattr(orig, "diag", None)
        name = (getattr(diag, "constraint_name", None) or str(orig)) if diag is not None else str(orig)
        return "resource" if "resource" in name else "employee"
    message = str(orig)
    for kind in ("employee", "resource"):  # SQLite: the trigger's RAISE(ABORT, …)
        if f"booking_overlap_{kind}" in message:
            return kind
    return None


def overlap_message(session: Session, kind: str, related_id: int | None = None) -> str:
    """German message naming the employee (kind 'employee') or the room/resource
    ('resource') the booking collides with."""
    related = session.get(Employee if kind == "employee" else Resource, related_id) if related_id else None
    name = str(related) if related is not None else ""
    if not name:
        name = _("Mitarbeiter:in") if kind == "employee" else _("Raum")
    return _("Der Termin überschneidet sich mit einem anderen Termin von %(name)s.", name=name)


def flush_booking(session: Session, item: Booking) -> None:
    """Write the booking now, so the database's overlap rule answers before the
    commit. A refusal rolls the session back (nothing of the change stays); an
    overlap raises BookingOverlap with the German message, other errors pass on."""
    if item not in session:
        session.add(item)
    # who the booking is for, read now: a failed flush leaves nothing loadable
    related_ids = {kind: _related_id(item, kind) for kind in ("employee", "resource", "service")}
    start = item.start_at
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        kind = overlap_kind(exc)
        if kind is None:
            raise
        if kind == "capacity":
            raise BookingOverlap(capacity_message(session, related_ids["service"], start)) from exc
        raise BookingOverlap(overlap_message(session, kind, related_ids[kind])) from exc


def capacity_message(session: Session, service_id: int | None, start) -> str:
    service = session.get(Service, service_id) if service_id else None
    if service is None:
        return _("Dieser Termin ist ausgebucht.")
    return _(
        "„%(service)s“ am %(when)s ist ausgebucht (%(places)d Plätze).",
        service=service.name, when=fmt_datetime(start), places=service.capacity,
    )


def _related_id(item: Booking, kind: str) -> int | None:
    """The employee/resource id the item will be written with: a relation set on
    it wins over its foreign key (synced only by the flush)."""
    related = sa_inspect(item).dict.get(kind)
    if related is not None:
        identity = sa_inspect(related).identity
        return identity[0] if identity else None
    return getattr(item, f"{kind}_id")
