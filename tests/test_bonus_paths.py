"""The bonus rules on the less travelled paths (found by a review of the first version):
a double click redeems once, a changed draft loses its reward (points back), an edited
completed booking earns anew, Storno and invoiced bookings, merges and their undo, the
SQLite lock, the API and the demo seeder."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.jobs.base import acting_as
from app.models import BonusProgram, BonusTransaction, Booking, Invoice, Service
from app.services.bonus import BonusRefused, redeem_on_booking, redeem_on_invoice, undo_booking_reward
from app.services.duplicates import merge_customers, undo_merge
from app.services.invoices import add_billable_lines, cancel_invoice, issue_invoice
from tests.helpers_perm import api_token, bearer
from tests.test_bonus import _discounts, _draft, _earn, _in_threads


def _redeem_invoice(shop, invoice_id: int, program: int) -> None:
    with shop.app.app_context(), acting_as():
        redeem_on_invoice(db.session, db.session.get(Invoice, invoice_id), db.session.get(BonusProgram, program))
        db.session.commit()


def _redeem_booking(shop, pk: int, program: int) -> int:
    with shop.app.app_context(), acting_as():
        line = redeem_on_booking(db.session, db.session.get(Booking, pk), db.session.get(BonusProgram, program))
        db.session.commit()
        return line.id


def _price(shop, pk: int) -> Decimal:
    with shop.app.app_context():
        return db.session.get(Booking, pk).price


def _invoice_booking(shop, pk: int) -> int:
    with shop.app.app_context(), acting_as():
        invoice = Invoice(customer_id=shop.customer)
        db.session.add(invoice)
        db.session.flush()
        add_billable_lines(db.session, invoice, [pk], [])
        issue_invoice(db.session, invoice)
        db.session.commit()
        return invoice.id


# --- a double click --------------------------------------------------------------------
def test_the_same_draft_redeemed_three_times_at_once_once(app, shop):
    program = shop.program(threshold=100)
    _earn(shop, 300, program)
    draft = _draft(shop)
    errors = _in_threads(app, [lambda session: redeem_on_invoice(
        session, session.get(Invoice, draft), session.get(BonusProgram, program))] * 3)
    assert len(errors) == 2 and all(isinstance(exc, BonusRefused) for exc in errors)
    assert len(_discounts(shop, draft)) == 1 and shop.balance(program) == 200


def test_the_same_booking_redeemed_three_times_at_once_once(app, shop):
    program = shop.program(threshold=100, kind="fixed", value="5")
    _earn(shop, 300, program)
    pk = shop.booking(price="49.00")
    errors = _in_threads(app, [lambda session: redeem_on_booking(
        session, session.get(Booking, pk), session.get(BonusProgram, program))] * 3)
    assert len(errors) == 2 and all(isinstance(exc, BonusRefused) for exc in errors)
    assert _price(shop, pk) == Decimal("44.00") and shop.balance(program) == 200
    shop.set_status(pk, "cancellation")
    assert _price(shop, pk) == Decimal("49.00") and shop.balance(program) == 300


# --- a draft that changes after its reward -----------------------------------------------
def test_a_changed_line_takes_the_reward_back(shop):
    program = shop.program(threshold=100, kind="percent", value="50")
    _earn(shop, 100, program)
    invoice_id = _draft(shop, (("100.00", "19"),))
    _redeem_invoice(shop, invoice_id, program)
    assert shop.balance(program) == 0
    with shop.app.app_context(), acting_as():
        invoice = db.session.get(Invoice, invoice_id)
        next(line for line in invoice.lines if line.bonus_transaction_id is None).unit_price = Decimal("10.00")
        db.session.commit()
        assert db.session.get(Invoice, invoice_id).total_gross == Decimal("10.00")
    assert _discounts(shop, invoice_id) == [] and shop.balance(program) == 100
    _redeem_invoice(shop, invoice_id, program)  # redeemed again on what the draft is now
    assert _discounts(shop, invoice_id) == [(Decimal("19"), Decimal("-5.00"))]


@pytest.mark.parametrize("change", ["delete a line", "add a line"])
def test_a_deleted_or_added_line_takes_the_reward_back(shop, change):
    program = shop.program(threshold=100, kind="fixed", value="20")
    _earn(shop, 100, program)
    invoice_id = _draft(shop, (("30.00", "19"), ("5.00", "7")))
    _redeem_invoice(shop, invoice_id, program)
    with shop.app.app_context(), acting_as():
        invoice = db.session.get(Invoice, invoice_id)
        if change == "delete a line":
            db.session.delete(next(line for line in invoice.lines if line.unit_price == Decimal("30.00")))
        else:
            from app.models import InvoiceLine
            invoice.lines.append(InvoiceLine(position=9, description="Pflegeprodukt", quantity=Decimal("1"),
                                             unit_price=Decimal("12.00"), vat_rate=Decimal("19"), gross_pricing=True))
        db.session.commit()
    assert _discounts(shop, invoice_id) == [] and shop.balance(program) == 100


def test_another_customer_on_the_draft_takes_the_reward_back(shop):
    program = shop.program(threshold=100)
    _earn(shop, 100, program)
    other = shop.new_customer(first_name="Olga")
    invoice_id = _draft(shop)
    _redeem_invoice(shop, invoice_id, program)
    with shop.app.app_context(), acting_as():
        db.session.get(Invoice, invoice_id).customer_id = other
        db.session.commit()
    assert _discounts(shop, invoice_id) == [] and shop.balance(program) == 100


def test_an_invoice_with_a_negative_rate_is_not_issued(shop):
    invoice_id = _draft(shop, (("100.00", "19"), ("-20.00", "7")))
    with shop.app.app_context(), acting_as():
        with pytest.raises(ValueError, match="negativen Betrag je Steuersatz"):
            issue_invoice(db.session, db.session.get(Invoice, invoice_id))
        db.session.rollback()
        assert db.session.get(Invoice, invoice_id).status == "draft"


# --- a completed booking that is edited -------------------------------------------------
def test_a_completed_booking_moved_to_another_customer_moves_its_points(shop):
    program = shop.program()
    other = shop.new_customer(first_name="Olga")
    pk = shop.booking("completed")
    with shop.app.app_context(), acting_as():
        db.session.get(Booking, pk).customer_id = other
        db.session.commit()
    assert shop.balance(program) == 0 and shop.balance(program, other) == 49
    assert shop.standing_earns(pk) == 1


def test_a_reward_after_completion_earns_on_the_price_paid(shop):
    program = shop.program(threshold=10, kind="percent", value="50")
    _earn(shop, 10, program)
    pk = shop.booking("completed", price="40.00")
    assert shop.balance(program) == 50
    line_id = _redeem_booking(shop, pk, program)
    assert _price(shop, pk) == Decimal("20.00") and shop.balance(program) == 20  # 10 − 10 + 20
    with shop.app.app_context(), acting_as():
        undo_booking_reward(db.session, db.session.get(BonusTransaction, line_id))
        db.session.commit()
    assert _price(shop, pk) == Decimal("40.00") and shop.balance(program) == 50 and shop.standing_earns(pk) == 1


# --- invoiced bookings and Storno -------------------------------------------------------
def test_cancelling_an_invoiced_booking_keeps_its_reward(shop):
    program = shop.program(threshold=10, kind="fixed", value="9")
    _earn(shop, 10, program)
    pk = shop.booking(price="49.00")
    _redeem_booking(shop, pk, program)
    shop.set_status(pk, "completed")
    invoice_id = _invoice_booking(shop, pk)
    shop.set_status(pk, "cancellation")
    with shop.app.app_context():
        assert db.session.get(Invoice, invoice_id).total_gross == Decimal("40.00")
    assert _price(shop, pk) == Decimal("40.00") and shop.balance(program) == 0  # the invoice billed 40,00


def test_after_a_storno_the_booking_reward_can_be_taken_back(shop):
    program = shop.program(threshold=10, kind="fixed", value="5")
    _earn(shop, 20, program)
    pk = shop.booking(price="49.00")
    line_id = _redeem_booking(shop, pk, program)
    shop.set_status(pk, "completed")
    invoice_id = _invoice_booking(shop, pk)
    with shop.app.app_context(), acting_as():
        with pytest.raises(BonusRefused, match="schon auf einer Rechnung"):
            undo_booking_reward(db.session, db.session.get(BonusTransaction, line_id))
        db.session.rollback()
        cancel_invoice(db.session, db.session.get(Invoice, invoice_id))
        db.session.commit()
        undo_booking_reward(db.session, db.session.get(BonusTransaction, line_id))
        db.session.commit()
    assert _price(shop, pk) == Decimal("49.00")


# --- merges ------------------------------------------------------------------------------
def test_undoing_a_merge_pays_both_referrals_again(shop):
    program = shop.program(referral=50)
    kept = shop.new_customer(referred_by=shop.customer, first_name="Nina", last_name=f"Neu {shop.tag}")
    duplicate = shop.new_customer(referred_by=shop.customer, first_name="Nina", last_name=f"Neu {shop.tag}")
    shop.booking("completed", customer=kept)
    shop.booking("completed", customer=duplicate)
    with shop.app.app_context(), acting_as():
        merge_id = merge_customers(db.session, kept, duplicate).id
        db.session.commit()
    assert shop.balance(program) == 50
    with shop.app.app_context(), acting_as():
        undo_merge(db.session, merge_id)
        db.session.commit()
    assert shop.balance(program) == 100  # two customers again, each paid their referral


def test_undoing_a_merge_takes_later_corrections_back_with_the_booking(shop):
    program = shop.program()
    kept = shop.new_customer(first_name="Nina", last_name=f"Neu {shop.tag}")
    duplicate = shop.new_customer(first_name="Nina", last_name=f"Neu {shop.tag}")
    pk = shop.booking("completed", customer=duplicate)
    with shop.app.app_context(), acting_as():
        merge_id = merge_customers(db.session, kept, duplicate).id
        db.session.commit()
    shop.set_status(pk, "confirmation")  # the correction is booked on the kept customer
    with shop.app.app_context(), acting_as():
        undo_merge(db.session, merge_id)
        db.session.commit()
    assert shop.balance(program, kept) == 0 and shop.balance(program, duplicate) == 0


def test_a_duplicate_that_referred_itself_gets_no_referral(shop):
    program = shop.program(referral=50)
    duplicate = shop.new_customer(referred_by=shop.customer, first_name="Bea", last_name=f"Bonus {shop.tag} 0")
    shop.booking("completed", customer=duplicate)
    assert shop.balance(program) == 50
    with shop.app.app_context(), acting_as():
        merge_customers(db.session, shop.customer, duplicate)
        db.session.commit()
    shop.customers.remove(duplicate)
    assert shop.balance(program) == 49  # the visit's points, no referral of oneself


# --- the SQLite lock touches no booking row ------------------------------------------------
def test_deleting_from_an_overfull_group_session_with_a_program(app, shop):
    """The lock must not fire the booking triggers: a group session whose capacity was lowered
    afterwards still lets a booking go."""
    shop.program()
    with app.app_context(), acting_as():
        group = Service(name=f"Gruppe {shop.tag}", category="kurs", duration_minutes=60, price=Decimal("10"),
                        capacity=3)
        db.session.add(group)
        db.session.commit()
        start = datetime(2033, 5, 5, 9, tzinfo=timezone.utc)
        ids = []
        for _ in range(3):
            booking = Booking(customer_id=shop.customer, service_id=group.id, start_at=start,
                              status_id=shop.status["confirmation"])
            db.session.add(booking)
            db.session.commit()
            ids.append(booking.id)
        group.capacity = 2
        db.session.commit()
        group_id = group.id
    try:
        with app.app_context(), acting_as():
            db.session.delete(db.session.get(Booking, ids[0]))
            db.session.commit()
            assert db.session.get(Booking, ids[0]) is None
    finally:
        with app.app_context(), acting_as():
            db.session.rollback()
            db.session.execute(sa.delete(Booking).where(Booking.id.in_(ids)))
            db.session.delete(db.session.get(Service, group_id))
            db.session.commit()


# --- the API's bad input ---------------------------------------------------------------------
def test_the_invoice_api_refuses_a_missing_customer_and_huge_numbers(app, shop, world):
    headers, client = bearer(api_token(app, "manager")), app.test_client()
    invoice_id = _draft(shop)
    for body in ({"customer": 99999999999}, {"customer": 987654321}, {"customer": "abc"}):
        response = client.post("/api/v1/invoice/", json=body, headers=headers)
        assert response.status_code in (400, 422), (body, response.status_code)
    for extra in ({"position": 99999999999}, {"unit_price": "1e20"}, {"quantity": "-1e12"}):
        body = {"invoice": invoice_id, "description": "x", "unit_price": "1", "quantity": "1", "vat_rate": "19",
                "position": 2, **extra}
        response = client.post("/api/v1/invoice_line/", json=body, headers=headers)
        assert response.status_code in (400, 422), (extra, response.status_code)
    with app.app_context():
        assert len(db.session.get(Invoice, invoice_id).lines) == 1
    # every API: a related id that is no number is a 400, not FAB's 500 (PostgreSQL refused the SELECT)
    response = client.post("/api/v1/booking/", json={"customer": "abc"}, headers=headers)
    assert response.status_code in (400, 422)


def test_a_history_revert_does_not_bring_back_a_discount_without_its_points(shop):
    from app.services.history import revert_row, version_cls

    program = shop.program(threshold=100, kind="percent", value="10")
    _earn(shop, 100, program)
    pk = shop.booking(price="49.00")
    line_id = _redeem_booking(shop, pk, program)
    with shop.app.app_context(), acting_as():
        undo_booking_reward(db.session, db.session.get(BonusTransaction, line_id))
        db.session.commit()
        versions = version_cls(Booking)
        discounted = db.session.scalar(sa.select(versions.transaction_id).where(
            versions.id == pk, versions.price == Decimal("44.10")))
        with pytest.raises(ValueError, match="hängt an einer Bonusprämie"):
            revert_row(db.session, db.session.get(Booking, pk), discounted)
        db.session.rollback()
    assert _price(shop, pk) == Decimal("49.00") and shop.balance(program) == 100
