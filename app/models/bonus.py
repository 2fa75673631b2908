"""Bonusprogramme und das Punktekonto (Buchungsjournal)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.bookings import Booking
from app.models.customers import Customer
from app.models.types import UTCDateTime, utcnow

BONUS_KINDS = {
    "earn": _l("Gutschrift"),
    "redeem": _l("Einlösung"),
    "correction": _l("Korrektur"),
    "expiry": _l("Verfall"),
    "referral": _l("Empfehlung"),
}


class BonusProgram(Model):
    __tablename__ = "bonus_program"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    points_per_euro: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    threshold: Mapped[int] = mapped_column(Integer)
    reward_name: Mapped[str] = mapped_column(String(120))
    reward_kind: Mapped[str] = mapped_column(String(10), default="percent")
    reward_value: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    referral_points: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")

    __table_args__ = (
        CheckConstraint("points_per_euro >= 0", name="ck_bonus_program_rate"),
        CheckConstraint("threshold > 0", name="ck_bonus_program_threshold"),
        CheckConstraint("reward_value > 0", name="ck_bonus_program_reward"),
        CheckConstraint("referral_points >= 0", name="ck_bonus_program_referral"),
        CheckConstraint("reward_kind IN ('percent', 'fixed')", name="ck_bonus_program_kind"),
        CheckConstraint(
            "reward_kind <> 'percent' OR reward_value <= 100", name="ck_bonus_program_percent"
        ),
    )

    def __str__(self) -> str:
        return self.name


class BonusTransaction(Model):
    """One ledger line; a customer's balance is the sum of their lines."""

    __tablename__ = "bonus_transaction"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    program_id: Mapped[int] = mapped_column(ForeignKey("bonus_program.id", ondelete="RESTRICT"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(12))
    points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    customer: Mapped[Customer] = relationship()
    program: Mapped[BonusProgram] = relationship()
    booking: Mapped[Booking | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            "kind IN ('earn', 'redeem', 'correction', 'expiry', 'referral')",
            name="ck_bonus_transaction_kind",
        ),
        CheckConstraint("points <> 0", name="ck_bonus_transaction_points"),
        CheckConstraint(
            "(kind NOT IN ('earn', 'referral') OR points > 0) AND (kind NOT IN ('redeem', 'expiry') OR points < 0)",
            name="ck_bonus_transaction_sign",
        ),
        Index("ix_bonus_transaction_customer", "customer_id", "created_at"),
    )

    @property
    def kind_label(self) -> str:
        return str(BONUS_KINDS.get(self.kind, self.kind))

    def __str__(self) -> str:
        return f"{self.kind_label} {self.points:+d}"
