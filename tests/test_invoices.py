"""Invoices: gapless numbers per year (also under concurrent issuing), issued invoices
immutable on every path (screens, ORM, database triggers), Storno, payment, totals exact to
the cent (a hypothesis property test), the printable view."""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from math import floor
from uuid import uuid4

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from app.extensions import db
from app.jobs.base import acting_as
from app.models import Booking, BookingStatus, Customer, Invoice, InvoiceLine, PassCard, PassCardType, Setting
from app.models.invoices import InvoiceCounter
from app.services.invoices import (
    billable_bookings,
    cancel_invoice,
    format_number,
    issue_invoice,
    parse_vat_rates,
    set_paid,
    vat_rates,
)
from tests.conftest import ROLE_USERS, csrf_token, post_form
from tests.helpers_invoices import delete_invoices
from tests.helpers_perm import api_token, bearer

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


# --- helpers ------------------------------------------------------------------
def purge_customer(customer_id: int) -> None:
    """Remove a test customer with all its invoices (issued ones included) and their history."""
    db.session.rollback()
    delete_invoices(db.session, list(db.session.scalars(
        sa.select(Invoice.id).where(Invoice.customer_id == customer_id))))
    for model in (PassCard, Booking):
        for row in db.session.scalars(sa.select(model).where(model.customer_id == customer_id)):
            db.session.delete(row)
    db.session.flush()
    customer = db.session.get(Customer, customer_id)
    if customer is not None:
        db.session.delete(customer)
    db.session.commit()


@pytest.fixture()
def customer(app):
    """A customer of its own (with an address) for the invoices of one test."""
    with app.app_context(), acting_as():
        row = Customer(first_name="Rita", last_name=f"Rechnung-{uuid4().hex[:8]}", street="Hauptstr. 1",
                       postal_code="10115", city="Berlin")
        db.session.add(row)
        db.session.commit()
        pk = row.id
    yield pk
    with app.app_context(), acting_as():
        purge_customer(pk)


def make_draft(customer_id: int, lines=((1, "45.00", 19),), note: str | None = None) -> int:
    """lines: (quantity, unit price, VAT rate[, gross_pricing]) each; net-priced unless the flag says so."""
    invoice = Invoice(customer_id=customer_id, note=note)
    invoice.lines = [
        InvoiceLine(position=index + 1, description=f"Position {index + 1}", quantity=Decimal(str(quantity)),
                    unit_price=Decimal(price), vat_rate=Decimal(str(rate)), gross_pricing=bool(gross))
        for index, (quantity, price, rate, gross) in enumerate(tuple(line) + (False,) * (4 - len(line))
                                                               for line in lines)
    ]
    db.session.add(invoice)
    db.session.commit()
    return invoice.id


def issued(customer_id: int, **kwargs) -> int:
    invoice = db.session.get(Invoice, make_draft(customer_id, **kwargs))
    issue_invoice(db.session, invoice, now=NOW)
    db.session.commit()
    return invoice.id


def last_sequence(year: int) -> int:
    return db.session.scalar(sa.select(InvoiceCounter.last_sequence).where(InvoiceCounter.year == year)) or 0


def fresh(invoice_id: int) -> Invoice:
    db.session.expire_all()
    return db.session.get(Invoice, invoice_id)


# --- 1. numbers -------------------------------------------------------------------
def test_issuing_gives_the_next_number_of_the_year_and_keeps_the_addressee(app, customer):
    with app.app_context(), acting_as():
        before = last_sequence(2026)
        first = fresh(issued(customer))
        second = fresh(issued(customer))
        assert (first.year, first.sequence, first.number) == (2026, before + 1, f"2026-{before + 1:06d}")
        assert second.sequence == before + 2 and second.number == format_number(2026, before + 2)
        assert first.status == "issued" and first.issued_at == NOW
        assert first.recipient_name.startswith("Rita Rechnung-")
        assert first.recipient_address == "Hauptstr. 1\n10115 Berlin"
        # another year starts at 1
        other = db.session.get(Invoice, make_draft(customer))
        next_year = last_sequence(2027) + 1
        issue_invoice(db.session, other, now=datetime(2027, 1, 1, 9, tzinfo=timezone.utc))
        db.session.commit()
        assert fresh(other.id).number == f"2027-{next_year:06d}"


def test_new_year_is_counted_in_the_business_time_zone(app, customer):
    with app.app_context(), acting_as():
        invoice = db.session.get(Invoice, make_draft(customer))
        expected = last_sequence(2028) + 1
        # 31.12.2027 23:30 UTC is already 1.1.2028 in Berlin
        issue_invoice(db.session, invoice, now=datetime(2027, 12, 31, 23, 30, tzinfo=timezone.utc))
        db.session.commit()
        assert (fresh(invoice.id).year, fresh(invoice.id).sequence) == (2028, expected)


def test_a_draft_without_lines_or_an_issued_invoice_is_not_issued(app, customer):
    with app.app_context(), acting_as():
        before = last_sequence(2026)
        empty = db.session.get(Invoice, make_draft(customer, lines=()))
        with pytest.raises(ValueError, match="ohne Positionen"):
            issue_invoice(db.session, empty, now=NOW)
        db.session.rollback()
        assert fresh(empty.id).status == "draft" and fresh(empty.id).number is None
        done = fresh(issued(customer))
        with pytest.raises(ValueError, match="bereits ausgestellt"):
            issue_invoice(db.session, done, now=NOW)
        db.session.rollback()
        assert last_sequence(2026) == before + 1


def test_a_rolled_back_issue_leaves_no_gap(app, customer):
    with app.app_context(), acting_as():
        before = last_sequence(2026)
        first = db.session.get(Invoice, make_draft(customer))
        issue_invoice(db.session, first, now=NOW)
        assert first.sequence == before + 1
        db.session.rollback()  # e.g. a later step of the same transaction failed
        assert fresh(first.id).status == "draft" and last_sequence(2026) == before
        second = db.session.get(Invoice, make_draft(customer))
        issue_invoice(db.session, second, now=NOW)
        db.session.commit()
        assert fresh(second.id).sequence == before + 1


def test_concurrent_issuing_gives_gapless_unique_numbers(app, customer):
    """10 threads (each its own connection and transaction) issue 10 drafts at once, two more
    threads fail on empty drafts: the 10 get exactly the next 10 numbers."""
    with app.app_context(), acting_as():
        before = last_sequence(2026)
        good = [make_draft(customer) for _ in range(10)]
        bad = [make_draft(customer, lines=()) for _ in range(2)]
    barrier = threading.Barrier(len(good) + len(bad))
    errors: list[str] = []

    def work(invoice_id: int) -> None:
        with app.app_context(), acting_as():
            try:
                invoice = db.session.get(Invoice, invoice_id)
                barrier.wait(timeout=30)
                issue_invoice(db.session, invoice, now=NOW)
                db.session.commit()
            except ValueError as exc:
                db.session.rollback()
                errors.append(str(exc))
            except Exception as exc:  # pragma: no cover - shown in the assertion below
                db.session.rollback()
                errors.append(f"unexpected: {exc!r}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=work, args=(pk,)) for pk in good + bad]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with app.app_context():
        rows = db.session.execute(sa.select(Invoice.id, Invoice.sequence, Invoice.number, Invoice.status)
                                  .where(Invoice.id.in_(good + bad))).all()
        assert len(errors) == 2 and all("ohne Positionen" in error for error in errors), errors
        sequences = sorted(row.sequence for row in rows if row.id in good)
        assert sequences == list(range(before + 1, before + 11))
        assert len({row.number for row in rows if row.id in good}) == 10
        assert all(row.status == "draft" and row.sequence is None for row in rows if row.id in bad)
        assert last_sequence(2026) == before + 10


# --- 2. immutability ----------------------------------------------------------------
def test_orm_refuses_changes_of_an_issued_invoice_and_its_lines(app, customer):
    with app.app_context(), acting_as():
        pk = issued(customer, note="Original")
        changes = [
            lambda inv: setattr(inv, "note", "geändert"),
            lambda inv: setattr(inv, "number", "2026-999999"),
            lambda inv: setattr(inv, "status", "draft"),
            lambda inv: setattr(inv, "recipient_name", "Jemand anderes"),
            lambda inv: db.session.delete(inv),
            lambda inv: setattr(inv.lines[0], "unit_price", Decimal("1.00")),
            lambda inv: db.session.delete(inv.lines[0]),
            lambda inv: inv.lines.append(InvoiceLine(position=9, description="neu", unit_price=Decimal("1"))),
            lambda inv: db.session.add(InvoiceLine(invoice_id=inv.id, position=9, description="neu",
                                                   unit_price=Decimal("1"))),
        ]
        for change in changes:
            change(fresh(pk))
            with pytest.raises(ValueError, match="Storno"):
                db.session.commit()
            db.session.rollback()
        invoice = fresh(pk)
        assert invoice.note == "Original" and invoice.status == "issued"
        assert [(line.unit_price, line.description) for line in invoice.lines] == [(Decimal("45.00"), "Position 1")]
        # allowed: the payment
        set_paid(db.session, invoice, True, now=NOW)
        db.session.commit()
        assert fresh(pk).paid_at == NOW


def test_orm_guard_compares_with_the_stored_row_after_a_commit(app, customer):
    """An attribute set after a commit has no loaded old value: the guard reads the stored row."""
    with app.app_context(), acting_as():
        pk = issued(customer, note="Original")
        invoice = db.session.get(Invoice, pk)
        db.session.commit()  # expires every attribute
        invoice.note = "geändert"
        with pytest.raises(ValueError, match="Storno"):
            db.session.commit()
        db.session.rollback()
        invoice = db.session.get(Invoice, pk)
        db.session.commit()
        invoice.status = "issued"  # unchanged value: no change
        invoice.paid_at = NOW
        db.session.commit()
        assert fresh(pk).paid_at == NOW and fresh(pk).note == "Original"
        draft = db.session.get(Invoice, make_draft(customer))
        db.session.commit()
        draft.note = "Entwürfe ändern sich frei"
        db.session.commit()
        assert fresh(draft.id).note == "Entwürfe ändern sich frei"


def test_a_line_cannot_be_moved_out_of_an_issued_invoice(app, customer):
    with app.app_context(), acting_as():
        pk = issued(customer)
        draft = make_draft(customer)
        line = fresh(pk).lines[0]
        line.invoice_id = draft
        with pytest.raises(ValueError):
            db.session.commit()
        db.session.rollback()
        assert len(fresh(pk).lines) == 1


@pytest.mark.parametrize("statement", [
    "UPDATE invoice SET note = 'geändert' WHERE id = :pk",
    "UPDATE invoice SET number = '2026-999998' WHERE id = :pk",
    "UPDATE invoice SET issued_at = NULL, status = 'draft' WHERE id = :pk",
    "UPDATE invoice SET recipient_name = 'Jemand' WHERE id = :pk",
    "DELETE FROM invoice WHERE id = :pk",
    "UPDATE invoice_line SET unit_price = 1 WHERE invoice_id = :pk",
    "UPDATE invoice_line SET gross_pricing = TRUE WHERE invoice_id = :pk",
    "DELETE FROM invoice_line WHERE invoice_id = :pk",
    "INSERT INTO invoice_line (invoice_id, position, description, quantity, unit_price, vat_rate) "
    "VALUES (:pk, 2, 'neu', 1, 1, 19)",
])
def test_the_database_refuses_changes_of_an_issued_invoice(app, customer, statement):
    with app.app_context(), acting_as():
        pk = issued(customer, note="Original")
        with pytest.raises(sa.exc.DBAPIError, match="unveraenderlich"):
            db.session.execute(sa.text(statement), {"pk": pk})
        db.session.rollback()
        invoice = fresh(pk)
        assert invoice.note == "Original" and invoice.status == "issued" and len(invoice.lines) == 1


def test_the_database_allows_payment_customer_move_and_storno_status(app, customer):
    with app.app_context(), acting_as():
        pk = issued(customer)
        other = Customer(first_name="Otto", last_name=f"Andere-{uuid4().hex[:8]}")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
        try:
            params = {"pk": pk, "other": other_id, "paid": NOW.replace(tzinfo=None)}
            db.session.execute(sa.text("UPDATE invoice SET paid_at = :paid WHERE id = :pk"), params)
            db.session.execute(sa.text("UPDATE invoice SET customer_id = :other WHERE id = :pk"), params)
            db.session.execute(sa.text("UPDATE invoice SET customer_id = :other WHERE id = :pk"), params)
            db.session.execute(sa.text("UPDATE invoice SET status = 'cancelled' WHERE id = :pk"), params)
            with pytest.raises(sa.exc.DBAPIError, match="unveraenderlich"):  # cancelled stays cancelled
                db.session.execute(sa.text("UPDATE invoice SET status = 'issued' WHERE id = :pk"), params)
            db.session.rollback()
            # a draft's lines and the draft itself change freely
            draft = make_draft(customer)
            db.session.execute(sa.text("UPDATE invoice_line SET unit_price = 2 WHERE invoice_id = :pk"), {"pk": draft})
            db.session.execute(sa.text("UPDATE invoice SET note = 'x' WHERE id = :pk"), {"pk": draft})
            db.session.commit()
            assert fresh(draft).note == "x" and fresh(draft).lines[0].unit_price == Decimal("2.00")
        finally:
            db.session.rollback()
            db.session.delete(db.session.get(Customer, other_id))
            db.session.commit()


def test_screens_refuse_to_edit_or_delete_an_issued_invoice(app, customer, manager):
    with app.app_context(), acting_as():
        pk = issued(customer, note="Original")
        line_id = fresh(pk).lines[0].id
    html = manager.get(f"/invoiceview/show/{pk}").get_data(as_text=True)
    assert 'id="action-edit"' not in html and 'id="action-issue"' not in html
    assert 'id="action-cancel"' in html and "unveränderlich" in html
    post_form(manager, f"/invoiceview/edit/{pk}", {"customer": customer, "note": "geändert"},
              form_url=f"/invoiceview/show/{pk}")
    post_form(manager, f"/invoiceview/delete/{pk}", {}, form_url=f"/invoiceview/show/{pk}")
    post_form(manager, f"/invoicelineview/edit/{line_id}",
              {"invoice": pk, "position": 1, "description": "geändert", "quantity": "1", "unit_price": "1",
               "vat_rate": "19"}, form_url=f"/invoiceview/show/{pk}")
    post_form(manager, f"/invoicelineview/delete/{line_id}", {}, form_url=f"/invoiceview/show/{pk}")
    post_form(manager, "/invoicelineview/add",
              {"invoice": pk, "position": 2, "description": "neu", "quantity": "1", "unit_price": "1",
               "vat_rate": "19"}, form_url="/invoicelineview/add")
    with app.app_context():
        invoice = fresh(pk)
        assert invoice is not None and invoice.note == "Original" and invoice.status == "issued"
        assert [(line.id, line.description) for line in invoice.lines] == [(line_id, "Position 1")]


def test_a_draft_line_takes_only_a_configured_vat_rate(app, customer, manager):
    with app.app_context(), acting_as():
        pk = make_draft(customer, lines=())
    for rate, stored in (("16", False), ("7", True)):
        post_form(manager, "/invoicelineview/add",
                  {"invoice": pk, "position": 1, "description": f"Satz {rate}", "quantity": "1",
                   "unit_price": "10", "vat_rate": rate}, form_url="/invoicelineview/add")
        with app.app_context():
            assert any(line.description == f"Satz {rate}" for line in fresh(pk).lines) is stored


GROSS_FIELD_RE = re.compile(r'<input[^>]*name="gross_pricing"[^>]*>')


def gross_checkbox(client, url: str) -> str:
    """The "Preis inkl. MwSt." checkbox of the form on `url`."""
    field = GROSS_FIELD_RE.search(client.get(url).get_data(as_text=True))
    assert field, f"no gross_pricing checkbox on {url}"
    return field.group(0)


def test_the_line_form_stores_the_gross_pricing_checkbox(app, customer, manager):
    with app.app_context(), acting_as():
        pk = make_draft(customer, lines=())
    add = "/invoicelineview/add"
    assert 'type="checkbox"' in gross_checkbox(manager, add) and "checked" in gross_checkbox(manager, add)
    base = {"invoice": pk, "quantity": "1", "unit_price": "45.00", "vat_rate": "19"}
    response = post_form(manager, add, base | {"position": 1, "description": "Brutto", "gross_pricing": "y"})
    assert response.status_code == 302
    response = post_form(manager, add, base | {"position": 2, "description": "Netto"})  # unticked: not sent
    assert response.status_code == 302
    with app.app_context():
        lines = {line.description: line for line in fresh(pk).lines}
        assert lines["Brutto"].gross_pricing is True and lines["Netto"].gross_pricing is False
        assert lines["Brutto"].amounts() == (Decimal("37.82"), Decimal("7.18"), Decimal("45.00"))
        assert lines["Netto"].amounts() == (Decimal("45.00"), Decimal("8.55"), Decimal("53.55"))
        gross_id, net_id = lines["Brutto"].id, lines["Netto"].id
    # the edit form shows what is stored, and unticking / ticking is stored
    assert "checked" in gross_checkbox(manager, f"/invoicelineview/edit/{gross_id}")
    assert "checked" not in gross_checkbox(manager, f"/invoicelineview/edit/{net_id}")
    edit = f"/invoicelineview/edit/{gross_id}"
    assert post_form(manager, edit, base | {"position": 1, "description": "Brutto"}).status_code == 302
    with app.app_context():
        assert db.session.get(InvoiceLine, gross_id).gross_pricing is False
    data = base | {"position": 1, "description": "Brutto", "gross_pricing": "y"}
    assert post_form(manager, edit, data).status_code == 302
    with app.app_context():
        invoice = fresh(pk)
        assert [line.gross_pricing for line in invoice.lines] == [True, False]
        assert (invoice.total_net, invoice.total_vat, invoice.total_gross) == (
            Decimal("82.82"), Decimal("15.73"), Decimal("98.55"))
    # the detail page says per line whether the unit price is gross or net, with net / VAT / gross
    html = manager.get(f"/invoiceview/show/{pk}").get_data(as_text=True)
    prices = re.findall(r'class="text-muted tb-pricing">([^<]+)<', html)
    assert prices == ["brutto", "netto"]
    for amount in ("37,82 €", "7,18 €", "45,00 €", "8,55 €", "53,55 €"):
        assert amount in html
    assert re.search(r'id="invoice-total-net">82,82 €<', html) and re.search(r'id="invoice-total-gross">98,55 €<', html)
    assert re.search(r'id="invoice-total-vat">15,73 €<', html)


def test_a_forged_gross_pricing_post_to_an_issued_invoice_is_refused(app, customer, manager):
    """Ticking "Preis inkl. MwSt." would change an issued invoice's amounts: refused like any change."""
    with app.app_context(), acting_as():
        pk = issued(customer)  # one net line: 45.00 + 8.55 VAT
        line_id = fresh(pk).lines[0].id
    data = {"invoice": pk, "position": 1, "description": "Position 1", "quantity": "1", "unit_price": "45.00",
            "vat_rate": "19", "gross_pricing": "y"}
    refused = "Eine ausgestellte Rechnung kann nicht mehr geändert werden."
    for url, form in ((f"/invoicelineview/edit/{line_id}", data), ("/invoicelineview/add", data | {"position": 2})):
        response = post_form(manager, url, form, form_url=url)
        assert response.status_code in (200, 302)
        html = (manager.get(response.location) if response.status_code == 302 else response).get_data(as_text=True)
        assert refused in html
    with app.app_context():
        invoice = fresh(pk)
        assert invoice.status == "issued"
        assert [(line.id, line.gross_pricing) for line in invoice.lines] == [(line_id, False)]
        assert invoice.total_gross == Decimal("53.55")
    # and in the ORM
    with app.app_context(), acting_as():
        fresh(pk).lines[0].gross_pricing = True
        with pytest.raises(ValueError, match="Storno"):
            db.session.commit()
        db.session.rollback()
        assert fresh(pk).lines[0].gross_pricing is False


def test_vat_rates_setting(app):
    assert parse_vat_rates("19,7,0") == (Decimal("19"), Decimal("7"), Decimal("0"))
    assert parse_vat_rates(" 19 ; 10.7 ; 19 ") == (Decimal("19"), Decimal("10.7"))
    for broken in ("", None, "neunzehn", "19,100", "-1", "NaN"):
        assert parse_vat_rates(broken) == (Decimal("19"), Decimal("7"), Decimal("0"))
    with app.app_context():
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "vat_rates"))
        assert setting is not None and setting.value == "19,7,0"
        assert vat_rates(db.session) == (Decimal("19"), Decimal("7"), Decimal("0"))


# --- 3./4. Storno, issuing and payment over the screens --------------------------------
def test_storno_negates_the_lines_and_cancels_the_original(app, customer):
    with app.app_context(), acting_as():
        pk = issued(customer, lines=((2, "45.00", 19), (1, "12.50", 7), (1, "5.00", 0)))
        before = last_sequence(2026)
        storno = cancel_invoice(db.session, fresh(pk), now=NOW)
        db.session.commit()
        original, storno = fresh(pk), fresh(storno.id)
        assert original.status == "cancelled" and storno.status == "issued"
        assert storno.cancels_id == pk and storno.sequence == before + 1
        assert storno.total_gross == -original.total_gross == Decimal("-125.48")
        assert storno.total_vat == -original.total_vat
        assert [line.quantity for line in storno.lines] == [Decimal("-2"), Decimal("-1"), Decimal("-1")]
        assert storno.recipient_name == original.recipient_name
        with pytest.raises(ValueError, match="Nur ausgestellte"):
            cancel_invoice(db.session, original, now=NOW)
        with pytest.raises(ValueError, match="Stornorechnung kann nicht"):
            cancel_invoice(db.session, storno, now=NOW)
        db.session.rollback()
        draft = fresh(make_draft(customer))
        with pytest.raises(ValueError, match="Nur ausgestellte"):
            cancel_invoice(db.session, draft, now=NOW)
        db.session.rollback()
        assert last_sequence(2026) == before + 1


def test_storno_of_a_gross_invoice_negates_exactly(app, customer):
    """Gross-priced lines (and one net line) at two rates: the Storno copies the pricing, so every
    line amount is negated and both invoices together are 0.00 per rate."""
    with app.app_context(), acting_as():
        pk = issued(customer, lines=((2, "45.00", 19, True), (1, "12.50", 7, True), (3, "0.99", 19, True),
                                     (1, "10.00", 19, False)))
        storno = cancel_invoice(db.session, fresh(pk), now=NOW)
        db.session.commit()
        original, storno = fresh(pk), fresh(storno.id)
        assert [line.gross_pricing for line in storno.lines] == [True, True, True, False]
        assert [line.amounts() for line in original.lines] == [
            (Decimal("75.63"), Decimal("14.37"), Decimal("90.00")),  # 90 × 19/119 = 14.369…
            (Decimal("11.68"), Decimal("0.82"), Decimal("12.50")),  # 12.50 × 7/107 = 0.8177…
            (Decimal("2.50"), Decimal("0.47"), Decimal("2.97")),  # 2.97 × 19/119 = 0.4742…
            (Decimal("10.00"), Decimal("1.90"), Decimal("11.90")),  # net: VAT on top
        ]
        for line, negated in zip(original.lines, storno.lines, strict=True):
            assert negated.amounts() == tuple(-amount for amount in line.amounts())
        assert original.vat_breakdown() == [
            (Decimal("7"), Decimal("11.68"), Decimal("0.82"), Decimal("12.50")),
            (Decimal("19"), Decimal("88.13"), Decimal("16.74"), Decimal("104.87")),
        ]
        both = {}
        for invoice in (original, storno):
            for rate, net, vat, gross in invoice.vat_breakdown():
                sums = both.setdefault(rate, [Decimal("0.00")] * 3)
                sums[0], sums[1], sums[2] = sums[0] + net, sums[1] + vat, sums[2] + gross
        assert both == {Decimal("7"): [Decimal("0.00")] * 3, Decimal("19"): [Decimal("0.00")] * 3}
        assert original.total_gross + storno.total_gross == Decimal("0.00")
        assert (original.total_net, original.total_vat, original.total_gross) == (
            Decimal("99.81"), Decimal("17.56"), Decimal("117.37"))
        assert (storno.total_net, storno.total_vat, storno.total_gross) == (
            Decimal("-99.81"), Decimal("-17.56"), Decimal("-117.37"))


def test_issue_route_confirms_then_issues(app, customer, manager):
    with app.app_context(), acting_as():
        pk = make_draft(customer)
        empty = make_draft(customer, lines=())
    url = f"/invoiceview/issue/{pk}"
    page = manager.get(url)
    assert page.status_code == 200 and 'id="confirm-issue"' in page.get_data(as_text=True)
    response = manager.post(url, data={"csrf_token": csrf_token(manager, url)})
    assert response.status_code == 200 and "bestätigen" in response.get_data(as_text=True)
    with app.app_context():
        assert fresh(pk).status == "draft"
    response = manager.post(url, data={"confirm": "1"})  # no CSRF token: refused
    assert response.status_code in (400, 302)
    with app.app_context():
        assert fresh(pk).status == "draft"
    response = post_form(manager, url, {"confirm": "1"})
    assert response.status_code == 302 and response.location.endswith(f"/invoiceview/show/{pk}")
    with app.app_context():
        invoice = fresh(pk)
        assert invoice.status == "issued" and re.fullmatch(r"\d{4}-\d{6}", invoice.number)
    response = post_form(manager, f"/invoiceview/issue/{empty}", {"confirm": "1"})
    assert response.status_code == 200 and "ohne Positionen" in response.get_data(as_text=True)
    with app.app_context():
        assert fresh(empty).status == "draft"
    assert manager.get("/invoiceview/issue/999999999").status_code == 404
    assert manager.get("/invoiceview/issue/abc").status_code == 400


def test_cancel_and_payment_routes(app, customer, manager):
    with app.app_context(), acting_as():
        pk = issued(customer)
        draft = make_draft(customer)
    response = post_form(manager, f"/invoiceview/payment/{pk}", {"paid": "1"})
    assert response.status_code == 302
    with app.app_context():
        assert fresh(pk).paid_at is not None
    assert 'id="action-unpaid"' in manager.get(f"/invoiceview/show/{pk}").get_data(as_text=True)
    post_form(manager, f"/invoiceview/payment/{pk}", {"paid": "0"})
    with app.app_context():
        assert fresh(pk).paid_at is None
    response = post_form(manager, f"/invoiceview/payment/{pk}", {"paid": "vielleicht"})
    assert response.status_code == 200 and "bezahlt oder unbezahlt" in response.get_data(as_text=True)
    response = post_form(manager, f"/invoiceview/payment/{draft}", {"paid": "1"})
    assert response.status_code == 200 and "Entwurf kann nicht" in response.get_data(as_text=True)
    with app.app_context():
        assert fresh(draft).paid_at is None

    response = post_form(manager, f"/invoiceview/cancel/{pk}", {})
    assert response.status_code == 200
    with app.app_context():
        assert fresh(pk).status == "issued"
    response = post_form(manager, f"/invoiceview/cancel/{pk}", {"confirm": "1"})
    assert response.status_code == 302
    with app.app_context():
        storno = db.session.scalar(sa.select(Invoice).where(Invoice.cancels_id == pk))
        assert fresh(pk).status == "cancelled" and storno.status == "issued"
        storno_id = storno.id
    response = post_form(manager, f"/invoiceview/cancel/{pk}", {"confirm": "1"})
    assert response.status_code == 200 and "Nur ausgestellte" in response.get_data(as_text=True)
    html = manager.get(f"/invoiceview/show/{storno_id}").get_data(as_text=True)
    assert 'id="action-cancel"' not in html and f"/invoiceview/show/{pk}" in html


@pytest.mark.parametrize("role", ["Employee", "Viewer"])
def test_only_manager_and_owner_issue_cancel_and_mark_paid(app, customer, client_for, role):
    with app.app_context(), acting_as():
        pk = make_draft(customer)
        done = issued(customer)
    client = client_for(role)
    for url, data in ((f"/invoiceview/issue/{pk}", {"confirm": "1"}), (f"/invoiceview/cancel/{done}", {"confirm": "1"}),
                      (f"/invoiceview/payment/{done}", {"paid": "1"})):
        assert client.get(url).status_code == 403
        assert client.post(url, data=data).status_code in (400, 403)
    with app.app_context():
        assert fresh(pk).status == "draft" and fresh(done).status == "issued" and fresh(done).paid_at is None


def test_print_view(app, customer, manager, owner):
    with app.app_context(), acting_as():
        pk = issued(customer, lines=((1, "45.00", 19), (2, "10.00", 7)))
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "business_address"))
        old_address, setting.value = setting.value, "Musterweg 5\n10115 Berlin"
        db.session.commit()
    try:
        response = manager.get(f"/invoiceview/print/{pk}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "size: A4" in html and "@media print" in html
        with app.app_context():
            number = fresh(pk).number
        assert number in html and "Musterweg 5 · 10115 Berlin" in html and "Hauptstr. 1" in html
        assert "74,95" in html and "23.11.2026" in html  # 45 + 8.55 + 20 + 1.40 gross
    finally:
        with app.app_context(), acting_as():
            setting = db.session.scalar(sa.select(Setting).where(Setting.key == "business_address"))
            setting.value = old_address
            db.session.commit()


def test_invoice_list_exports_with_totals(app, customer, manager, client_for):
    with app.app_context(), acting_as():
        pk = issued(customer, lines=((1, "45.00", 19), (2, "10.00", 7)))
        number = fresh(pk).number
    response = manager.get(f"/invoiceview/export/csv?_flt_0_number={number}")
    assert response.status_code == 200
    text = response.get_data().decode("utf-8-sig")
    header, *rows = [line for line in text.splitlines() if line]
    assert header.split(";")[:3] == ["Nummer", "Kund:in", "Status"] and "Brutto" in header
    assert len(rows) == 1 and rows[0].startswith(f"{number};") and "Ausgestellt" in rows[0]
    assert ";65,00;" in rows[0] and ";9,95;" in rows[0] and ";74,95;" in rows[0]
    response = manager.get(f"/invoiceview/export/xlsx?_flt_0_number={number}")
    assert response.status_code == 200 and response.data[:2] == b"PK"
    assert client_for("Employee").get("/invoiceview/export/csv").status_code == 403


# --- lines from completed bookings and sold pass cards -----------------------------------
def test_lines_from_completed_bookings_and_sold_cards(app, customer, world, manager):
    with app.app_context(), acting_as():
        kinds = dict(db.session.execute(sa.select(BookingStatus.kind, BookingStatus.id)).all())
        start = datetime(2036, 1, 7, 8, tzinfo=timezone.utc) + timedelta(days=customer % 500)
        bookings = [
            Booking(customer_id=customer, service_id=world.service, employee_id=world.employee1,
                    start_at=start + timedelta(hours=index * 2), status_id=kinds[kind], price=price)
            for index, (kind, price) in enumerate((("completed", None), ("completed", Decimal("30.00")),
                                                   ("confirmation", None)))]
        card_type = PassCardType(name=f"Rechnungskarte {uuid4().hex[:8]}", units=10, price=Decimal("100.00"))
        card = PassCard(type=card_type, customer_id=customer, units_total=10, price=Decimal("100.00"))
        db.session.add_all([*bookings, card])
        db.session.commit()
        done_a, done_b, open_c = (b.id for b in bookings)
        card_id, type_id = card.id, card_type.id
        draft = make_draft(customer, lines=())
    try:
        url = f"/invoiceview/lines/{draft}"
        html = manager.get(url).get_data(as_text=True)
        assert f'id="booking-{done_a}"' in html and f'id="booking-{done_b}"' in html
        assert f'id="booking-{open_c}"' not in html and f'id="card-{card_id}"' in html
        response = manager.post(url, data={"csrf_token": csrf_token(manager, url)})
        assert response.status_code == 200 and "mindestens einen" in response.get_data(as_text=True)
        response = post_form(manager, url, {"booking": str(open_c)})
        assert response.status_code == 200 and "nicht (mehr) abrechenbar" in response.get_data(as_text=True)
        assert post_form(manager, url, {"booking": "abc"}).status_code == 400
        with app.app_context():
            assert fresh(draft).lines == []
        response = post_form(manager, url, {"booking": str(done_a), "card": str(card_id)})
        assert response.status_code == 302
        with app.app_context(), acting_as():
            invoice = fresh(draft)
            assert [(line.booking_id, line.pass_card_id, line.unit_price) for line in invoice.lines] == [
                (done_a, None, Decimal("45.00")), (None, card_id, Decimal("100.00"))]
            # the booking's and the card's prices are consumer prices: gross-priced lines, VAT inside
            assert [line.gross_pricing for line in invoice.lines] == [True, True]
            assert [line.amounts() for line in invoice.lines] == [
                (Decimal("37.82"), Decimal("7.18"), Decimal("45.00")),  # 45 × 19/119 = 7.1848…
                (Decimal("84.03"), Decimal("15.97"), Decimal("100.00"))]  # 100 × 19/119 = 15.966…
            assert (invoice.total_net, invoice.total_vat, invoice.total_gross) == (
                Decimal("121.85"), Decimal("23.15"), Decimal("145.00"))
            assert [b.id for b in billable_bookings(db.session, customer)] == [done_b]
            # issued and cancelled by a Storno: the booking is billable again
            issue_invoice(db.session, invoice, now=NOW)
            storno = cancel_invoice(db.session, invoice, now=NOW)
            db.session.commit()
            assert [b.id for b in billable_bookings(db.session, customer)] == [done_a, done_b]
            assert [line.gross_pricing for line in fresh(storno.id).lines] == [True, True]
            assert fresh(storno.id).total_gross == Decimal("-145.00")
    finally:
        with app.app_context(), acting_as():
            purge_customer(customer)
            db.session.delete(db.session.get(PassCardType, type_id))
            db.session.commit()


# --- 5. totals ------------------------------------------------------------------------
def _half_up(value: Fraction) -> Fraction:
    """Commercial rounding to the cent, computed without Decimal."""
    cents = value * 100
    sign = -1 if cents < 0 else 1
    return Fraction(sign * floor(abs(cents) + Fraction(1, 2)), 100)


money = st.decimals(min_value=Decimal("-9999.99"), max_value=Decimal("9999.99"), places=2)
quantity = st.decimals(min_value=Decimal("-99.99"), max_value=Decimal("99.99"), places=2).filter(lambda q: q != 0)
rate = st.sampled_from([Decimal("19"), Decimal("7"), Decimal("0"), Decimal("5.5"), Decimal("10.7")])


def _reference(q: Decimal, p: Decimal, r: Decimal, gross_pricing: bool) -> tuple[Fraction, Fraction, Fraction]:
    """(net, VAT, gross) of a line by the book, in exact fractions: net pricing adds the VAT on
    top of the net amount; gross pricing takes it out of the consumer price (rate / (100 + rate))."""
    amount = _half_up(Fraction(q) * Fraction(p))
    if gross_pricing:
        vat = _half_up(amount * Fraction(r) / (100 + Fraction(r)))
        return amount - vat, vat, amount
    vat = _half_up(amount * Fraction(r) / 100)
    return amount, vat, amount + vat


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(quantity, money, rate, st.booleans()), min_size=1, max_size=12))
def test_totals_are_exact_to_the_cent(rows):
    """Random mixes of net- and gross-priced lines against the fraction-based reference."""
    lines = [InvoiceLine(quantity=q, unit_price=p, vat_rate=r, gross_pricing=g) for q, p, r, g in rows]
    invoice = Invoice(lines=lines)
    expected: dict[Fraction, list[Fraction]] = {}
    for line, (q, p, r, g) in zip(lines, rows, strict=True):
        net, vat, gross = _reference(q, p, r, g)
        assert (Fraction(line.net), Fraction(line.vat), Fraction(line.gross)) == (net, vat, gross)
        assert line.net + line.vat == line.gross
        for amount in (line.net, line.vat, line.gross):
            assert amount == amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        if g:  # the consumer price is what the line costs
            assert Fraction(line.gross) == _half_up(Fraction(q) * Fraction(p))
        sums = expected.setdefault(Fraction(r), [Fraction(0)] * 3)
        sums[0], sums[1], sums[2] = sums[0] + net, sums[1] + vat, sums[2] + gross
    assert invoice.total_gross == sum(line.gross for line in lines)
    assert invoice.total_net + invoice.total_vat == invoice.total_gross
    assert Fraction(invoice.total_net) == sum(net for net, _v, _g in expected.values())
    assert Fraction(invoice.total_vat) == sum(vat for _n, vat, _g in expected.values())
    assert Fraction(invoice.total_gross) == sum(gross for _n, _v, gross in expected.values())
    breakdown = invoice.vat_breakdown()
    assert {Fraction(r): [Fraction(n), Fraction(v), Fraction(g)] for r, n, v, g in breakdown} == expected
    assert [r for r, *_sums in breakdown] == sorted(r for r, *_sums in breakdown)
    assert sum(net for _r, net, _v, _g in breakdown) == invoice.total_net
    assert sum(gross for _r, _n, _v, gross in breakdown) == invoice.total_gross
    invoice.lines = []  # transient objects only: nothing to clean up


def test_half_cent_rounds_up():
    line = InvoiceLine(quantity=Decimal("1"), unit_price=Decimal("0.50"), vat_rate=Decimal("7"))
    assert line.vat == Decimal("0.04")  # 0.035 → 0.04 (banker's rounding would give 0.04 too)
    line = InvoiceLine(quantity=Decimal("1"), unit_price=Decimal("0.50"), vat_rate=Decimal("5"))
    assert line.vat == Decimal("0.03")  # 0.025 → 0.03, banker's rounding would give 0.02
    line = InvoiceLine(quantity=Decimal("-1"), unit_price=Decimal("0.50"), vat_rate=Decimal("5"))
    assert line.vat == Decimal("-0.03") and line.gross == Decimal("-0.53")


def test_gross_pricing_takes_the_vat_out_of_the_price():
    line = InvoiceLine(quantity=Decimal("1"), unit_price=Decimal("45.00"), vat_rate=Decimal("19"), gross_pricing=True)
    assert (line.net, line.vat, line.gross) == (Decimal("37.82"), Decimal("7.18"), Decimal("45.00"))
    line = InvoiceLine(quantity=Decimal("1"), unit_price=Decimal("45.00"), vat_rate=Decimal("19"), gross_pricing=False)
    assert (line.net, line.vat, line.gross) == (Decimal("45.00"), Decimal("8.55"), Decimal("53.55"))
    line = InvoiceLine(quantity=Decimal("1"), unit_price=Decimal("45.00"), vat_rate=Decimal("19"))
    assert line.gross == Decimal("53.55")  # not set (a transient line): net, as before
    line = InvoiceLine(quantity=Decimal("2.5"), unit_price=Decimal("19.99"), vat_rate=Decimal("7"), gross_pricing=True)
    assert (line.net, line.vat, line.gross) == (Decimal("46.71"), Decimal("3.27"), Decimal("49.98"))
    line = InvoiceLine(quantity=Decimal("1"), unit_price=Decimal("9.99"), vat_rate=Decimal("0"), gross_pricing=True)
    assert (line.net, line.vat, line.gross) == (Decimal("9.99"), Decimal("0.00"), Decimal("9.99"))
    # a half cent of VAT rounds up (away from zero): 0.12 × 60/160 = 0.045 → 0.05, banker's would give 0.04
    line = InvoiceLine(quantity=Decimal("1"), unit_price=Decimal("0.12"), vat_rate=Decimal("60"), gross_pricing=True)
    assert (line.net, line.vat, line.gross) == (Decimal("0.07"), Decimal("0.05"), Decimal("0.12"))
    line.quantity = Decimal("-1")
    assert (line.net, line.vat, line.gross) == (Decimal("-0.07"), Decimal("-0.05"), Decimal("-0.12"))


def test_invoice_export_reads_the_lines_once_not_per_invoice(app, customer, manager, statements):
    """The totals need every invoice's lines: loaded with the page, not one SELECT per invoice."""
    with app.app_context(), acting_as():
        note = f"Export-Zählung {customer}"
        for _ in range(2):
            make_draft(customer, note=note)
    url = f"/invoiceview/export/csv?_flt_0_note={note.replace(' ', '+')}"
    with statements() as few:
        assert manager.get(url).get_data().decode("utf-8-sig").count("\n") == 3
    with app.app_context(), acting_as():
        for _ in range(4):
            make_draft(customer, note=note)
    with statements() as more:
        assert manager.get(url).get_data().decode("utf-8-sig").count("\n") == 7
    assert more.n == few.n


# --- the REST API (/api/v1/invoice/, /api/v1/invoice_line/): the screens' rules -------------------
REFUSED = "Eine ausgestellte Rechnung kann nicht mehr geändert werden."


def api_headers(app, role: str) -> dict[str, str]:
    return bearer(api_token(app, ROLE_USERS[role]))


def stored(invoice_id: int) -> tuple:
    """Everything of an invoice the API could change: number, status, note, payment, customer,
    every line, the totals."""
    invoice = fresh(invoice_id)
    lines = [(line.id, line.position, line.description, line.quantity, line.unit_price, line.vat_rate,
              line.gross_pricing) for line in invoice.lines]
    return (invoice.number, invoice.status, invoice.note, invoice.paid_at, invoice.customer_id, lines,
            (invoice.total_net, invoice.total_vat, invoice.total_gross))


def test_the_api_changes_a_draft_and_adds_lines(app, customer):
    headers, client = api_headers(app, "Manager"), app.test_client()
    response = client.post("/api/v1/invoice/", json={"customer": customer, "note": "Per API"}, headers=headers)
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    response = client.put(f"/api/v1/invoice/{pk}", json={"note": "Per API geändert"}, headers=headers)
    assert response.status_code == 200, response.json
    line = {"invoice": pk, "position": 1, "description": "API-Position", "quantity": "2", "unit_price": "10.00",
            "vat_rate": 19, "gross_pricing": False}
    response = client.post("/api/v1/invoice_line/", json=line, headers=headers)
    assert response.status_code == 201, response.json
    line_id = response.json["id"]
    # without gross_pricing: gross-priced, like a new line on the screen
    response = client.post("/api/v1/invoice_line/", headers=headers, json={
        "invoice": pk, "position": 2, "description": "Brutto", "unit_price": "45.00", "vat_rate": 19})
    assert response.status_code == 201, response.json
    response = client.put(f"/api/v1/invoice_line/{line_id}", json={"unit_price": "12.50"}, headers=headers)
    assert response.status_code == 200, response.json
    with app.app_context():
        invoice = fresh(pk)
        assert (invoice.status, invoice.number, invoice.note) == ("draft", None, "Per API geändert")
        assert [(line.description, line.quantity, line.unit_price, line.gross_pricing) for line in invoice.lines] == [
            ("API-Position", Decimal("2.00"), Decimal("12.50"), False),
            ("Brutto", Decimal("1.00"), Decimal("45.00"), True),
        ]
        totals = (invoice.total_net, invoice.total_vat, invoice.total_gross)
        assert totals == (Decimal("62.82"), Decimal("11.93"), Decimal("74.75"))  # 25 + 4.75 | 37.82 + 7.18
    shown = client.get(f"/api/v1/invoice/{pk}", headers=headers).json["result"]
    assert (shown["status"], shown["note"], shown["customer_id"]) == ("draft", "Per API geändert", customer)
    assert (shown["total_net"], shown["total_vat"], shown["total_gross"]) == ("62.82", "11.93", "74.75")
    assert client.get(f"/api/v1/invoice_line/{line_id}", headers=headers).json["result"]["gross"] == "29.75"
    # the line rules of the screen hold on a draft too
    for change, message in (({"vat_rate": 16}, "Erlaubte Mehrwertsteuersätze: 19, 7, 0 %."),
                            ({"quantity": 0}, "Die Menge darf nicht 0 sein.")):
        response = client.put(f"/api/v1/invoice_line/{line_id}", json=change, headers=headers)
        assert (response.status_code, response.json["message"]) == (400, message)
    # status, number and payment are not writable through the API (issuing: the issue route)
    with app.app_context():
        before = stored(pk)
    for change in ({"status": "issued"}, {"number": "2026-999997"}, {"paid_at": "2026-11-23T10:00:00+00:00"},
                   {"issued_at": "2026-11-23T10:00:00+00:00"}):
        assert client.put(f"/api/v1/invoice/{pk}", json=change, headers=headers).status_code == 422, change
    response = client.post("/api/v1/invoice/", json={"customer": customer, "status": "issued", "number": "2026-999997"},
                           headers=headers)
    assert response.status_code == 422
    with app.app_context():
        assert stored(pk) == before
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice).where(
            Invoice.customer_id == customer)) == 1
    # a draft's line and the draft itself can be deleted
    assert client.delete(f"/api/v1/invoice_line/{line_id}", headers=headers).status_code == 200
    with app.app_context():
        assert [line.description for line in fresh(pk).lines] == ["Brutto"]
    assert client.delete(f"/api/v1/invoice/{pk}", headers=headers).status_code == 200
    with app.app_context():
        assert fresh(pk) is None


def test_the_api_refuses_every_change_of_an_issued_or_cancelled_invoice(app, customer, world):
    headers, client = api_headers(app, "Manager"), app.test_client()
    with app.app_context(), acting_as():
        pk = issued(customer, lines=((1, "45.00", 19), (2, "10.00", 7)), note="Original")
        line_id = fresh(pk).lines[0].id
        draft = make_draft(customer, lines=())
        before = stored(pk)
    number, status, note, _paid, _customer, lines, totals = before
    assert (status, note, len(lines)) == ("issued", "Original", 2)
    assert totals == (Decimal("65.00"), Decimal("9.95"), Decimal("74.95"))
    new_line = {"invoice": pk, "position": 3, "description": "neu", "quantity": "1", "unit_price": "1.00",
                "vat_rate": 19}
    storno_message = "Eine ausgestellte Rechnung kann nicht mehr geändert werden: Korrekturen nur per Storno."
    refusals = [
        ("PUT", f"/api/v1/invoice/{pk}", {"note": "geändert"}, REFUSED),
        ("PUT", f"/api/v1/invoice/{pk}", {"customer": world.customer1}, REFUSED),  # only a merge moves it
        ("DELETE", f"/api/v1/invoice/{pk}", None, "Nur Entwürfe können gelöscht werden."),
        ("POST", "/api/v1/invoice_line/", new_line, REFUSED),
        ("PUT", f"/api/v1/invoice_line/{line_id}", {"description": "geändert"}, REFUSED),
        ("PUT", f"/api/v1/invoice_line/{line_id}", {"gross_pricing": True}, REFUSED),
        # moved out to a draft: the check sees the draft, the model guard the issued invoice it leaves
        ("PUT", f"/api/v1/invoice_line/{line_id}", {"invoice": draft}, storno_message),
        ("DELETE", f"/api/v1/invoice_line/{line_id}", None, REFUSED),
    ]
    for method, url, json, message in refusals:
        response = client.open(url, method=method, json=json, headers=headers)
        assert (response.status_code, response.json["message"]) == (400, message), (method, url, json)
        with app.app_context():
            assert stored(pk) == before, (method, url, json)
            assert fresh(draft).lines == []
    for change in ({"status": "draft"}, {"number": "2026-999996"}, {"paid_at": None}):
        assert client.put(f"/api/v1/invoice/{pk}", json=change, headers=headers).status_code == 422, change
    with app.app_context():
        assert stored(pk) == before and fresh(pk).number == number
    # cancelled by its Storno: refused the same
    with app.app_context(), acting_as():
        cancel_invoice(db.session, fresh(pk), now=NOW)
        db.session.commit()
        before = stored(pk)
    assert before[1] == "cancelled"
    for method, url, json in (("PUT", f"/api/v1/invoice/{pk}", {"note": "geändert"}),
                              ("POST", "/api/v1/invoice_line/", new_line),
                              ("PUT", f"/api/v1/invoice_line/{line_id}", {"unit_price": "1.00"})):
        response = client.open(url, method=method, json=json, headers=headers)
        assert (response.status_code, response.json["message"]) == (400, REFUSED), (method, url, json)
    response = client.delete(f"/api/v1/invoice/{pk}", headers=headers)
    assert (response.status_code, response.json["message"]) == (400, "Nur Entwürfe können gelöscht werden.")
    with app.app_context():
        assert stored(pk) == before
    # reading still works
    response = client.get(f"/api/v1/invoice/{pk}", headers=headers)
    assert response.status_code == 200 and response.json["result"]["number"] == number
    assert response.json["result"]["total_gross"] == "74.95"


@pytest.mark.parametrize("role", ["Employee", "Viewer"])
def test_the_invoice_api_is_for_manager_and_owner_only(app, customer, role):
    with app.app_context(), acting_as():
        pk = make_draft(customer, note="Nur Leitung")
        line_id = fresh(pk).lines[0].id
        before = stored(pk)
    headers, client = api_headers(app, role), app.test_client()
    for method, url, json in (("GET", "/api/v1/invoice/", None), ("GET", f"/api/v1/invoice/{pk}", None),
                              ("GET", "/api/v1/invoice_line/", None),
                              ("PUT", f"/api/v1/invoice/{pk}", {"note": "geändert"}),
                              ("POST", "/api/v1/invoice_line/", {"invoice": pk, "description": "x", "unit_price": "1"}),
                              ("DELETE", f"/api/v1/invoice_line/{line_id}", None)):
        assert client.open(url, method=method, json=json, headers=headers).status_code == 403, (method, url)
    with app.app_context():
        assert stored(pk) == before
    owner = client.get("/api/v1/invoice/", headers=api_headers(app, "Owner"))
    assert owner.status_code == 200 and pk in owner.json["ids"]
