"""The customer file (Kundenakte): its tabs, "E-Mail senden" through the notification
path (the text never stored), "Rechnung erstellen" handing over to the invoice form."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.jobs.base import acting_as
from app.models import Customer, Invoice, NotificationLog
from tests.conftest import csrf_token, post_form

SECRET_BODY = "Geheimer Text 7f3a: bitte nie speichern"
TABS = ["Stammdaten", "Termine", "Mehrfachkarten", "Hunde", "Bonus", "Rechnungen", "Dokumente",
        "Benachrichtigungen", "Verlauf"]


def tab_names(html: str) -> list[str]:
    nav = html.split('<ul class="nav nav-tabs">', 1)[1].split("</ul>", 1)[0]
    return [name.strip() for name in re.findall(r'data-toggle="tab">([^<]+)</a>', nav)]


def messages_of(app, customer_id: int) -> list[NotificationLog]:
    with app.app_context():
        return list(db.session.scalars(sa.select(NotificationLog).where(
            NotificationLog.customer_id == customer_id, NotificationLog.kind == "message")))


@pytest.fixture()
def cleanup_messages(app, world):
    yield
    with app.app_context():
        db.session.execute(sa.delete(NotificationLog).where(NotificationLog.kind == "message"))
        db.session.commit()


def test_owner_sees_every_tab_in_the_order_of_the_file(owner, world):
    html = owner.get(f"/customerview/show/{world.customer1}").get_data(as_text=True)
    assert tab_names(html) == TABS
    assert 'id="action-email"' in html and 'id="action-invoice"' in html
    assert f'id="action-edit" href="/customerview/edit/{world.customer1}"' in html


def test_employee_sees_only_the_tabs_of_their_role(employee, world):
    html = employee.get(f"/customerview/show/{world.customer1}").get_data(as_text=True)
    assert tab_names(html) == ["Stammdaten", "Termine", "Hunde", "Dokumente", "Benachrichtigungen", "Verlauf"]
    assert 'id="action-email"' in html
    assert 'id="action-invoice"' not in html  # invoices are the Manager's and Owner's


def test_viewer_gets_no_actions(viewer, world):
    html = viewer.get(f"/customerview/show/{world.customer1}").get_data(as_text=True)
    assert "action-email" not in html and "action-invoice" not in html
    assert "action-edit" not in html  # read only
    assert "action-edit" not in viewer.get(f"/bookingview/show/{world.booking1}").get_data(as_text=True)
    assert viewer.get(f"/customerview/email/{world.customer1}").status_code == 403


def test_every_detail_page_has_an_edit_button_for_who_may_edit(owner, employee, world):
    page = owner.get(f"/bookingview/show/{world.booking1}").get_data(as_text=True)
    assert f'id="action-edit" href="/bookingview/edit/{world.booking1}"' in page
    page = employee.get(f"/bookingview/show/{world.booking1}").get_data(as_text=True)
    assert 'id="action-edit"' in page
    page = employee.get(f"/employeeview/show/{world.employee1}").get_data(as_text=True)
    assert 'id="action-edit"' not in page  # an Employee does not edit staff records


def test_email_goes_through_the_notification_path_and_the_text_is_not_stored(
        app, owner, world, rq_queues, cleanup_messages):
    url = f"/customerview/email/{world.customer1}"
    response = post_form(owner, url, {"subject": "Ihr Termin", "body": SECRET_BODY})
    assert response.status_code == 302
    assert response.location.endswith(f"/customerview/show/{world.customer1}")
    [entry] = messages_of(app, world.customer1)
    assert (entry.channel, entry.recipient, entry.status) == ("email", "anna@example.org", "queued")
    jobs = rq_queues["notifications"].jobs
    assert [(job.func_name, job.args) for job in jobs] == [
        ("app.jobs.notifications.send_notification", (entry.id, "Ihr Termin", SECRET_BODY))]
    with app.app_context():  # nowhere in the log nor its history
        for table in ("notification_log", "notification_log_version"):
            rows = db.session.execute(sa.text(f"SELECT * FROM {table}")).all()
            assert not any(SECRET_BODY in str(value) for row in rows for value in row)
    # the customer file shows it in the Benachrichtigungen tab (kind label, never the text)
    html = owner.get(f"/customerview/show/{world.customer1}").get_data(as_text=True)
    assert "Nachricht an Kund:in" in html and SECRET_BODY not in html


def test_email_without_text_is_refused_with_nothing_stored(app, owner, world, rq_queues):
    url = f"/customerview/email/{world.customer1}"
    response = post_form(owner, url, {"subject": "Ihr Termin", "body": "   "})
    assert response.status_code == 200
    assert "Bitte Betreff und Text angeben." in response.get_data(as_text=True)
    assert messages_of(app, world.customer1) == []
    assert rq_queues["notifications"].count == 0


def test_email_to_a_customer_without_address_is_refused(app, owner, world, cleanup_messages):
    with app.app_context(), acting_as():
        customer = Customer(first_name="Ohne", last_name="Adresse")
        db.session.add(customer)
        db.session.commit()
        pk = customer.id
    try:
        page = owner.get(f"/customerview/show/{pk}").get_data(as_text=True)
        assert 'id="action-email"' not in page  # the button is shown disabled, with the reason
        assert "keine E-Mail-Adresse hinterlegt" in page
        response = post_form(owner, f"/customerview/email/{pk}", {"subject": "Hallo", "body": "Text"})
        assert "Für diese Kund:in ist keine E-Mail-Adresse hinterlegt." in response.get_data(as_text=True)
        assert messages_of(app, pk) == []
    finally:
        with app.app_context(), acting_as():
            db.session.delete(db.session.get(Customer, pk))
            db.session.commit()


def test_email_follows_the_row_rules_and_needs_csrf(app, employee, world):
    # employee1 never served customer2: that customer does not exist for them
    assert employee.get(f"/customerview/email/{world.customer2}").status_code == 404
    token = csrf_token(employee, f"/customerview/email/{world.customer1}")
    response = employee.post(f"/customerview/email/{world.customer2}",
                             data={"subject": "x", "body": "y", "csrf_token": token})
    assert response.status_code == 404
    response = employee.post(f"/customerview/email/{world.customer1}", data={"subject": "x", "body": "y"})
    assert response.status_code == 400  # no CSRF token
    assert employee.get("/customerview/email/12x").status_code == 400
    assert employee.get("/customerview/email/987654321").status_code == 404
    assert messages_of(app, world.customer1) == [] and messages_of(app, world.customer2) == []


def test_invoice_button_opens_a_draft_for_the_customer_after_a_confirmation(app, owner, world):
    html = owner.get(f"/customerview/show/{world.customer1}").get_data(as_text=True)
    url = re.search(r'id="action-invoice" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    page = owner.get(url).get_data(as_text=True)
    assert "Neue Rechnung (Entwurf) für" in page and "⭐ Anna Berg" in page

    def drafts() -> list[int]:
        with app.app_context():
            return list(db.session.scalars(sa.select(Invoice.id).where(Invoice.customer_id == world.customer1)))

    before = drafts()
    response = post_form(owner, "/invoiceview/draft", {"customer": world.customer1}, form_url=url)
    [new] = set(drafts()) - set(before)
    try:
        assert response.status_code == 302 and response.location.endswith(f"/invoiceview/show/{new}")
        with app.app_context():
            invoice = db.session.get(Invoice, new)
            assert (invoice.status, invoice.number) == ("draft", None)
    finally:
        with app.app_context():
            db.session.delete(db.session.get(Invoice, new))
            db.session.commit()


def test_invoice_draft_refuses_a_missing_or_hidden_customer(app, owner, manager, employee, world):
    before = drafts_count(app)
    form_url = f"/invoiceview/draft?customer={world.customer1}"
    response = post_form(owner, "/invoiceview/draft", {"customer": ""}, form_url=form_url)
    assert response.status_code == 200 and "Bitte eine Kund:in wählen." in response.get_data(as_text=True)
    response = post_form(owner, "/invoiceview/draft", {"customer": "987654321"}, form_url=form_url)
    assert "Bitte eine Kund:in wählen." in response.get_data(as_text=True)
    assert employee.get(f"/invoiceview/draft?customer={world.customer1}").status_code == 403
    assert owner.post("/invoiceview/draft", data={"customer": world.customer1}).status_code == 400  # no CSRF
    assert drafts_count(app) == before


def drafts_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Invoice))


def test_emoji_marker_stands_next_to_the_name_in_list_select_and_exports(owner, world):
    assert "⭐ Anna Berg" in owner.get("/customerview/list/?_flt_0_last_name=Berg").get_data(as_text=True)
    lookup = owner.get("/customerview/lookup?q=Berg").get_json()
    assert "⭐ Anna Berg" in str(lookup)
    window = "_flt_1_start_at=2030-03-01+00:00:00&_flt_2_start_at=2030-03-31+00:00:00"
    bookings = owner.get(f"/bookingview/export/csv?{window}").get_data(as_text=True)
    assert "⭐ Anna Berg" in bookings
    customers = owner.get("/customerview/export/csv?_flt_0_last_name=Berg").get_data(as_text=True)
    header, row = customers.lstrip("\ufeff").splitlines()[:2]
    assert header.startswith("Nachname;Vorname;Markierung") and row.startswith("Berg;Anna;⭐")
