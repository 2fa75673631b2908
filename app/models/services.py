"""Dienstleistungen und Räume/Ressourcen."""
from __future__ import annotations

from decimal import Decimal

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.staff import Location

SERVICE_CATEGORIES = {
    "einzelstunde": _l("Einzelstunde"),
    "kurs": _l("Kurs"),
    "gruppe": _l("Gruppe"),
    "seminar": _l("Seminar"),
}


class Resource(Model):
    __tablename__ = "resource"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id", ondelete="SET NULL"))
    capacity: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")

    location: Mapped[Location | None] = relationship()

    __table_args__ = (
        CheckConstraint("capacity >= 1", name="ck_resource_capacity"),
    )

    def __str__(self) -> str:
        return self.name


class Service(Model):
    __tablename__ = "service"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    category: Mapped[str] = mapped_column(String(20), default="einzelstunde")
    description: Mapped[str | None] = mapped_column(Text)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(4, 2), default=Decimal("19.00"), server_default="19.00")
    capacity: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status_workflow: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    reminder_default: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resource.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")

    resource: Mapped[Resource | None] = relationship()

    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="ck_service_duration"),
        CheckConstraint("buffer_minutes >= 0", name="ck_service_buffer"),
        CheckConstraint("price >= 0", name="ck_service_price"),
        CheckConstraint("capacity >= 1", name="ck_service_capacity"),
        CheckConstraint("vat_rate >= 0 AND vat_rate < 100", name="ck_service_vat"),
        CheckConstraint(
            "category IN ('einzelstunde', 'kurs', 'gruppe', 'seminar')", name="ck_service_category"
        ),
    )

    @property
    def category_label(self) -> str:
        return str(SERVICE_CATEGORIES.get(self.category, self.category))

    def __str__(self) -> str:
        return self.name
