"""Termine und Terminstatus."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from flask import has_app_context
from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    event,
    select,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.models.customers import Customer
from app.models.services import Resource, Service
from app.models.staff import Employee, Location
from app.models.types import UTCDateTime, utcnow

STATUS_KINDS = {
    "start": _l("Start"),
    "confirmation": _l("Bestätigung"),
    "cancellation": _l("Stornierung"),
    "completed": _l("Abgeschlossen"),
    "no_show": _l("Nicht erschienen"),
    "neutral": _l("Neutral"),
}
BOOKING_SOURCES = {
    "online": _l("Online"),
    "phone": _l("Telefon"),
    "walk_in": _l("Laufkundschaft"),
    "backoffice": _l("Büro"),
}


class BookingStatus(Model):
    __tablename__ = "booking_status"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20))
    color: Mapped[str] = mapped_column(String(7), default="#777777", server_default="#777777")
    builtin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    __table_args__ = (
        CheckConstraint(
            "kind IN ('start', 'confirmation', 'cancellation', 'completed', 'no_show', 'neutral')",
            name="ck_booking_status_kind",
        ),
        CheckConstraint("length(color) = 7", name="ck_booking_status_color"),
    )

    @property
    def kind_label(self) -> str:
        return str(STATUS_KINDS.get(self.kind, self.kind))

    def __str__(self) -> str:
        return self.name


class Booking(Model):
    __tablename__ = "booking"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="RESTRICT"))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id", ondelete="RESTRICT"))
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resource.id", ondelete="SET NULL"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id", ondelete="SET NULL"))
    status_id: Mapped[int] = mapped_column(ForeignKey("booking_status.id", ondelete="RESTRICT"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    price: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    comment: Mapped[str | None] = mapped_column(Text)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20), default="backoffice", server_default="backoffice")
    # Left open (None) on a new booking: then from the service and the customer's consent.
    reminder: Mapped[bool] = mapped_column(Boolean, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A Manager/Owner booked this time although it lies outside the employee's working
    # hours or in an absence (app/services/working_time.py); the versions say who.
    hours_override: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Mirrors "status kind is cancellation" (kept by `_complete_new_bookings`): the
    # overlap constraints (PostgreSQL exclusion constraints, SQLite triggers — see
    # the double-booking migration) cannot look into booking_status.
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A place in a group session (service capacity > 1, kept by `_complete_new_bookings`):
    # bookings of the same service, employee and start share the slot up to the
    # capacity instead of being refused as overlaps (see the group-slots migration).
    shared_slot: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    customer: Mapped[Customer] = relationship()
    service: Mapped[Service] = relationship()
    employee: Mapped[Employee | None] = relationship()
    resource: Mapped[Resource | None] = relationship()
    location: Mapped[Location | None] = relationship()
    status: Mapped[BookingStatus] = relationship()

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ck_booking_span"),
        CheckConstraint("price IS NULL OR price >= 0", name="ck_booking_price"),
        CheckConstraint(
            "source IN ('online', 'phone', 'walk_in', 'backoffice')", name="ck_booking_source"
        ),
        Index("ix_booking_start", "start_at"),
        Index("ix_booking_employee_start", "employee_id", "start_at"),
        Index("ix_booking_customer_start", "customer_id", "start_at"),
        Index("ix_booking_service_start", "service_id", "start_at"),
        Index("ix_booking_status_start", "status_id", "start_at"),
        Index("ix_booking_resource_start", "resource_id", "start_at"),
        # the SQLite overlap triggers look up "ends after the new one starts"
        Index("ix_booking_employee_end", "employee_id", "end_at"),
        Index("ix_booking_resource_end", "resource_id", "end_at"),
    )

    def __str__(self) -> str:
        """Start in the business's local time (UTC outside an app context) and customer."""
        start = self.start_at
        if start is not None and has_app_context():
            from app.formatting import to_local

            start = to_local(start)
        when = f"{start:%d.%m.%Y %H:%M}" if start is not None else "–"
        return f"{when} {self.customer}"


def default_status(session: Session, service: Service) -> BookingStatus | None:
    """A booking starts in the first start status when its service runs the
    status workflow, otherwise it is confirmed at once."""
    kind = "start" if service.status_workflow else "confirmation"
    return session.scalars(
        select(BookingStatus).where(BookingStatus.kind == kind).order_by(BookingStatus.position)
    ).first()


def _status_kind(session: Session, booking: Booking, kinds: dict[int, str]) -> str | None:
    """Kind of the status the booking will have once flushed: a status set as a
    relation wins, then a changed or unloaded `status_id`, then the loaded relation."""
    state = sa_inspect(booking)
    status = state.dict.get("status")
    if not state.attrs.status.history.has_changes() and booking.status_id is not None and (
        status is None or state.attrs.status_id.history.has_changes()
    ):
        if booking.status_id not in kinds:  # one lookup per status and flush, not per booking
            status = session.get(BookingStatus, booking.status_id)
            kinds[booking.status_id] = status.kind if status is not None else None
        return kinds[booking.status_id]
    return status.kind if status is not None else None


def _sync_cancelled(session: Session, booking: Booking, kinds: dict[int, str]) -> None:
    kind = _status_kind(session, booking, kinds)
    if kind is not None and booking.cancelled is not (kind == "cancellation"):
        booking.cancelled = kind == "cancellation"


@event.listens_for(Session, "before_flush")
def _complete_new_bookings(session: Session, flush_context, instances) -> None:
    """Derive what a new or changed booking leaves open from its service:
    end time from the duration, price, status and location; keep `cancelled`
    in step with the status kind (also when a status's kind itself changes)."""
    new = session.new  # an IdentitySet built per access: take it once (O(n) not O(n²))
    dirty = session.dirty
    for obj in dirty:
        if isinstance(obj, BookingStatus) and obj.id is not None \
                and sa_inspect(obj).attrs.kind.history.has_changes():
            session.execute(
                update(Booking).where(Booking.status_id == obj.id)
                .values(cancelled=obj.kind == "cancellation")
                .execution_options(synchronize_session=False)
            )
    kinds: dict[int, str] = {}
    with session.no_autoflush:
        for obj in [*new, *dirty]:
            if isinstance(obj, Booking):
                _complete_booking(session, obj, obj in new, kinds)


def _complete_booking(session: Session, obj: Booking, is_new: bool, kinds: dict[int, str]) -> None:
    service = obj.service or (session.get(Service, obj.service_id) if obj.service_id else None)
    if service is not None:
        if obj.start_at is not None and obj.end_at is None:
            obj.end_at = obj.start_at + timedelta(minutes=service.duration_minutes)
        if is_new:
            if obj.price is None:
                obj.price = service.price
            if obj.status_id is None and obj.status is None:
                obj.status = default_status(session, service)
            if obj.reminder is None:
                from app.services.reminders import reminder_default

                customer = obj.customer or (session.get(Customer, obj.customer_id) if obj.customer_id else None)
                obj.reminder = reminder_default(service, customer)
            if obj.location_id is None and obj.location is None:
                employee = obj.employee or (
                    session.get(Employee, obj.employee_id) if obj.employee_id else None
                )
                if employee is not None:
                    obj.location = employee.location
    if service is not None and (is_new or _service_changed(obj)):
        shared = (service.capacity or 1) > 1  # a service not stored yet has no default yet
        if obj.shared_slot is not shared:
            obj.shared_slot = shared
    if is_new and obj.created_at is None:
        obj.created_at = utcnow()
    _sync_cancelled(session, obj, kinds)


def _service_changed(booking: Booking) -> bool:
    attrs = sa_inspect(booking).attrs
    return attrs.service.history.has_changes() or attrs.service_id.history.has_changes()
