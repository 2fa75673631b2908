"""Bonusprogramme und das Punktekonto (Buchungsjournal)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import acting_user_id
from app.models.bookings import Booking
from app.models.customers import Customer
from app.models.services import Service
from app.models.types import UTCDateTime, utcnow


def _acting_user_id() -> int | None:
    return acting_user_id()

BONUS_KINDS = {
    "earn": _l("Gutschrift"),
    "redeem": _l("Einlösung"),
    "correction": _l("Korrektur"),
    "expiry": _l("Verfall"),
    "referral": _l("Empfehlung"),
}


# The services whose completed bookings earn points in a program; a program without services
# earns on its category's services, a program with neither on every service.
bonus_program_service = Table(
    "bonus_program_service",
    Model.metadata,
    Column("program_id", ForeignKey("bonus_program.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("service.id", ondelete="CASCADE"), primary_key=True),
)


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
    category: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")

    services: Mapped[list[Service]] = relationship(secondary=bonus_program_service, order_by=Service.name)

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
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), default=_acting_user_id
    )
    # A correction that takes back exactly one earlier line (an earn whose booking is no
    # longer completed, a redemption whose discount was removed): at most once per line.
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("bonus_transaction.id", ondelete="SET NULL"))
    # Referral lines: the referred customer whose first completed booking paid it. No foreign
    # key on purpose: a merge of duplicates must not move it (one payout per person).
    referred_customer_id: Mapped[int | None] = mapped_column(Integer)
    # A reward redeemed on a booking: the amount it took off the booking's price.
    discount: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))

    customer: Mapped[Customer] = relationship()
    program: Mapped[BonusProgram] = relationship()
    booking: Mapped[Booking | None] = relationship()
    reverses: Mapped[BonusTransaction | None] = relationship(remote_side=[id])
    created_by = relationship("User", foreign_keys=[created_by_id])

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
        CheckConstraint("kind = 'referral' OR referred_customer_id IS NULL", name="ck_bonus_transaction_referral"),
        CheckConstraint("reverses_id IS NULL OR kind = 'correction'", name="ck_bonus_transaction_reverses"),
        CheckConstraint("discount IS NULL OR (kind = 'redeem' AND discount > 0)", name="ck_bonus_transaction_discount"),
        UniqueConstraint("reverses_id", name="uq_bonus_transaction_reverses"),
        UniqueConstraint("referred_customer_id", name="uq_bonus_transaction_referred"),
        Index("ix_bonus_transaction_customer", "customer_id", "created_at"),
        Index("ix_bonus_transaction_booking", "booking_id"),
    )

    @property
    def kind_label(self) -> str:
        return str(BONUS_KINDS.get(self.kind, self.kind))

    def __str__(self) -> str:
        return f"{self.kind_label} {self.points:+d}"
