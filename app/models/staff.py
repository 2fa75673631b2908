"""Filiale, Mitarbeiter, Arbeitszeiten, Abwesenheiten."""
from __future__ import annotations

from datetime import datetime, time

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.types import UTCDateTime, utcnow

WEEKDAYS = [_l("Montag"), _l("Dienstag"), _l("Mittwoch"), _l("Donnerstag"), _l("Freitag"), _l("Samstag"), _l("Sonntag")]
ABSENCE_KINDS = {
    "vacation": _l("Urlaub"), "sick": _l("Krankheit"), "training": _l("Fortbildung"), "other": _l("Sonstiges"),
}


class Location(Model):
    __tablename__ = "location"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    street: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(120))
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(200))
    lat: Mapped[float | None]
    lon: Mapped[float | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")

    def __str__(self) -> str:
        return self.name


STAFF_CHANNELS = {"none": _l("keine"), "sms": _l("SMS"), "telegram": _l("Telegram")}


class Employee(Model):
    __tablename__ = "employee"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(200), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    telegram_chat_id: Mapped[str | None] = mapped_column(String(40))
    # How the employee hears of new bookings, cancellations and changes of tomorrow's plan.
    notify_channel: Mapped[str] = mapped_column(
        String(10), CheckConstraint("notify_channel IN ('none', 'sms', 'telegram')", name="ck_employee_notify_channel"),
        default="none", server_default="none")
    color: Mapped[str | None] = mapped_column(String(7))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")

    location: Mapped[Location | None] = relationship()
    user = relationship("User")
    working_hours: Mapped[list[WorkingHours]] = relationship(
        back_populates="employee", cascade="all, delete-orphan"
    )
    absences: Mapped[list[Absence]] = relationship(
        back_populates="employee", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("color IS NULL OR length(color) = 7", name="ck_employee_color"),
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def __str__(self) -> str:
        return self.full_name


class WorkingHours(Model):
    """One weekly working block: weekday (0 = Monday) and a local time span."""

    __tablename__ = "working_hours"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id", ondelete="CASCADE"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id", ondelete="SET NULL"))
    weekday: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)

    employee: Mapped[Employee] = relationship(back_populates="working_hours")
    location: Mapped[Location | None] = relationship()

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_working_hours_weekday"),
        CheckConstraint("end_time > start_time", name="ck_working_hours_span"),
        Index("ix_working_hours_employee_weekday", "employee_id", "weekday"),
    )

    @property
    def weekday_name(self) -> str:
        return str(WEEKDAYS[self.weekday])

    def __str__(self) -> str:
        return f"{self.weekday_name} {self.start_time:%H:%M}–{self.end_time:%H:%M}"


class Absence(Model):
    __tablename__ = "absence"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), default="vacation")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)

    employee: Mapped[Employee] = relationship(back_populates="absences")

    __table_args__ = (
        CheckConstraint("end_at > start_at", name="ck_absence_span"),
        CheckConstraint(
            "kind IN ('vacation', 'sick', 'training', 'other')", name="ck_absence_kind"
        ),
        Index("ix_absence_employee_start", "employee_id", "start_at"),
    )

    def __str__(self) -> str:
        return f"{ABSENCE_KINDS.get(self.kind, self.kind)} {self.employee}"


class CalendarFeed(Model):
    """An employee's read-only ICS feed. Only the SHA-256 of the secret token is stored
    (the URL is shown once); not versioned, so no token reaches the history."""

    __tablename__ = "calendar_feed"

    employee_id: Mapped[int] = mapped_column(ForeignKey("employee.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    employee: Mapped[Employee] = relationship()
