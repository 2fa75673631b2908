"""The bonus screens: the customer file's Bonus tab (balance, progress, ledger), "Prämie
einlösen" / "Prämie zurücknehmen" on an invoice draft and a booking, the hand-booked ledger
lines — with CSRF, roles, row rules and German refusals (nothing stored when refused)."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.jobs.base import acting_as
from app.models import BonusTransaction, Booking, Invoice, InvoiceLine
from tests.helpers_perm import pop_flashes, session_csrf
from tests.test_bonus import _draft, _earn


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def lines_of(app, invoice_id: int) -> list[tuple[str, Decimal]]:
    with app.app_context():
        return [(d, Decimal(p)) for d, p in db.session.execute(
            sa.select(InvoiceLine.description, InvoiceLine.unit_price).where(InvoiceLine.invoice_id == invoice_id)
            .order_by(InvoiceLine.position))]


def test_the_bonus_tab_shows_balance_progress_and_ledger(app, shop, manager):
    program = shop.program(threshold=200)
    shop.booking("completed")
    page = text(manager.get(f"/customerview/show/{shop.customer}"))
    assert 'id="bonus-overview"' in page and f'id="bonus-program-{program}"' in page
    assert "49 von 200 Punkten" in page and 'aria-valuenow="24"' in page
    assert "Noch 151 Punkte bis zur Prämie." in page
    assert "Termin abgeschlossen: Schnitt" in page  # the ledger line in the tab's list
    _earn(shop, 200, program)
    page = text(manager.get(f"/customerview/show/{shop.customer}"))
    assert "249 von 200 Punkten" in page and 'aria-valuenow="100"' in page and "Prämie verfügbar" in page


def test_the_bonus_tab_in_english(app, shop, manager):
    shop.program(threshold=200)
    shop.booking("completed")
    assert manager.get("/lang/en").status_code == 302
    try:
        page = text(manager.get(f"/customerview/show/{shop.customer}"))
        assert "49 of 200 points" in page and "151 more points until the reward." in page
        assert "Appointment completed: Schnitt" not in page  # a ledger reason is stored text, in German
    finally:
        manager.get("/lang/de")


def test_an_employee_sees_no_bonus_panel_and_may_not_redeem(app, shop, world, employee):
    program = shop.program(threshold=10)
    with app.app_context(), acting_as():  # a customer the employee serves
        booking = db.session.get(Booking, shop.booking())
        booking.employee_id = world.employee1
        db.session.commit()
        booking_id = booking.id
    _earn(shop, 50, program)
    page = text(employee.get(f"/customerview/show/{shop.customer}"))
    assert 'id="bonus-overview"' not in page and 'id="booking-bonus"' not in text(
        employee.get(f"/bookingview/show/{booking_id}"))
    token = session_csrf(employee)
    response = employee.post(f"/bookingview/reward/{booking_id}", data={"csrf_token": token, "program": program})
    assert response.status_code == 403
    assert shop.balance(program) == 50
    assert employee.get("/bonustransactionview/list/").status_code == 403


def test_redeem_and_take_back_on_an_invoice_draft(app, shop, manager):
    program = shop.program(threshold=100, kind="percent", value="10")
    _earn(shop, 120, program)
    invoice_id = _draft(shop, (("49.00", "19"),))
    page = text(manager.get(f"/invoiceview/show/{invoice_id}"))
    assert 'id="invoice-bonus"' in page and f'id="action-reward-{program}"' in page
    response = manager.post(f"/invoiceview/reward/{invoice_id}", data={"program": program})
    assert response.status_code == 400  # no CSRF token: refused
    assert lines_of(app, invoice_id) == [("Leistung 0", Decimal("49.00"))]
    token = session_csrf(manager)
    response = manager.post(f"/invoiceview/reward/{invoice_id}", data={"csrf_token": token, "program": program})
    assert response.status_code == 302
    assert lines_of(app, invoice_id) == [("Leistung 0", Decimal("49.00")), ("Bonus: Rabatt", Decimal("-4.90"))]
    assert shop.balance(program) == 20
    page = text(manager.get(f"/invoiceview/show/{invoice_id}"))
    assert "Prämie „Rabatt“ eingelöst." in page and 'id="action-reward-undo"' in page and "44,10" in page
    response = manager.post(f"/invoiceview/reward/{invoice_id}", data={"csrf_token": token, "undo": "1"})
    assert response.status_code == 302
    assert lines_of(app, invoice_id) == [("Leistung 0", Decimal("49.00"))] and shop.balance(program) == 120


def test_a_refused_redemption_says_why_and_stores_nothing(app, shop, manager):
    program = shop.program(threshold=100)
    _earn(shop, 30, program)
    invoice_id = _draft(shop)
    token = session_csrf(manager)
    response = manager.post(f"/invoiceview/reward/{invoice_id}", data={"csrf_token": token, "program": program})
    assert response.status_code == 302
    assert ("danger", "Für die Prämie fehlen noch 70 Punkte (Stand 30 von 100).") in pop_flashes(manager)
    for junk in ("", "abc", "99999999999999999999", "0"):
        manager.post(f"/invoiceview/reward/{invoice_id}", data={"csrf_token": token, "program": junk})
        assert ("danger", "Bitte ein Bonusprogramm wählen.") in pop_flashes(manager)
    assert lines_of(app, invoice_id) == [("Leistung 0", Decimal("49.00"))] and shop.balance(program) == 30
    assert manager.post("/invoiceview/reward/999999999", data={"csrf_token": token}).status_code == 404


def redeemed_draft(shop, client) -> tuple[int, int, str]:
    """A draft with a reward redeemed through the screen: (program, invoice id, CSRF token)."""
    program = shop.program(threshold=100)
    _earn(shop, 100, program)
    invoice_id = _draft(shop)
    token = session_csrf(client)
    client.post(f"/invoiceview/reward/{invoice_id}", data={"csrf_token": token, "program": program})
    return program, invoice_id, token


def test_a_discount_line_cannot_be_edited_by_hand(app, shop, manager):
    _program, invoice_id, token = redeemed_draft(shop, manager)
    with app.app_context():
        line_id = db.session.scalar(sa.select(InvoiceLine.id).where(
            InvoiceLine.invoice_id == invoice_id, InvoiceLine.bonus_transaction_id.is_not(None)))
    response = manager.post(f"/invoicelineview/edit/{line_id}", data={
        "csrf_token": token, "invoice": invoice_id, "position": 2, "description": "Bonus: Rabatt",
        "quantity": "1", "unit_price": "-40.00", "vat_rate": "19", "gross_pricing": "y"}, follow_redirects=True)
    assert "Eine Bonus-Position ändert sich nur über „Prämie zurücknehmen“" in text(response)
    assert ("Bonus: Rabatt", Decimal("-4.90")) in lines_of(app, invoice_id)


def test_redeem_and_take_back_on_a_booking(app, shop, manager):
    program = shop.program(threshold=100, kind="fixed", value="15")
    _earn(shop, 100, program)
    pk = shop.booking(price="49.00")
    page = text(manager.get(f"/bookingview/show/{pk}"))
    assert 'id="booking-bonus"' in page and f'id="action-reward-{program}"' in page
    token = session_csrf(manager)
    assert manager.post(f"/bookingview/reward/{pk}", data={"csrf_token": token, "program": program}).status_code == 302
    assert ("success", "Prämie „Rabatt“ eingelöst: neuer Preis 34,00 €.") in pop_flashes(manager)
    with app.app_context():
        assert db.session.get(Booking, pk).price == Decimal("34.00")
        line_id = db.session.scalar(sa.select(BonusTransaction.id).where(
            BonusTransaction.booking_id == pk, BonusTransaction.kind == "redeem"))
    assert shop.balance(program) == 0
    page = text(manager.get(f"/bookingview/show/{pk}"))
    assert "49,00 € → 34,00 €" in page and 'id="action-reward-undo"' in page
    manager.post(f"/bookingview/reward/{pk}", data={"csrf_token": token, "undo": str(line_id)})
    with app.app_context():
        assert db.session.get(Booking, pk).price == Decimal("49.00")
    assert shop.balance(program) == 100
    manager.post(f"/bookingview/reward/{pk}", data={"csrf_token": token, "undo": str(line_id)})
    assert ("danger", "Diese Prämie wurde bereits zurückgenommen.") in pop_flashes(manager)
    assert shop.balance(program) == 100


def test_a_colleagues_booking_is_not_found_by_the_reward_route(app, shop, world, client_for):
    """Row rules on the reward route too (an Employee lacks the permission anyway, so a
    Manager's route is checked with a booking that does not exist for anyone)."""
    manager = client_for("Manager")
    token = session_csrf(manager)
    assert manager.post("/bookingview/reward/abc", data={"csrf_token": token}).status_code == 400
    assert manager.post("/bookingview/reward/999999999", data={"csrf_token": token}).status_code == 404


def _post_ledger_line(client, customer: int, program: int, kind: str, points: int):
    token = session_csrf(client)
    return client.post("/bonustransactionview/add", data={
        "csrf_token": token, "customer": customer, "program": program, "kind": kind, "points": points,
        "reason": "Kulanz"}, follow_redirects=True)


def count_lines(app, customer: int) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(BonusTransaction).where(
            BonusTransaction.customer_id == customer))


def test_hand_booked_ledger_lines(app, shop, manager):
    program = shop.program()
    response = _post_ledger_line(manager, shop.customer, program, "earn", 30)
    assert count_lines(app, shop.customer) == 1 and shop.balance(program) == 30, text(response)[:2000]
    response = _post_ledger_line(manager, shop.customer, program, "correction", -31)
    assert "Der Punktestand darf nicht unter 0 fallen (Stand: 30 Punkte)." in text(response)
    response = _post_ledger_line(manager, shop.customer, program, "redeem", -10)
    assert count_lines(app, shop.customer) == 1 and shop.balance(program) == 30
    assert "Keine gültige Auswahl." in text(response)  # the form offers only the hand-booked kinds
    _post_ledger_line(manager, shop.customer, program, "correction", -30)
    assert shop.balance(program) == 0 and count_lines(app, shop.customer) == 2
    with app.app_context():
        recorded_by = db.session.scalars(sa.select(BonusTransaction.created_by_id).where(
            BonusTransaction.customer_id == shop.customer)).all()
        manager_id = db.session.execute(sa.text("SELECT id FROM ab_user WHERE username = 'manager'")).scalar()
    assert recorded_by == [manager_id, manager_id]
    page = text(manager.get(f"/customerview/show/{shop.customer}"))
    assert len(re.findall(r"<td[^>]*> ?Manager Test ?</td>", page)) == 2  # "Erfasst von" in the Bonus tab


def test_the_invoice_keeps_no_reward_after_its_draft_is_deleted(app, shop, manager):
    program, invoice_id, token = redeemed_draft(shop, manager)
    assert shop.balance(program) == 0
    assert manager.post(f"/invoiceview/delete/{invoice_id}", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert db.session.get(Invoice, invoice_id) is None
    assert shop.balance(program) == 100


def test_the_write_check_refuses_kinds_that_book_themselves(app, shop):
    """The same rule behind the form (for the API and any other path of the view)."""
    from app.views.bonus import BonusTransactionView

    program = shop.program()
    with app.test_request_context(), acting_as():
        for kind, points in (("redeem", -5), ("referral", 5)):
            line = BonusTransaction(customer_id=shop.customer, program_id=program, kind=kind, points=points,
                                    reason="von Hand")
            with pytest.raises(ValueError, match="bucht Terminbuch selbst"):
                BonusTransactionView.check_write(BonusTransactionView.__new__(BonusTransactionView), line)


def test_the_booking_panel_offers_only_programs_covering_its_service(app, shop, manager):
    course_only = shop.program(threshold=10, services=(shop.course,))
    cuts = shop.program(threshold=10, services=(shop.cut,))
    _earn(shop, 10, course_only)
    _earn(shop, 10, cuts)
    page = text(manager.get(f"/bookingview/show/{shop.booking(price='49.00')}"))
    assert f'id="action-reward-{cuts}"' in page and f'id="action-reward-{course_only}"' not in page


@pytest.mark.parametrize("category, stored", [("", None), ("kurs", "kurs"), ("bogus", "refused")])
def test_the_program_form_takes_a_category_or_none(app, shop, manager, category, stored):
    name = f"Formular {shop.tag} {category or 'leer'}"
    token = session_csrf(manager)
    response = manager.post("/bonusprogramview/add", data={
        "csrf_token": token, "name": name, "points_per_euro": "1", "threshold": "100", "reward_name": "Gratis",
        "reward_kind": "fixed", "reward_value": "10", "referral_points": "0", "category": category,
        "active": "y"}, follow_redirects=True)
    from app.models import BonusProgram

    with app.app_context():
        program = db.session.scalar(sa.select(BonusProgram).where(BonusProgram.name == name))
        if program is not None:
            shop.programs.append(program.id)
        if stored == "refused":
            assert program is None and "Keine gültige Auswahl." in text(response)
        else:
            assert program is not None and program.category == stored
