"""The built-in lens "Offene Posten" of the invoice list: the `payment` filter column selects
exactly the open invoices (issued, not paid, not a Storno invoice; a cancelled one is not
open), the list shows each one's open amount and the sum of all of them (German money
format, one query however many), marking paid/unpaid takes an invoice out and back in, the
lens is seeded by `flask init` and on the tabs, junk values select nothing, and the row
rules hold (an Employee sees no invoices at all)."""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from urllib.parse import quote
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.jobs.base import acting_as
from app.models import Customer, Invoice, InvoiceLine, Lens
from app.services.invoices import cancel_invoice, issue_invoice, set_paid
from tests.conftest import post_form
from tests.helpers_invoices import delete_invoices
from tests.helpers_perm import session_csrf

OPEN = "_flt_0_payment=open"
LIST = "/invoiceview/list/"
# The fixture's invoices are all issued at this wall-clock time of the business: the list
# filtered to it (`_flt_0_issued_at=…`, FAB's "equal") shows only them, whatever other tests left.
ISSUED = "2031-05-05 10:00:00"
ISSUED_STATEMENTS = "2031-05-06 10:00:00"  # the statement-count test's own invoices


def at(text: str) -> datetime:
    from app.formatting import business_tz

    return datetime.fromisoformat(text).replace(tzinfo=business_tz())


def only_issued_at(text: str) -> str:
    return f"_flt_0_issued_at={quote(text)}"


def new_customer(name: str) -> int:
    customer = Customer(first_name="Olga", last_name=f"{name}-{uuid4().hex[:8]}", city="Berlin")
    db.session.add(customer)
    db.session.commit()
    return customer.id


def draft(customer_id: int, lines) -> Invoice:
    invoice = Invoice(customer_id=customer_id)
    invoice.lines = [InvoiceLine(position=index + 1, description=f"Position {index + 1}",
                                 quantity=Decimal(str(quantity)), unit_price=Decimal(price),
                                 vat_rate=Decimal(str(rate)))
                     for index, (quantity, price, rate) in enumerate(lines)]
    db.session.add(invoice)
    db.session.commit()
    return invoice


def issued(customer_id: int, lines, when: str = ISSUED) -> int:
    invoice = draft(customer_id, lines)
    issue_invoice(db.session, invoice, now=at(when))
    db.session.commit()
    return invoice.id


def purge(customer_ids: list[int]) -> None:
    db.session.rollback()
    delete_invoices(db.session, list(db.session.scalars(
        sa.select(Invoice.id).where(Invoice.customer_id.in_(customer_ids)))))
    for pk in customer_ids:
        db.session.delete(db.session.get(Customer, pk))
    db.session.commit()


@pytest.fixture(scope="module")
def invoices(app):
    """Three open invoices (53,55 €, 21,40 €, 1.190,00 €), a paid one, a draft, a cancelled one
    and its Storno invoice — all but the draft issued at ISSUED."""
    with app.app_context(), acting_as():
        customer = new_customer("Offen")
        ids = {
            "open_a": issued(customer, ((1, "45.00", 19),)),  # 45,00 + 8,55 MwSt.
            "open_b": issued(customer, ((2, "10.00", 7),)),  # 20,00 + 1,40
            "open_c": issued(customer, ((10, "100.00", 19),)),  # 1.000,00 + 190,00
            "paid": issued(customer, ((1, "30.00", 19),)),
            "draft": draft(customer, ((1, "99.00", 19),)).id,
            "cancelled": issued(customer, ((1, "80.00", 19),)),
        }
        set_paid(db.session, db.session.get(Invoice, ids["paid"]), True, now=at(ISSUED))
        ids["storno"] = cancel_invoice(db.session, db.session.get(Invoice, ids["cancelled"]), now=at(ISSUED)).id
        db.session.commit()
    yield ids
    with app.app_context(), acting_as():
        purge([customer])


def listed(client, query: str) -> tuple[set[int], str]:
    response = client.get(f"{LIST}?{query}&psize_InvoiceView=100")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return {int(pk) for pk in re.findall(r'href="/invoiceview/show/(\d+)', html)}, html


def open_total(html: str) -> str | None:
    match = re.search(r'id="tb-open-total">([^<]*)<', html)
    return match.group(1).strip() if match else None


def row_of(html: str, pk: int) -> str:
    return html.split(f'href="/invoiceview/show/{pk}"', 1)[1].split("</tr>", 1)[0]


def open_in_database(app) -> dict[int, Decimal]:
    """The oracle: every open invoice of the database and its gross total, decided in Python."""
    with app.app_context():
        rows = db.session.scalars(sa.select(Invoice).options(selectinload(Invoice.lines))).all()
        return {row.id: row.total_gross for row in rows
                if row.status == "issued" and row.paid_at is None and row.cancels_id is None}


OPEN_KEYS = ("open_a", "open_b", "open_c")


# --- what the lens selects ------------------------------------------------------------------
def test_lens_lists_exactly_the_open_invoices_with_their_amounts_and_sum(owner, invoices):
    shown, html = listed(owner, f"{OPEN}&{only_issued_at(ISSUED)}")
    assert shown == {invoices[key] for key in OPEN_KEYS}  # not paid, draft, cancelled or its Storno
    assert "Offener Betrag" in html
    assert "53,55 €" in row_of(html, invoices["open_a"])
    assert "21,40 €" in row_of(html, invoices["open_b"])
    assert "1.190,00 €" in row_of(html, invoices["open_c"])
    assert open_total(html) == "1.264,95 €"
    assert re.search(r'id="tb-open-count">\s*3\s*<', html)


def test_lens_without_other_filters_is_every_open_invoice_of_the_database(app, owner, invoices):
    from app.formatting import fmt_money

    expected = open_in_database(app)
    shown, html = listed(owner, OPEN)
    assert shown == set(expected)
    assert {invoices[key] for key in OPEN_KEYS} <= shown
    assert not {invoices[key] for key in ("paid", "draft", "cancelled", "storno")} & shown
    assert open_total(html) == fmt_money(sum(expected.values(), Decimal("0.00")))


def test_sum_covers_every_page_not_only_the_shown_one(owner, invoices):
    response = owner.get(f"{LIST}?{OPEN}&{only_issued_at(ISSUED)}&psize_InvoiceView=1")
    html = response.get_data(as_text=True)
    assert len(set(re.findall(r'href="/invoiceview/show/(\d+)', html))) == 1
    assert open_total(html) == "1.264,95 €"


def test_paid_filter_and_the_plain_list_have_no_sum(owner, invoices):
    shown, html = listed(owner, f"_flt_0_payment=paid&{only_issued_at(ISSUED)}")
    assert shown == {invoices["paid"]}
    assert open_total(html) is None and "Offener Betrag" not in html
    shown, html = listed(owner, only_issued_at(ISSUED))
    assert {invoices[key] for key in (*OPEN_KEYS, "paid", "cancelled", "storno")} <= shown
    assert open_total(html) is None and "Offener Betrag" not in html


def test_marking_paid_takes_it_out_and_unpaid_brings_it_back(app, manager, invoices):
    pk = invoices["open_a"]
    try:
        assert post_form(manager, f"/invoiceview/payment/{pk}", {"paid": "1"}).status_code == 302
        shown, html = listed(manager, f"{OPEN}&{only_issued_at(ISSUED)}")
        assert shown == {invoices["open_b"], invoices["open_c"]}
        assert open_total(html) == "1.211,40 €"
        assert pk in listed(manager, f"_flt_0_payment=paid&{only_issued_at(ISSUED)}")[0]
    finally:
        assert post_form(manager, f"/invoiceview/payment/{pk}", {"paid": "0"}).status_code == 302
    shown, html = listed(manager, f"{OPEN}&{only_issued_at(ISSUED)}")
    assert shown == {invoices[key] for key in OPEN_KEYS}
    assert open_total(html) == "1.264,95 €"


@pytest.mark.parametrize("value", ["gibt-es-nicht", "OPEN", "open' OR '1'='1", "1", "paid;open"])
def test_unknown_payment_value_selects_nothing(owner, invoices, value):
    shown, html = listed(owner, f"_flt_0_payment={quote(value)}")
    assert shown == set()
    assert open_total(html) is None


def test_export_of_the_lens_has_exactly_the_open_invoices(owner, invoices):
    from app.models import Invoice as InvoiceModel

    response = owner.get(f"/invoiceview/export/csv?{OPEN}&{only_issued_at(ISSUED)}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    with owner.application.app_context():
        numbers = {key: db.session.get(InvoiceModel, invoices[key]).number
                   for key in (*OPEN_KEYS, "paid", "cancelled", "storno")}
    assert all(numbers[key] in text for key in OPEN_KEYS)
    assert not any(numbers[key] in text for key in ("paid", "cancelled", "storno"))


# --- no N+1 -------------------------------------------------------------------------------
def test_two_and_six_open_invoices_cost_the_same_statements(app, owner, statements):
    url = f"{LIST}?{OPEN}&{only_issued_at(ISSUED_STATEMENTS)}&psize_InvoiceView=100"
    with app.app_context(), acting_as():
        customer = new_customer("Zaehlung")
    try:
        with app.app_context(), acting_as():
            for _ in range(2):
                issued(customer, ((1, "10.00", 19), (2, "5.00", 7)), ISSUED_STATEMENTS)
        owner.get(url)  # warm-up (the first request of a client loads more)
        with statements() as two:
            html = owner.get(url).get_data(as_text=True)
        assert open_total(html) == "45,20 €"  # 2 × (11,90 + 10,70)
        with app.app_context(), acting_as():
            for _ in range(4):
                issued(customer, ((1, "10.00", 19), (2, "5.00", 7)), ISSUED_STATEMENTS)
        with statements() as six:
            html = owner.get(url).get_data(as_text=True)
        assert open_total(html) == "135,60 €"
        assert len(set(re.findall(r'href="/invoiceview/show/(\d+)', html))) == 6
        assert six.n == two.n
    finally:
        with app.app_context(), acting_as():
            purge([customer])


# --- the built-in lens row and the tabs ------------------------------------------------------
def tab_links(html: str) -> dict[str, str]:
    block = html.split('id="tb-lens-tabs"', 1)[1].split('id="tb-lens-save"', 1)[0] if 'id="tb-lens-tabs"' in html \
        else ""
    return {label.strip(): href.replace("&amp;", "&")
            for href, label in re.findall(r'<a href="([^"]+)" id="tb-lens-[^"]+"[^>]*>\s*([^<]+?)\s*</a>', block)}


def active_tabs(html: str) -> list[str]:
    return re.findall(r'<li role="presentation" class="active">\s*<a href="[^"]*"[^>]*>\s*([^<]+?)\s*</a>', html)


def active_tab(html: str) -> str | None:
    tabs = active_tabs(html)
    return tabs[0] if len(tabs) == 1 else None


def test_lens_row_exists_after_init_and_seeding_is_idempotent(app):
    from app.services.lenses import seed_builtin_lenses

    def rows():
        return db.session.scalars(sa.select(Lens).where(Lens.builtin_key == "open_items")).all()

    with app.app_context(), acting_as():
        [lens] = rows()  # seeded by init_app_data (`flask init`) in conftest
        assert (lens.name, lens.view_name, lens.query_string, lens.builtin, lens.owner_id, lens.shared) == (
            "Offene Posten", "InvoiceView", OPEN, True, None, False)
        lens.name, lens.query_string = "Veraltet", "_flt_0_status=draft"
        db.session.commit()
        seed_builtin_lenses(db.session)
        seed_builtin_lenses(db.session)
        db.session.commit()
        [lens] = rows()
        assert (lens.name, lens.view_name, lens.query_string) == ("Offene Posten", "InvoiceView", OPEN)


def test_lens_is_a_tab_of_the_invoice_list_only(owner, manager):
    html = owner.get(LIST).get_data(as_text=True)
    tabs = tab_links(html)
    assert tabs["Offene Posten"] == f"{LIST}?{OPEN}"
    assert "Überfällig" not in tabs  # the customer lenses stay on the customer list
    assert active_tab(html) == "Alle"
    html = manager.get(f"{LIST}?{OPEN}").get_data(as_text=True)
    assert active_tab(html) == "Offene Posten"
    assert 'id="tb-export-csv"' in html and 'id="tb-lens-save-form"' in html
    assert "Offene Posten" not in tab_links(owner.get("/customerview/list/").get_data(as_text=True))


def test_manager_saves_an_own_invoice_lens(app, manager):
    query = f"{OPEN}&_oc_InvoiceView=issued_at&_od_InvoiceView=asc&foo=bar"
    try:
        response = manager.post("/lensview/save", data={
            "view": "InvoiceView", "query": query, "name": "Probe-Offen-alt", "csrf_token": session_csrf(manager)})
        assert response.status_code == 302
        kept = f"{OPEN}&_oc_InvoiceView=issued_at&_od_InvoiceView=asc"
        assert response.location.endswith(f"{LIST}?{kept}")
        html = manager.get(f"{LIST}?{kept}").get_data(as_text=True)
        assert tab_links(html)["Probe-Offen-alt"] == f"{LIST}?{kept}"
        # active (as is "Offene Posten": the same filters, and it names no order)
        assert "Probe-Offen-alt" in active_tabs(html) and open_total(html) is not None
    finally:
        with app.app_context():
            for lens in db.session.scalars(sa.select(Lens).where(Lens.name == "Probe-Offen-alt")):
                db.session.delete(lens)
            db.session.commit()


# --- row rules --------------------------------------------------------------------------------
def test_employee_and_viewer_see_no_invoices_and_no_lens(app, employee, viewer, invoices):
    for client in (employee, viewer):
        assert client.get(f"{LIST}?{OPEN}").status_code == 403
        assert client.get(f"/invoiceview/export/csv?{OPEN}").status_code == 403
        assert "Offene Posten" not in tab_links(client.get("/customerview/list/").get_data(as_text=True))
    response = employee.post("/lensview/save", data={
        "view": "InvoiceView", "query": OPEN, "name": "Probe-Mitarbeiter", "csrf_token": session_csrf(employee)})
    assert response.status_code == 200 and "Bitte eine Liste wählen" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(Lens.id).where(Lens.name == "Probe-Mitarbeiter")) is None


def lens_widget_as(app, username: str, query: str):
    """The invoice list's widget and open-item sum as the list builds them for `username`."""
    from flask import g
    from flask_appbuilder.urltools import get_filter_args

    view = next(v for v in app.appbuilder.baseviews if type(v).__name__ == "InvoiceView")
    with app.test_request_context(f"{LIST}?{query}"):
        g.user = app.appbuilder.sm.find_user(username=username)
        get_filter_args(view._filters)
        widget = view._get_list_widget(filters=view._filters, page_size=100)["list"]
        return {int(pk) for pk in widget.template_args["pks"]}, g.pop("_tb_open_items", None)


def test_the_lens_and_its_sum_apply_the_row_rules(app, invoices):
    mine = {invoices[key] for key in OPEN_KEYS}
    query = f"{OPEN}&{only_issued_at(ISSUED)}"
    # the Employee role has no invoice views, and invoices have no row rule for it: none at all
    shown, summary = lens_widget_as(app, "employee1", query)
    assert shown == set() and summary == {"total": "0,00 €", "count": 0}
    for username in ("manager", "owner"):
        shown, summary = lens_widget_as(app, username, query)
        assert shown == mine and summary == {"total": "1.264,95 €", "count": 3}


def test_manager_and_owner_see_the_same_open_items(owner, manager, invoices):
    assert listed(owner, OPEN)[0] == listed(manager, OPEN)[0]
