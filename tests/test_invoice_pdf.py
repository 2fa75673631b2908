"""The invoice as a PDF (InvoiceView.pdf, app/services/invoice_pdf.py): A4, the content of the
printable view (sender, addressee as issued, number, date in the business time zone, the lines,
the VAT per rate, the totals in German format), umlauts, €, „ “ and – readable as text (the
embedded DejaVu Sans of app/static/fonts, no system font); a draft marked "Entwurf", a Storno
naming the cancelled invoice; the show permission and the row rules of the print view."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.extensions import db
from app.jobs.base import acting_as
from app.models import Customer, Invoice, InvoiceLine, Setting
from app.services.invoice_pdf import FONT_DIR, FONT_FILES, invoice_pdf
from app.services.invoices import cancel_invoice, issue_invoice
from tests.helpers_invoices import delete_invoices

# 23:30 UTC on 23.11. is already the 24th in Berlin: the date is the business time zone's
ISSUED_AT = datetime(2026, 11, 23, 23, 30, tzinfo=timezone.utc)
BUSINESS_NAME = "Salon Schöne Grüße"
BUSINESS_ADDRESS = "Musterweg 5\n10115 Berlin"
# (description, quantity, unit price, VAT rate, gross pricing)
LINES = (
    ("Färben & Föhnen „Spezial“ – lange Haare", "1", "1234.50", "19", True),
    ("Pflegeöl", "2", "10.00", "7", False),
)
# 1234.50 gross at 19 %: VAT 197.11, net 1037.39; 2 × 10.00 net at 7 %: VAT 1.40, gross 21.40
TOTALS = ("1.057,39 €", "198,51 €", "1.255,90 €")


# --- helpers ------------------------------------------------------------------------------------
@pytest.fixture()
def customer(app):
    """A customer with umlauts in name and address, and the business's name and address."""
    with app.app_context(), acting_as():
        row = Customer(first_name="Jürgen", last_name=f"Größe-{uuid4().hex[:8]}", street="Königstraße 5",
                       postal_code="10115", city="Berlin")
        db.session.add(row)
        saved = {}
        for key, value in (("business_name", BUSINESS_NAME), ("business_address", BUSINESS_ADDRESS)):
            setting = db.session.scalar(sa.select(Setting).where(Setting.key == key))
            saved[key], setting.value = setting.value, value
        db.session.commit()
        pk = row.id
    yield pk
    with app.app_context(), acting_as():
        db.session.rollback()
        delete_invoices(db.session, list(db.session.scalars(sa.select(Invoice.id).where(Invoice.customer_id == pk))))
        for key, value in saved.items():
            db.session.scalar(sa.select(Setting).where(Setting.key == key)).value = value
        db.session.delete(db.session.get(Customer, pk))
        db.session.commit()


def make_draft(customer_id: int, lines=LINES, note: str | None = None) -> int:
    invoice = Invoice(customer_id=customer_id, note=note)
    invoice.lines = [
        InvoiceLine(position=index, description=text, quantity=Decimal(quantity), unit_price=Decimal(price),
                    vat_rate=Decimal(rate), gross_pricing=gross)
        for index, (text, quantity, price, rate, gross) in enumerate(lines, start=1)
    ]
    db.session.add(invoice)
    db.session.commit()
    return invoice.id


def issued(customer_id: int, **kwargs) -> int:
    invoice = db.session.get(Invoice, make_draft(customer_id, **kwargs))
    issue_invoice(db.session, invoice, now=ISSUED_AT)
    db.session.commit()
    return invoice.id


def number_of(app, pk: int) -> str:
    with app.app_context():
        return db.session.get(Invoice, pk).number


def fetch(client, pk) -> PdfReader:
    """GET the invoice's PDF; checks the response's headers, returns the parsed PDF."""
    response = client.get(f"/invoiceview/pdf/{pk}")
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert response.headers["Cache-Control"] == "private, no-store"
    return PdfReader(io.BytesIO(response.data))


def text_of(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def is_a4(page) -> bool:
    box = page.mediabox
    return (float(box.left), float(box.bottom)) == (0, 0) and \
        (round(float(box.width), 2), round(float(box.height), 2)) == (595.28, 841.89)


# --- content --------------------------------------------------------------------------------------
def test_pdf_of_an_issued_invoice(app, customer, manager):
    with app.app_context(), acting_as():
        pk = issued(customer, note="Zahlbar „sofort“ – ohne Abzug.")
        invoice = db.session.get(Invoice, pk)
        assert (invoice.total_net, invoice.total_vat, invoice.total_gross) == (
            Decimal("1057.39"), Decimal("198.51"), Decimal("1255.90"))
        number, name = invoice.number, invoice.recipient_name
    response = manager.get(f"/invoiceview/pdf/{pk}")
    assert response.headers["Content-Disposition"] == f'inline; filename="Rechnung-{number}.pdf"'
    reader = fetch(manager, pk)
    assert len(reader.pages) == 1 and is_a4(reader.pages[0])
    text = text_of(reader)
    assert "Salon Schöne Grüße · Musterweg 5 · 10115 Berlin" in text  # the sender line
    assert name.startswith("Jürgen Größe-") and name in text and "Königstraße 5" in text
    assert f"Rechnungsnummer: {number}" in text
    assert "Rechnungsdatum: 24.11.2026" in text  # 23.11. 23:30 UTC, in Berlin
    assert re.search(r"^Rechnung$", text, re.M) and "Stornorechnung" not in text
    assert "Entwurf" not in text and "ENTWURF" not in text
    assert "Pos. Beschreibung Menge Einzelpreis Netto MwSt.-Satz MwSt. Brutto" in text
    assert "Färben & Föhnen „Spezial“ – lange Haare" in " ".join(text.split())  # may wrap in its column
    assert "1 1.234,50 € brutto 1.037,39 € 19 % 197,11 € 1.234,50 €" in text
    assert "2 Pflegeöl 2 10,00 € netto 20,00 € 7 % 1,40 € 21,40 €" in text
    assert "davon 7 % MwSt. 20,00 € 1,40 € 21,40 €" in text
    assert "davon 19 % MwSt. 1.037,39 € 197,11 € 1.234,50 €" in text
    assert "Summe {} {} {}".format(*TOTALS) in text
    assert "Zahlbar „sofort“ – ohne Abzug." in text
    assert f"{number} · Seite 1 von 1" in text
    # the fonts come from the repository (no system font), embedded as subsets
    fonts = {font["/BaseFont"] for page in reader.pages for font in page["/Resources"]["/Font"].values()}
    assert {str(font).split("+")[-1] for font in fonts} == {"DejaVuSansBook", "DejaVuSansBold"}
    descriptors = [font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
                   for page in reader.pages for font in page["/Resources"]["/Font"].values()]
    assert all("/FontFile2" in descriptor for descriptor in descriptors)  # embedded, not the reader's
    assert all((FONT_DIR / name).is_file() for name in FONT_FILES.values())
    assert (FONT_DIR / "LICENSE-DejaVu.txt").is_file()


def test_pdf_of_a_draft_says_entwurf(app, customer, manager):
    with app.app_context(), acting_as():
        pk = make_draft(customer)
        full_name = db.session.get(Customer, customer).full_name
    response = manager.get(f"/invoiceview/pdf/{pk}")
    assert response.headers["Content-Disposition"] == f'inline; filename="Rechnung-Entwurf-{pk}.pdf"'
    reader = fetch(manager, pk)
    assert is_a4(reader.pages[0])
    text = text_of(reader)
    assert "Rechnungsnummer: Entwurf" in text and "Rechnungsdatum: –" in text
    assert "Entwurf – keine gültige Rechnung" in text and "ENTWURF" in text  # note and watermark
    # a draft has no addressee of its own yet: the customer's name and address
    assert full_name in text and "Königstraße 5" in text and "10115 Berlin" in text
    assert "Summe {} {} {}".format(*TOTALS) in text
    assert f"Entwurf #{pk} · Seite 1 von 1" in text


def test_pdf_of_a_storno_names_the_cancelled_invoice(app, customer, manager):
    with app.app_context(), acting_as():
        pk = issued(customer)
        storno = cancel_invoice(db.session, db.session.get(Invoice, pk), now=ISSUED_AT)
        db.session.commit()
        storno_id, storno_number = storno.id, storno.number
    original = number_of(app, pk)
    text = text_of(fetch(manager, storno_id))
    assert f"Rechnungsnummer: {storno_number}" in text
    assert f"Stornorechnung zu {original}" in text
    assert "Summe -1.057,39 € -198,51 € -1.255,90 €" in text
    assert "2 Pflegeöl -2 10,00 € netto -20,00 € 7 % -1,40 € -21,40 €" in text
    # the cancelled original keeps its own PDF
    assert f"Rechnungsnummer: {original}" in text_of(fetch(manager, pk))


def test_a_long_invoice_breaks_pages_with_headings_and_page_numbers(app, customer, manager):
    lines = [(f"Position {index} für Ärztin Österreich", "1", "9.99", "19", False) for index in range(1, 61)]
    with app.app_context(), acting_as():
        pk = issued(customer, lines=lines)
    number = number_of(app, pk)
    reader = fetch(manager, pk)
    pages = len(reader.pages)
    assert pages >= 2 and all(is_a4(page) for page in reader.pages)
    for index, page in enumerate(reader.pages, start=1):
        text = page.extract_text()
        assert "Pos. Beschreibung Menge Einzelpreis" in text  # the headings on every page
        assert f"{number} · Seite {index} von {pages}" in text
    text = text_of(reader)
    assert all(f"Position {index} für Ärztin Österreich" in text for index in range(1, 61))
    # 60 × 9.99 net, the VAT rounded per line: 1.8981 → 1.90
    assert "Summe 599,40 € 114,00 € 713,40 €" in reader.pages[-1].extract_text()


def test_pdf_without_lines_or_business_data(app, customer):
    """The service alone (no request: German): an empty draft and no business name or address."""
    with app.app_context(), acting_as():
        invoice = db.session.get(Invoice, make_draft(customer, lines=()))
        data = invoice_pdf(invoice, "", "")
    assert data.startswith(b"%PDF-")
    text = text_of(PdfReader(io.BytesIO(data)))
    assert "Noch keine Positionen." in text and "Summe 0,00 € 0,00 € 0,00 €" in text


def test_pdf_follows_the_language(app, customer, manager):
    with app.app_context(), acting_as():
        pk = issued(customer)
    number = number_of(app, pk)
    assert manager.get("/lang/en").status_code == 302
    text = text_of(fetch(manager, pk))
    assert f"Invoice number: {number}" in text and "Invoice date: 24.11.2026" in text
    assert "Description" in text and "Beschreibung" not in text
    assert "1.255,90 €" in text  # amounts stay German, as on the screens
    assert manager.get("/lang/de").status_code == 302
    assert f"Rechnungsnummer: {number}" in text_of(fetch(manager, pk))


# --- the route: button, permission, row rules ----------------------------------------------------
def test_show_page_has_the_pdf_button(app, customer, manager):
    with app.app_context(), acting_as():
        pk = issued(customer)
    html = manager.get(f"/invoiceview/show/{pk}").get_data(as_text=True)
    assert 'id="action-pdf"' in html and f'href="/invoiceview/pdf/{pk}"' in html
    assert 'id="action-print"' in html


def test_owner_gets_the_pdf(app, customer, owner):
    with app.app_context(), acting_as():
        pk = issued(customer)
    assert number_of(app, pk) in text_of(fetch(owner, pk))


def test_missing_and_junk_ids(manager):
    assert manager.get("/invoiceview/pdf/999999999").status_code == 404
    assert manager.get("/invoiceview/pdf/abc").status_code == 400
    assert manager.get("/invoiceview/pdf/-1").status_code in (400, 404)


@pytest.mark.parametrize("role", ["Employee", "Viewer"])
def test_roles_without_invoice_rights_get_403(app, customer, client_for, role):
    with app.app_context(), acting_as():
        pk = issued(customer)
    response = client_for(role).get(f"/invoiceview/pdf/{pk}")
    assert response.status_code == 403 and not response.data.startswith(b"%PDF")


def test_anonymous_is_sent_to_the_login(app, customer, client_for):
    with app.app_context(), acting_as():
        pk = issued(customer)
    response = client_for(None).get(f"/invoiceview/pdf/{pk}")
    assert response.status_code == 302 and "/login" in response.location
