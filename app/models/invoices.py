"""Rechnungen und Rechnungspositionen."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_appbuilder import Model
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.bookings import Booking
from app.models.cards import PassCard
from app.models.customers import Customer
from app.models.types import UTCDateTime, utcnow

INVOICE_STATUSES = {"draft": _l("Entwurf"), "issued": _l("Ausgestellt"), "cancelled": _l("Storniert")}
CENT = Decimal("0.01")


class Invoice(Model):
    __tablename__ = "invoice"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"), index=True)
    year: Mapped[int | None] = mapped_column(Integer)
    sequence: Mapped[int | None] = mapped_column(Integer)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="draft", server_default="draft")
    cancels_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    # The addressee as issued (name, address lines): an issued invoice keeps it even when
    # the customer is later anonymized on request (§ 14 UStG).
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    recipient_address: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer] = relationship()
    cancels: Mapped[Invoice | None] = relationship(remote_side=[id])
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan",
        order_by="InvoiceLine.position",
    )

    __table_args__ = (
        UniqueConstraint("year", "sequence", name="uq_invoice_year_sequence"),
        CheckConstraint("status IN ('draft', 'issued', 'cancelled')", name="ck_invoice_status"),
        CheckConstraint(
            "status = 'draft' OR (number IS NOT NULL AND issued_at IS NOT NULL)",
            name="ck_invoice_issued_numbered",
        ),
        CheckConstraint("sequence IS NULL OR sequence > 0", name="ck_invoice_sequence"),
    )

    @property
    def total_net(self) -> Decimal:
        return sum((line.net for line in self.lines), Decimal("0.00"))

    @property
    def total_gross(self) -> Decimal:
        return sum((line.gross for line in self.lines), Decimal("0.00"))

    def keep_recipient(self) -> None:
        """Copy the customer's name and address onto the invoice, unless it has them already
        (issuing does it; an erasure on request does it for an invoice issued without)."""
        customer = self.customer
        if self.recipient_name is not None or customer is None:
            return
        self.recipient_name = customer.full_name
        town = " ".join(part for part in (customer.postal_code, customer.city) if part)
        self.recipient_address = "\n".join(part for part in (customer.street, town) if part) or None

    def __str__(self) -> str:
        return self.number or _("Entwurf #%(id)s", id=self.id)


class InvoiceLine(Model):
    __tablename__ = "invoice_line"
    __versioned__ = {}

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=1)
    description: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("1"))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(4, 2), default=Decimal("19.00"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id", ondelete="RESTRICT"), index=True)
    pass_card_id: Mapped[int | None] = mapped_column(ForeignKey("pass_card.id", ondelete="RESTRICT"))

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
    booking: Mapped[Booking | None] = relationship()
    pass_card: Mapped[PassCard | None] = relationship()

    __table_args__ = (
        CheckConstraint("quantity <> 0", name="ck_invoice_line_quantity"),
        CheckConstraint("vat_rate >= 0 AND vat_rate < 100", name="ck_invoice_line_vat"),
    )

    @property
    def net(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(CENT)

    @property
    def gross(self) -> Decimal:
        return (self.net * (1 + self.vat_rate / 100)).quantize(CENT)

    def __str__(self) -> str:
        return self.description
