"""Benachrichtigungsprotokoll: was an wen wann über welchen Kanal ging — nie der Text."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.bookings import Booking
from app.models.customers import Customer
from app.models.staff import Employee
from app.models.types import UTCDateTime, utcnow

CHANNELS = {"email": _l("E-Mail"), "sms": _l("SMS"), "telegram": _l("Telegram")}
NOTIFICATION_STATUSES = {"queued": _l("In Warteschlange"), "sent": _l("Gesendet"), "failed": _l("Fehlgeschlagen")}


class NotificationLog(Model):
    __tablename__ = "notification_log"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employee.id", ondelete="SET NULL"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    customer: Mapped[Customer | None] = relationship()
    employee: Mapped[Employee | None] = relationship()
    booking: Mapped[Booking | None] = relationship()

    __table_args__ = (
        CheckConstraint("channel IN ('email', 'sms', 'telegram')", name="ck_notification_channel"),
        CheckConstraint("status IN ('queued', 'sent', 'failed')", name="ck_notification_status"),
        Index("ix_notification_customer", "customer_id", "created_at"),
        Index("ix_notification_booking", "booking_id"),
    )

    @property
    def result(self) -> tuple[str, str | None]:
        """Status and error text together: the log shows a failure with its reason."""
        return self.status, self.error

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient}"


class BookingReminder(Model):
    """A reminder claimed for a booking at one start time: the primary key makes the
    reminder of a booking's time happen once, whatever retries, workers or overlapping
    cron runs do (a moved booking has a new start time and gets a new reminder)."""

    __tablename__ = "booking_reminder"

    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notification_log.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (PrimaryKeyConstraint("booking_id", "start_at", name="pk_booking_reminder"),)
