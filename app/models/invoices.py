"""Rechnungen und Rechnungspositionen."""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from flask_appbuilder import Model
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    Numeric,
    Select,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from app.models.bonus import BonusTransaction
from app.models.bookings import Booking
from app.models.cards import PassCard
from app.models.customers import Customer
from app.models.types import UTCDateTime, utcnow

INVOICE_STATUSES = {"draft": _l("Entwurf"), "issued": _l("Ausgestellt"), "cancelled": _l("Storniert")}
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
IMMUTABLE_MESSAGE = _l("Eine ausgestellte Rechnung kann nicht mehr geändert werden: Korrekturen nur per Storno.")


def cents(value: Decimal) -> Decimal:
    """Rounded to the cent, half up (the commercial rounding of German invoices)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class InvoiceCounter(Model):
    """The last issued sequence number of a year: issuing locks and increments it inside
    the issuing transaction, so numbers stay gapless (a rollback takes the increment back)."""

    __tablename__ = "invoice_counter"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


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
        return sum((line.net for line in self.lines), ZERO)

    @property
    def total_vat(self) -> Decimal:
        return sum((line.vat for line in self.lines), ZERO)

    @property
    def total_gross(self) -> Decimal:
        return sum((line.gross for line in self.lines), ZERO)

    def vat_breakdown(self) -> list[tuple[Decimal, Decimal, Decimal, Decimal]]:
        """(rate, net, VAT, gross) per VAT rate, ascending by rate."""
        groups: dict[Decimal, list[Decimal]] = {}
        for line in self.lines:
            sums = groups.setdefault(Decimal(line.vat_rate).normalize(), [ZERO, ZERO, ZERO])
            sums[0] += line.net
            sums[1] += line.vat
            sums[2] += line.gross
        return [(rate, *sums) for rate, sums in sorted(groups.items())]

    def addressee(self) -> tuple[str, str]:
        """(name, address lines): as issued; a draft has none yet, so its customer's."""
        customer = self.customer
        if self.recipient_name is not None or customer is None:
            return self.recipient_name or "", self.recipient_address or ""
        town = " ".join(part for part in (customer.postal_code, customer.city) if part)
        return customer.full_name, "\n".join(part for part in (customer.street, town) if part)

    def keep_recipient(self) -> None:
        """Copy the customer's name and address onto the invoice, unless it has them already
        (issuing does it; an erasure on request does it for an invoice issued without)."""
        if self.recipient_name is not None or self.customer is None:
            return
        self.recipient_name, address = self.addressee()
        self.recipient_address = address or None

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
    # True: unit_price is the consumer price including VAT (bookings, cards, bonus discounts);
    # False: unit_price is net and VAT is added on top.
    gross_pricing: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A bonus reward's discount line: the ledger line that paid for it.
    bonus_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("bonus_transaction.id"), index=True)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
    booking: Mapped[Booking | None] = relationship()
    pass_card: Mapped[PassCard | None] = relationship()
    bonus_transaction: Mapped[BonusTransaction | None] = relationship()

    __table_args__ = (
        CheckConstraint("quantity <> 0", name="ck_invoice_line_quantity"),
        CheckConstraint("vat_rate >= 0 AND vat_rate < 100", name="ck_invoice_line_vat"),
    )

    def amounts(self) -> tuple[Decimal, Decimal, Decimal]:
        """(net, VAT, gross) of the line, each to the cent (half up).

        Net pricing: net = qty × unit price, VAT = net × rate / 100, gross = net + VAT.
        Gross pricing (consumer prices incl. VAT, PAngV): gross = qty × unit price,
        VAT = gross × rate / (100 + rate), net = gross − VAT. Both rules are symmetric
        in the sign, so a Storno's negated line negates every amount exactly."""
        amount = cents(Decimal(self.quantity) * Decimal(self.unit_price))
        rate = Decimal(self.vat_rate)
        if self.gross_pricing:
            vat = cents(amount * rate / (100 + rate))
            return amount - vat, vat, amount
        vat = cents(amount * rate / 100)
        return amount, vat, amount + vat

    @property
    def net(self) -> Decimal:
        return self.amounts()[0]

    @property
    def vat(self) -> Decimal:
        return self.amounts()[1]

    @property
    def gross(self) -> Decimal:
        return self.amounts()[2]

    def __str__(self) -> str:
        return self.description


def invoiced(column) -> Select:
    """Ids (of `column`, e.g. InvoiceLine.booking_id) already on an invoice that stands: not
    cancelled (a Storno frees them again), and the Storno's own negated lines do not count."""
    return (select(column).join(Invoice, InvoiceLine.invoice_id == Invoice.id)
            .where(column.is_not(None), Invoice.status != "cancelled", Invoice.cancels_id.is_(None)))


# --- immutability: an issued (or cancelled) invoice and its lines never change ---------
# What may still change on an issued invoice: the payment (paid_at), the customer it is
# filed under (a merge of duplicates moves it), the addressee when it was issued without
# one (keep_recipient on erasure or merge), and issued → cancelled (its Storno).
# The database refuses the same with triggers (migration e5f6a7b8c9d0). The guard compares
# with the stored row (an attribute set after a commit has no loaded old value).
MUTABLE_WHEN_ISSUED = {"paid_at", "customer_id"}


def _stored(session: Session, table, pk: int | None) -> dict | None:
    if pk is None:
        return None
    row = session.connection().execute(select(table).where(table.c.id == pk)).mappings().first()
    return dict(row) if row is not None else None


def _stored_status(session: Session, invoice_id: int | None) -> str | None:
    stored = _stored(session, Invoice.__table__, invoice_id)
    return stored["status"] if stored else None


def _invoice_change_allowed(invoice: Invoice, stored: dict) -> bool:
    state = inspect(invoice)
    for column in Invoice.__table__.columns:
        key = column.key
        if key in MUTABLE_WHEN_ISSUED or not state.attrs[key].history.has_changes():
            continue
        old, new = stored[key], getattr(invoice, key)
        if old == new:
            continue
        if key == "status" and old == "issued" and new == "cancelled":
            continue
        if key in ("recipient_name", "recipient_address") and stored["recipient_name"] is None:
            continue
        return False
    return True


@event.listens_for(Session, "before_flush")
def _refuse_changes_of_issued_invoices(session: Session, _context, _instances) -> None:
    if not any(isinstance(obj, Invoice | InvoiceLine)
               for obj in (*session.new, *session.dirty, *session.deleted)):
        return
    for obj in (*session.dirty, *session.deleted):
        if not isinstance(obj, Invoice) or obj.id is None:
            continue
        stored = _stored(session, Invoice.__table__, obj.id)
        if stored is None or stored["status"] == "draft":
            continue
        if obj in session.deleted or not _invoice_change_allowed(obj, stored):
            raise ValueError(str(IMMUTABLE_MESSAGE))
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, InvoiceLine):
            continue
        if obj in session.dirty and not session.is_modified(obj):
            continue
        invoice_ids = set()
        if obj.invoice is not None:
            if not inspect(obj.invoice).pending:
                invoice_ids.add(obj.invoice.id)
        elif obj.invoice_id is not None:
            invoice_ids.add(obj.invoice_id)
        if obj not in session.new:  # the invoice it is stored under counts too (a line moved away)
            stored_line = _stored(session, InvoiceLine.__table__, obj.id)
            if stored_line is not None:
                invoice_ids.add(stored_line["invoice_id"])
        if any(_stored_status(session, pk) not in (None, "draft") for pk in invoice_ids):
            raise ValueError(str(IMMUTABLE_MESSAGE))
