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
)
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
    reminder: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

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


@event.listens_for(Session, "before_flush")
def _complete_new_bookings(session: Session, flush_context, instances) -> None:
    """Derive what a new or changed booking leaves open from its service:
    end time from the duration, price, status and location."""
    new = session.new  # an IdentitySet built per access: take it once (O(n) not O(n²))
    for obj in [*new, *session.dirty]:
        if not isinstance(obj, Booking):
            continue
        service = obj.service or (session.get(Service, obj.service_id) if obj.service_id else None)
        if service is None:
            continue
        if obj.start_at is not None and obj.end_at is None:
            obj.end_at = obj.start_at + timedelta(minutes=service.duration_minutes)
        if obj in new:
            if obj.price is None:
                obj.price = service.price
            if obj.status_id is None and obj.status is None:
                obj.status = default_status(session, service)
            if obj.location_id is None and obj.location is None:
                employee = obj.employee or (
                    session.get(Employee, obj.employee_id) if obj.employee_id else None
                )
                if employee is not None:
                    obj.location = employee.location
            if obj.created_at is None:
                obj.created_at = utcnow()
