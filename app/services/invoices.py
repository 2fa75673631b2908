"""Issuing invoices: gapless numbers per year, Storno, payment, VAT rates.

An issued invoice is a document: it never changes again (app/models/invoices.py refuses it
in the ORM, migration e5f6a7b8c9d0 in the database); a correction is a cancellation
invoice ("Storno") with the negated lines that references the original."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.formatting import business_tz, fmt_date, to_local
from app.models import Booking, BookingStatus, Invoice, InvoiceLine, PassCard, Setting
from app.models.invoices import InvoiceCounter, invoiced
from app.models.types import utcnow
from app.services.bonus import reverse_invoice_rewards

VAT_RATES_KEY = "vat_rates"
DEFAULT_VAT_RATES = (Decimal("19"), Decimal("7"), Decimal("0"))


def format_number(year: int, sequence: int) -> str:
    return f"{year}-{sequence:06d}"


def next_sequence(session: Session, year: int) -> int:
    """Take the next number of `year` inside the caller's transaction. The counter row is
    written first (an upsert: PostgreSQL row-locks it until commit, like SELECT … FOR UPDATE,
    and two first issues of a year cannot both insert it; SQLite serialises writers), so two
    concurrent issues wait for each other, and a rollback takes the number back: no gaps."""
    table = InvoiceCounter.__table__
    dialect = session.get_bind().dialect.name
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = upsert(table).values(year=year, last_sequence=1)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.year], set_={"last_sequence": table.c.last_sequence + 1},
    ).returning(table.c.last_sequence)
    return session.execute(statement).scalar_one()


def issue_invoice(session: Session, invoice: Invoice, *, now: datetime | None = None) -> Invoice:
    """Draft → issued with the next number of the year (flushes; the caller commits).
    ValueError (German) when refused; nothing changed then."""
    if invoice.status != "draft":
        raise ValueError(_("Diese Rechnung ist bereits ausgestellt."))
    session.flush()  # the draft's lines are written while it is still a draft
    session.refresh(invoice, ["lines"])
    if not invoice.lines:
        raise ValueError(_("Eine Rechnung ohne Positionen kann nicht ausgestellt werden."))
    if invoice.cancels_id is None and any(net < 0 or gross < 0 for _rate, net, _vat, gross in invoice.vat_breakdown()):
        raise ValueError(_("Eine Rechnung mit einem negativen Betrag je Steuersatz kann nicht ausgestellt werden: "
                           "bitte die Positionen prüfen (Gutschriften nur per Storno)."))
    now = now or utcnow()
    year = now.astimezone(business_tz()).year
    sequence = next_sequence(session, year)
    invoice.keep_recipient()
    invoice.year, invoice.sequence, invoice.number = year, sequence, format_number(year, sequence)
    invoice.issued_at = now
    invoice.status = "issued"
    session.flush()
    return invoice


def cancel_invoice(session: Session, invoice: Invoice, *, now: datetime | None = None) -> Invoice:
    """Storno: a new, issued invoice with the negated lines that references `invoice`, which
    becomes "cancelled" (flushes; the caller commits)."""
    if invoice.status != "issued":
        raise ValueError(_("Nur ausgestellte Rechnungen können storniert werden."))
    if invoice.cancels_id is not None:
        raise ValueError(_("Eine Stornorechnung kann nicht storniert werden."))
    storno = Invoice(
        customer_id=invoice.customer_id, cancels_id=invoice.id, status="draft",
        recipient_name=invoice.recipient_name, recipient_address=invoice.recipient_address,
        note=_("Storno der Rechnung %(number)s", number=invoice.number),
    )
    storno.lines = [
        InvoiceLine(position=line.position, description=line.description, quantity=-line.quantity,
                    unit_price=line.unit_price, vat_rate=line.vat_rate, gross_pricing=line.gross_pricing,
                    booking_id=line.booking_id, pass_card_id=line.pass_card_id)
        for line in invoice.lines
    ]
    session.add(storno)
    issue_invoice(session, storno, now=now)
    reverse_invoice_rewards(session, invoice)  # the rewards redeemed on it give their points back
    invoice.status = "cancelled"
    session.flush()
    return storno


def set_paid(session: Session, invoice: Invoice, paid: bool, *, now: datetime | None = None) -> None:
    if invoice.status == "draft":
        raise ValueError(_("Ein Entwurf kann nicht als bezahlt markiert werden."))
    invoice.paid_at = (now or utcnow()) if paid else None
    session.flush()


def parse_vat_rates(value: str | None) -> tuple[Decimal, ...]:
    """"19,7,0" (or "19; 7; 0", "19.5") → the rates; the default on an empty or broken value."""
    rates = []
    for part in (value or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            rate = Decimal(part)
        except InvalidOperation:
            return DEFAULT_VAT_RATES
        if not rate.is_finite() or not Decimal("0") <= rate < Decimal("100"):
            return DEFAULT_VAT_RATES
        rates.append(rate)
    return tuple(dict.fromkeys(rates)) or DEFAULT_VAT_RATES


def vat_rates(session: Session) -> tuple[Decimal, ...]:
    return parse_vat_rates(session.scalar(select(Setting.value).where(Setting.key == VAT_RATES_KEY)))


def setting_text(session: Session, key: str) -> str:
    return session.scalar(select(Setting.value).where(Setting.key == key)) or ""


# --- lines from completed bookings and sold pass cards ----------------------------------
def billable_bookings(session: Session, customer_id: int) -> list[Booking]:
    """Completed, not yet invoiced bookings of the customer, oldest first."""
    return list(session.scalars(
        select(Booking).join(BookingStatus, Booking.status_id == BookingStatus.id)
        .where(Booking.customer_id == customer_id, BookingStatus.kind == "completed",
               Booking.id.not_in(invoiced(InvoiceLine.booking_id)))
        .order_by(Booking.start_at, Booking.id)))


def billable_cards(session: Session, customer_id: int) -> list[PassCard]:
    """Sold, not yet invoiced pass cards of the customer."""
    return list(session.scalars(
        select(PassCard).where(PassCard.customer_id == customer_id,
                               PassCard.id.not_in(invoiced(InvoiceLine.pass_card_id)))
        .order_by(PassCard.purchased_at, PassCard.id)))


def add_billable_lines(session: Session, invoice: Invoice, booking_ids: list[int],
                       card_ids: list[int]) -> list[InvoiceLine]:
    """Lines for the chosen bookings (at their service's VAT rate) and cards (at the first
    configured VAT rate); their prices
    (the booking's, else its service's, the card's) are consumer prices including VAT, so the
    lines are gross-priced (`gross_pricing`: the VAT is taken out of the price, not added on
    top). ValueError (German) when a chosen one is not billable for this draft's customer."""
    if invoice.status != "draft":
        raise ValueError(_("Eine ausgestellte Rechnung kann nicht mehr geändert werden."))
    if not booking_ids and not card_ids:
        raise ValueError(_("Bitte mindestens einen Termin oder eine Mehrfachkarte wählen."))
    bookings = {b.id: b for b in billable_bookings(session, invoice.customer_id)}
    cards = {c.id: c for c in billable_cards(session, invoice.customer_id)}
    if any(pk not in bookings for pk in booking_ids) or any(pk not in cards for pk in card_ids):
        raise ValueError(_("Ein gewählter Eintrag ist nicht (mehr) abrechenbar."))
    rate = vat_rates(session)[0]
    position = max((line.position for line in invoice.lines), default=0)
    lines = []
    for pk in booking_ids:
        booking = bookings[pk]
        price = booking.price if booking.price is not None else booking.service.price
        position += 1
        lines.append(InvoiceLine(
            position=position, booking_id=pk, unit_price=price or Decimal("0"), gross_pricing=True,
            vat_rate=booking.service.vat_rate if booking.service.vat_rate is not None else rate,
            description=_("%(service)s am %(date)s", service=booking.service.name,
                          date=fmt_date(to_local(booking.start_at)))))
    for pk in card_ids:
        card = cards[pk]
        position += 1
        lines.append(InvoiceLine(position=position, pass_card_id=pk, unit_price=card.price, vat_rate=rate,
                                 gross_pricing=True, description=_("Mehrfachkarte %(name)s", name=card.type.name)))
    invoice.lines.extend(lines)
    session.flush()
    return lines
