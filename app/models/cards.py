"""Mehrfachkarten: Kartentypen, verkaufte Karten, Einlösungen."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_appbuilder import Model
from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Index, Integer, Numeric, String, Table, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.models.bookings import Booking
from app.models.customers import Customer
from app.models.services import Service
from app.models.types import UTCDateTime, utcnow

# The services a card type covers; a type without services covers its category's services.
pass_card_type_service = Table(
    "pass_card_type_service",
    Model.metadata,
    Column("type_id", ForeignKey("pass_card_type.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("service.id", ondelete="CASCADE"), primary_key=True),
)


class PassCardType(Model):
    __tablename__ = "pass_card_type"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    units: Mapped[int] = mapped_column(Integer)
    validity_days: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    category: Mapped[str | None] = mapped_column(String(20))
    no_show_costs_unit: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")

    services: Mapped[list[Service]] = relationship(secondary=pass_card_type_service, order_by=Service.name)

    __table_args__ = (
        CheckConstraint("units > 0", name="ck_pass_card_type_units"),
        CheckConstraint("validity_days IS NULL OR validity_days > 0", name="ck_pass_card_type_validity"),
        CheckConstraint("price >= 0", name="ck_pass_card_type_price"),
    )

    def __str__(self) -> str:
        return self.name


class PassCard(Model):
    __tablename__ = "pass_card"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    type_id: Mapped[int] = mapped_column(ForeignKey("pass_card_type.id", ondelete="RESTRICT"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    units_total: Mapped[int] = mapped_column(Integer)
    units_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    type: Mapped[PassCardType] = relationship()
    customer: Mapped[Customer] = relationship()

    __table_args__ = (
        CheckConstraint("units_total > 0", name="ck_pass_card_units_total"),
        CheckConstraint("units_used >= 0", name="ck_pass_card_units_used"),
        CheckConstraint("units_used <= units_total", name="ck_pass_card_units_remaining"),
        CheckConstraint("price >= 0", name="ck_pass_card_price"),
        CheckConstraint("expires_at IS NULL OR expires_at > purchased_at", name="ck_pass_card_expiry"),
        Index("ix_pass_card_customer", "customer_id", "purchased_at"),
    )

    @property
    def units_remaining(self) -> int:
        return self.units_total - (self.units_used or 0)

    def __str__(self) -> str:
        return f"{self.type} ({self.units_remaining}/{self.units_total})"


class PassRedemption(Model):
    """One unit taken from a card for one booking; a booking redeems at most once."""

    __tablename__ = "pass_redemption"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("pass_card.id", ondelete="CASCADE"), index=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("booking.id", ondelete="CASCADE"), unique=True)
    units: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    card: Mapped[PassCard] = relationship()
    booking: Mapped[Booking] = relationship()

    __table_args__ = (CheckConstraint("units > 0", name="ck_pass_redemption_units"),)

    def __str__(self) -> str:
        return f"{self.card} – {self.booking}"


@event.listens_for(Session, "before_flush")
def _redeem_on_status_change(session: Session, flush_context, instances) -> None:
    """Every way a booking's status moves (status workflow, forms, API, history revert)
    flushes it: redeem or give back its pass card unit here (app/services/cards.py), then
    the bonus points, which need to know whether a card paid (app/services/bonus.py)."""
    from app.services.bonus import sync_bonus
    from app.services.cards import sync_redemptions

    sync_redemptions(session)
    sync_bonus(session)
