"""Umsatzbonus and Empfehlungsbonus: points are earned when a paid booking is completed and
taken back when it no longer is (on every path, never twice, also under concurrency); the
balance is the ledger's sum after any sequence of earn / redeem / revert; rewards are
redeemed on an invoice draft (discount lines per VAT rate) or a booking (lower price) and
come back when that is undone, cancelled or cancelled by Storno; a referral pays once."""
from __future__ import annotations

import random
import threading
from datetime import datetime, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import db
from app.jobs.base import acting_as
from app.models import (
    BonusProgram,
    BonusTransaction,
    Booking,
    BookingStatus,
    Customer,
    CustomerMerge,
    Invoice,
    InvoiceLine,
    PassCardType,
    Service,
)
from app.services.bonus import (
    BonusRefused,
    balance,
    redeem_on_booking,
    redeem_on_invoice,
    split_by_rate,
    undo_booking_reward,
)
from app.services.cards import sell_card
from app.services.duplicates import merge_customers
from app.services.invoices import cancel_invoice, issue_invoice
from app.services.status import change_status
from tests.conftest import distinct_start
from tests.helpers_invoices import delete_invoices


def _start() -> datetime:
    return distinct_start(datetime(2032, 2, 2, 8, tzinfo=timezone.utc))


class Shop:
    """One test's own customers, services, programs and bookings; removed afterwards."""

    def __init__(self, app):
        self.app = app
        self.tag = uuid4().hex[:10]
        self.customers: list[int] = []
        self.programs: list[int] = []
        self.card_types: list[int] = []
        with app.app_context(), acting_as():
            self.status = {kind: db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == kind)
                                                   .order_by(BookingStatus.position))
                           for kind in ("confirmation", "cancellation", "completed", "no_show")}
            cut = Service(name=f"Schnitt {self.tag}", category="einzelstunde", duration_minutes=30,
                          price=Decimal("49.00"))
            course = Service(name=f"Kurs {self.tag}", category="kurs", duration_minutes=60, price=Decimal("20.00"))
            db.session.add_all([cut, course])
            db.session.commit()
            self.cut, self.course = cut.id, course.id
        self.customer = self.new_customer()

    def new_customer(self, referred_by: int | None = None, **fields) -> int:
        with self.app.app_context(), acting_as():
            number = len(self.customers)
            customer = Customer(first_name=fields.pop("first_name", "Bea"),
                                last_name=fields.pop("last_name", f"Bonus {self.tag} {number}"),
                                referred_by_id=referred_by, **fields)
            db.session.add(customer)
            db.session.commit()
            self.customers.append(customer.id)
            return customer.id

    def program(self, per_euro: str = "1", threshold: int = 100, kind: str = "percent", value: str = "10",
                services: tuple[int, ...] | None = None, category: str | None = None, referral: int = 0) -> int:
        with self.app.app_context(), acting_as():
            program = BonusProgram(name=f"Punkte {self.tag} {len(self.programs)}", points_per_euro=Decimal(per_euro),
                                   threshold=threshold, reward_name="Rabatt", reward_kind=kind,
                                   reward_value=Decimal(value), referral_points=referral, category=category,
                                   active=True)
            program.services = [db.session.get(Service, pk) for pk in (services if services is not None
                                                                         else (self.cut, self.course))]
            db.session.add(program)
            db.session.commit()
            self.programs.append(program.id)
            return program.id

    def booking(self, kind: str = "confirmation", service: int | None = None, customer: int | None = None,
                price: str | None = None) -> int:
        with self.app.app_context(), acting_as():
            booking = Booking(customer_id=customer or self.customer, service_id=service or self.cut,
                              start_at=_start(), status_id=self.status[kind],
                              price=Decimal(price) if price is not None else None)
            if kind == "cancellation":
                booking.cancel_reason = "abgesagt"
            db.session.add(booking)
            db.session.commit()
            return booking.id

    def set_status(self, pk: int, kind: str, via: str = "change_status") -> None:
        with self.app.app_context(), acting_as():
            booking = db.session.get(Booking, pk)
            if via == "change_status":
                change_status(db.session, booking, db.session.get(BookingStatus, self.status[kind]),
                              "Kund:in hat abgesagt" if kind == "cancellation" else None)
            else:
                booking.status_id = self.status[kind]
                if kind == "cancellation":
                    booking.cancel_reason = "abgesagt"
            db.session.commit()

    def balance(self, program: int, customer: int | None = None) -> int:
        with self.app.app_context():
            return balance(db.session, customer or self.customer, program)

    def ledger(self, customer: int | None = None) -> list[tuple[str, int, int | None]]:
        """(kind, points, booking_id) of the customer's lines, in order."""
        with self.app.app_context():
            return [tuple(row) for row in db.session.execute(
                sa.select(BonusTransaction.kind, BonusTransaction.points, BonusTransaction.booking_id)
                .where(BonusTransaction.customer_id == (customer or self.customer))
                .order_by(BonusTransaction.id))]

    def standing_earns(self, booking: int) -> int:
        with self.app.app_context():
            reversal = sa.orm.aliased(BonusTransaction)
            return db.session.scalar(sa.select(sa.func.count()).select_from(BonusTransaction).where(
                BonusTransaction.booking_id == booking, BonusTransaction.kind == "earn",
                ~sa.exists().where(reversal.reverses_id == BonusTransaction.id)))

    def remove(self) -> None:
        with self.app.app_context(), acting_as():
            db.session.rollback()
            ids = self.customers
            delete_invoices(db.session, list(db.session.scalars(
                sa.select(Invoice.id).where(Invoice.customer_id.in_(ids)))))
            db.session.execute(sa.update(BonusTransaction).where(BonusTransaction.customer_id.in_(ids))
                               .values(reverses_id=None))
            db.session.execute(sa.delete(BonusTransaction).where(
                sa.or_(BonusTransaction.customer_id.in_(ids), BonusTransaction.program_id.in_(self.programs or [0]))))
            db.session.execute(sa.delete(CustomerMerge).where(CustomerMerge.kept_id.in_(ids)))
            for booking in db.session.scalars(sa.select(Booking).where(Booking.customer_id.in_(ids))):
                db.session.delete(booking)
            db.session.flush()
            for customer in db.session.scalars(sa.select(Customer).where(Customer.id.in_(ids))):
                from app.models import PassCard
                for card in db.session.scalars(sa.select(PassCard).where(PassCard.customer_id == customer.id)):
                    db.session.delete(card)
            db.session.flush()
            for pk in self.card_types:
                db.session.delete(db.session.get(PassCardType, pk))
            for pk in self.programs:
                db.session.delete(db.session.get(BonusProgram, pk))
            db.session.flush()
            db.session.execute(sa.update(Customer).where(Customer.id.in_(ids)).values(referred_by_id=None))
            for customer in db.session.scalars(sa.select(Customer).where(Customer.id.in_(ids))):
                db.session.delete(customer)
            for pk in (self.cut, self.course):
                db.session.delete(db.session.get(Service, pk))
            db.session.commit()


# --- earning ------------------------------------------------------------------
def test_completing_a_paid_booking_earns_the_points_once(shop):
    program = shop.program(per_euro="1.5")
    pk = shop.booking(price="49.99")
    assert shop.balance(program) == 0
    shop.set_status(pk, "completed")
    assert shop.ledger() == [("earn", 74, pk)]  # ⌊49.99 × 1.5⌋
    shop.set_status(pk, "completed", via="plain")  # the same status again: nothing new
    assert shop.ledger() == [("earn", 74, pk)] and shop.balance(program) == 74


def test_leaving_completed_takes_the_points_back_and_completing_again_earns_anew(shop):
    program = shop.program()
    pk = shop.booking()
    shop.set_status(pk, "completed")
    shop.set_status(pk, "confirmation")
    assert shop.ledger() == [("earn", 49, pk), ("correction", -49, pk)]
    assert shop.balance(program) == 0 and shop.standing_earns(pk) == 0
    shop.set_status(pk, "completed", via="plain")
    assert shop.balance(program) == 49 and shop.standing_earns(pk) == 1
    with shop.app.app_context():  # each correction names the earn it takes back
        corrections = db.session.scalars(sa.select(BonusTransaction).where(
            BonusTransaction.customer_id == shop.customer, BonusTransaction.kind == "correction")).all()
        assert [c.reverses.kind for c in corrections] == ["earn"]
        assert all(c.created_by_id is not None for c in corrections)


def test_a_deleted_completed_booking_gives_its_points_back(shop):
    program = shop.program()
    pk = shop.booking("completed")
    assert shop.balance(program) == 49
    with shop.app.app_context(), acting_as():
        db.session.delete(db.session.get(Booking, pk))
        db.session.commit()
    assert shop.balance(program) == 0
    assert [kind for kind, _points, _booking in shop.ledger()] == ["earn", "correction"]


def test_no_points_for_free_card_paid_or_uncovered_bookings(shop):
    program = shop.program(services=(shop.cut,))
    free = shop.booking("completed", price="0")
    uncovered = shop.booking("completed", service=shop.course)
    with shop.app.app_context(), acting_as():  # a pass card pays for the cut: no revenue, no points
        card_type = PassCardType(name=f"Karte {shop.tag}", units=5, price=Decimal("200"), category=None)
        card_type.services = [db.session.get(Service, shop.cut)]
        db.session.add(card_type)
        db.session.flush()
        shop.card_types.append(card_type.id)
        sell_card(db.session, card_type, db.session.get(Customer, shop.customer))
        db.session.commit()
    with_card = shop.booking()
    shop.set_status(with_card, "completed")
    assert shop.ledger() == [] and shop.balance(program) == 0
    assert {free, uncovered, with_card}


def test_which_programs_cover_a_booking(shop):
    listed = shop.program(services=(shop.course,))
    by_category = shop.program(services=(), category="einzelstunde")
    everything = shop.program(services=())
    shop.booking("completed")  # a cut: einzelstunde
    assert (shop.balance(listed), shop.balance(by_category), shop.balance(everything)) == (0, 49, 49)
    shop.booking("completed", service=shop.course)
    assert (shop.balance(listed), shop.balance(by_category), shop.balance(everything)) == (20, 49, 69)


def test_an_inactive_program_earns_nothing_but_still_takes_back(shop):
    program = shop.program()
    pk = shop.booking("completed")
    with shop.app.app_context(), acting_as():
        db.session.get(BonusProgram, program).active = False
        db.session.commit()
    shop.booking("completed")
    assert shop.balance(program) == 49
    shop.set_status(pk, "cancellation")
    assert shop.balance(program) == 0


def test_balance_is_the_ledger_sum_after_any_sequence(shop):
    """Random earn / revert / redeem / undo / cancel steps: after each step every booking
    has a standing earn exactly when it is completed and paid, no line is taken back twice,
    the balance is the ledger's sum (it may fall below 0 when points already redeemed are
    taken back: the ledger tells the truth, the next visits fill it up)."""
    program = shop.program(threshold=40, kind="fixed", value="5")
    bookings = [shop.booking(price=str(20 + 7 * i)) for i in range(4)]
    rng = random.Random(20261204)
    for _step in range(40):
        pk = rng.choice(bookings)
        action = rng.choice(["completed", "confirmation", "cancellation", "no_show", "redeem", "undo"])
        with shop.app.app_context(), acting_as():
            booking = db.session.get(Booking, pk)
            try:
                if action == "redeem":
                    redeem_on_booking(db.session, booking, db.session.get(BonusProgram, program))
                elif action == "undo":
                    line = db.session.scalars(sa.select(BonusTransaction).where(
                        BonusTransaction.booking_id == pk, BonusTransaction.kind == "redeem")
                        .order_by(BonusTransaction.id.desc())).first()
                    if line is not None:
                        undo_booking_reward(db.session, line)
                else:
                    change_status(db.session, booking, db.session.get(BookingStatus, shop.status[action]),
                                  "abgesagt" if action == "cancellation" else None)
                db.session.commit()
            except (BonusRefused, ValueError):
                db.session.rollback()
        with shop.app.app_context():
            lines = db.session.scalars(sa.select(BonusTransaction).where(
                BonusTransaction.customer_id == shop.customer)).all()
            total = sum(line.points for line in lines)
            assert balance(db.session, shop.customer, program) == total
            reversed_ids = [line.reverses_id for line in lines if line.reverses_id is not None]
            assert len(reversed_ids) == len(set(reversed_ids))
            for booking_id in bookings:
                booking = db.session.get(Booking, booking_id)
                paid = booking.status.kind == "completed" and (booking.price or 0) > 0
                assert shop.standing_earns(booking_id) == (1 if paid else 0), (action, booking_id)
                if booking.status.kind == "cancellation":  # a cancelled booking holds no reward
                    standing = [line for line in lines if line.booking_id == booking_id and line.kind == "redeem"
                                and line.id not in reversed_ids]
                    assert standing == []


# --- redeeming ------------------------------------------------------------------
def _draft(shop, lines: tuple[tuple[str, str], ...] = (("49.00", "19"),)) -> int:
    with shop.app.app_context(), acting_as():
        invoice = Invoice(customer_id=shop.customer)
        invoice.lines = [InvoiceLine(position=i + 1, description=f"Leistung {i}", quantity=Decimal("1"),
                                     unit_price=Decimal(price), vat_rate=Decimal(rate), gross_pricing=True)
                         for i, (price, rate) in enumerate(lines)]
        db.session.add(invoice)
        db.session.commit()
        return invoice.id


def _earn(shop, points: int, program: int) -> None:
    with shop.app.app_context(), acting_as():
        db.session.add(BonusTransaction(customer_id=shop.customer, program_id=program, kind="earn",
                                        points=points, reason="Startguthaben"))
        db.session.commit()


def _discounts(shop, invoice_id: int) -> list[tuple[Decimal, Decimal]]:
    with shop.app.app_context():
        return [(Decimal(rate).normalize(), Decimal(price)) for rate, price in db.session.execute(
            sa.select(InvoiceLine.vat_rate, InvoiceLine.unit_price).where(
                InvoiceLine.invoice_id == invoice_id, InvoiceLine.bonus_transaction_id.is_not(None))
            .order_by(InvoiceLine.vat_rate))]


def test_a_percent_reward_on_an_invoice_is_split_by_vat_rate(shop):
    program = shop.program(threshold=100, kind="percent", value="10")
    _earn(shop, 130, program)
    invoice_id = _draft(shop, (("49.00", "19"), ("12.99", "7"), ("20.00", "19")))
    with shop.app.app_context(), acting_as():
        redeem_on_invoice(db.session, db.session.get(Invoice, invoice_id), db.session.get(BonusProgram, program))
        db.session.commit()
        invoice = db.session.get(Invoice, invoice_id)
        assert invoice.total_gross == Decimal("81.99") - Decimal("8.20")
    assert _discounts(shop, invoice_id) == [(Decimal("7"), Decimal("-1.30")), (Decimal("19"), Decimal("-6.90"))]
    assert shop.balance(program) == 30


def test_a_fixed_reward_is_at_most_the_invoice_total(shop):
    program = shop.program(threshold=100, kind="fixed", value="55")
    _earn(shop, 100, program)
    invoice_id = _draft(shop, (("30.00", "19"), ("10.00", "7")))
    with shop.app.app_context(), acting_as():
        redeem_on_invoice(db.session, db.session.get(Invoice, invoice_id), db.session.get(BonusProgram, program))
        db.session.commit()
        assert db.session.get(Invoice, invoice_id).total_gross == Decimal("0.00")
    assert _discounts(shop, invoice_id) == [(Decimal("7"), Decimal("-10.00")), (Decimal("19"), Decimal("-30.00"))]


def test_split_by_rate_keeps_every_cent():
    shares = split_by_rate(Decimal("10.00"), {Decimal("19"): Decimal("33.33"), Decimal("7"): Decimal("33.33"),
                                              Decimal("0"): Decimal("33.34")})
    assert sum(shares.values()) == Decimal("10.00")
    assert split_by_rate(Decimal("5"), {}) == {} and split_by_rate(Decimal("0"), {Decimal("19"): Decimal("9")}) == {}


def test_not_enough_points_or_a_second_reward_is_refused_and_nothing_stored(shop):
    program = shop.program(threshold=100)
    _earn(shop, 99, program)
    invoice_id = _draft(shop)
    with shop.app.app_context(), acting_as():
        with pytest.raises(BonusRefused, match="fehlen noch 1 Punkte"):
            redeem_on_invoice(db.session, db.session.get(Invoice, invoice_id), db.session.get(BonusProgram, program))
        db.session.rollback()
    assert shop.balance(program) == 99 and _discounts(shop, invoice_id) == []
    _earn(shop, 200, program)
    with shop.app.app_context(), acting_as():
        redeem_on_invoice(db.session, db.session.get(Invoice, invoice_id), db.session.get(BonusProgram, program))
        db.session.commit()
        with pytest.raises(BonusRefused, match="bereits eine Prämie"):
            redeem_on_invoice(db.session, db.session.get(Invoice, invoice_id), db.session.get(BonusProgram, program))
        db.session.rollback()
    assert shop.balance(program) == 199 and len(_discounts(shop, invoice_id)) == 1


def test_removing_the_discount_or_the_draft_gives_the_points_back(shop):
    program = shop.program(threshold=100)
    _earn(shop, 250, program)
    first, second = _draft(shop, (("10", "19"), ("10", "7"))), _draft(shop)
    with shop.app.app_context(), acting_as():
        for pk in (first, second):
            redeem_on_invoice(db.session, db.session.get(Invoice, pk), db.session.get(BonusProgram, program))
        db.session.commit()
    assert shop.balance(program) == 50
    with shop.app.app_context(), acting_as():  # one of the two discount lines: the whole reward goes
        line = db.session.scalars(sa.select(InvoiceLine).where(
            InvoiceLine.invoice_id == first, InvoiceLine.bonus_transaction_id.is_not(None))).first()
        db.session.delete(line)
        db.session.commit()
    assert _discounts(shop, first) == [] and shop.balance(program) == 150
    with shop.app.app_context(), acting_as():
        db.session.delete(db.session.get(Invoice, second))
        db.session.commit()
    assert shop.balance(program) == 250


def test_an_issued_discount_stays_and_a_storno_gives_the_points_back(shop):
    program = shop.program(threshold=100)
    _earn(shop, 100, program)
    invoice_id = _draft(shop)
    with shop.app.app_context(), acting_as():
        invoice = db.session.get(Invoice, invoice_id)
        redeem_on_invoice(db.session, invoice, db.session.get(BonusProgram, program))
        issue_invoice(db.session, invoice)
        db.session.commit()
        line = db.session.scalars(sa.select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id,
                                                               InvoiceLine.bonus_transaction_id.is_not(None))).one()
        db.session.delete(line)
        with pytest.raises(ValueError, match="Storno"):
            db.session.flush()
        db.session.rollback()
    assert shop.balance(program) == 0
    with shop.app.app_context(), acting_as():
        cancel_invoice(db.session, db.session.get(Invoice, invoice_id))
        db.session.commit()
    assert shop.balance(program) == 100
    with shop.app.app_context(), acting_as():  # the Storno's own lines carry no reward
        assert db.session.scalar(sa.select(sa.func.count()).select_from(InvoiceLine).join(Invoice).where(
            Invoice.cancels_id == invoice_id, InvoiceLine.bonus_transaction_id.is_not(None))) == 0


def test_a_reward_on_a_booking_lowers_its_price_and_comes_back_on_cancellation(shop):
    program = shop.program(threshold=100, kind="percent", value="10")
    _earn(shop, 100, program)
    pk = shop.booking(price="49.00")
    with shop.app.app_context(), acting_as():
        redeem_on_booking(db.session, db.session.get(Booking, pk), db.session.get(BonusProgram, program))
        db.session.commit()
        assert db.session.get(Booking, pk).price == Decimal("44.10")
    assert shop.balance(program) == 0
    shop.set_status(pk, "completed")  # earns on what was paid
    assert shop.balance(program) == 44
    shop.set_status(pk, "cancellation")
    with shop.app.app_context():
        assert db.session.get(Booking, pk).price == Decimal("49.00")
    assert shop.balance(program) == 100


def test_undoing_a_booking_reward_once(shop):
    program = shop.program(threshold=50, kind="fixed", value="60")
    _earn(shop, 60, program)
    pk = shop.booking(price="49.00")
    with shop.app.app_context(), acting_as():
        line = redeem_on_booking(db.session, db.session.get(Booking, pk), db.session.get(BonusProgram, program))
        db.session.commit()
        assert db.session.get(Booking, pk).price == Decimal("0.00") and line.discount == Decimal("49.00")
        line_id = line.id
    with shop.app.app_context(), acting_as():
        undo_booking_reward(db.session, db.session.get(BonusTransaction, line_id))
        db.session.commit()
        assert db.session.get(Booking, pk).price == Decimal("49.00")
        with pytest.raises(BonusRefused, match="bereits zurückgenommen"):
            undo_booking_reward(db.session, db.session.get(BonusTransaction, line_id))
        db.session.rollback()
    assert shop.balance(program) == 60


def test_the_database_refuses_a_second_reversal_and_wrong_signs(shop):
    program = shop.program()
    pk = shop.booking("completed")
    with shop.app.app_context(), acting_as():
        earn = db.session.scalars(sa.select(BonusTransaction).where(BonusTransaction.booking_id == pk)).one()
        values = dict(customer_id=shop.customer, program_id=program, points=-earn.points, reason="x",
                      created_at=earn.created_at)
        db.session.execute(sa.insert(BonusTransaction).values(kind="correction", reverses_id=earn.id, **values))
        with pytest.raises(IntegrityError):
            db.session.execute(sa.insert(BonusTransaction).values(kind="correction", reverses_id=earn.id, **values))
        db.session.rollback()
        with pytest.raises(IntegrityError):  # a redemption with positive points
            db.session.execute(sa.insert(BonusTransaction).values(
                kind="redeem", customer_id=shop.customer, program_id=program, points=5, reason="x",
                created_at=earn.created_at))
        db.session.rollback()


# --- referral bonus ---------------------------------------------------------------
def test_a_referral_pays_once_on_the_first_completed_booking(shop):
    program = shop.program(referral=50)
    newcomer = shop.new_customer(referred_by=shop.customer)
    first = shop.booking(customer=newcomer)
    assert shop.balance(program) == 0
    shop.set_status(first, "completed")
    assert shop.balance(program) == 50
    shop.set_status(first, "confirmation")  # taken back and done again: still once
    shop.set_status(first, "completed")
    shop.booking("completed", customer=newcomer)
    assert [line for line in shop.ledger() if line[0] == "referral"] == [("referral", 50, None)]
    assert shop.balance(program) == 50
    assert shop.balance(program, newcomer) == 49 + 49  # the newcomer earns their own points


def test_no_referral_for_a_customer_with_earlier_visits_or_a_self_referral(shop):
    program = shop.program(referral=50)
    regular = shop.new_customer()
    shop.booking("completed", customer=regular)
    with shop.app.app_context(), acting_as():  # referred only after the first visit
        db.session.get(Customer, regular).referred_by_id = shop.customer
        db.session.commit()
    shop.booking("completed", customer=regular)
    assert shop.balance(program) == 0
    with shop.app.app_context(), acting_as():
        db.session.get(Customer, shop.customer).referred_by_id = shop.customer
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_a_merged_duplicate_does_not_pay_the_referral_twice(shop):
    program = shop.program(referral=50)
    kept = shop.new_customer(referred_by=shop.customer, first_name="Nina", last_name=f"Neu {shop.tag}")
    duplicate = shop.new_customer(referred_by=shop.customer, first_name="Nina", last_name=f"Neu {shop.tag}")
    shop.booking("completed", customer=kept)
    shop.booking("completed", customer=duplicate)
    assert shop.balance(program) == 100  # two records: the shop could not know yet
    with shop.app.app_context(), acting_as():
        merge_customers(db.session, kept, duplicate)
        db.session.commit()
    shop.customers.remove(duplicate)
    assert shop.balance(program) == 50
    reasons = [kind for kind, _points, _booking in shop.ledger()]
    assert reasons.count("referral") == 2 and reasons.count("correction") == 1


# --- concurrency ----------------------------------------------------------------
def _in_threads(app, work: list) -> list:
    """Run each callable(session) in its own thread and app context, all at once; SQLite's
    'database is locked' is retried like a user would."""
    errors: list = []
    barrier = threading.Barrier(len(work))

    def run(fn):
        try:
            with app.app_context(), acting_as():
                barrier.wait(timeout=30)
                for attempt in range(40):
                    try:
                        fn(db.session)
                        db.session.commit()
                        return
                    except OperationalError:
                        db.session.rollback()
                        if db.engine.dialect.name != "sqlite" or attempt == 39:
                            raise
                        threading.Event().wait(0.05)
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            with app.app_context():
                db.session.remove()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def _complete(pk: int, status_id: int):
    def fn(session):
        session.get(Booking, pk).status_id = status_id
    return fn


def test_one_booking_completed_twice_at_once_earns_once(app, shop):
    program = shop.program()
    pk = shop.booking()
    errors = _in_threads(app, [_complete(pk, shop.status["completed"])] * 4)
    assert errors == []
    assert shop.standing_earns(pk) == 1 and shop.balance(program) == 49


def test_two_first_bookings_completed_at_once_pay_one_referral(app, shop):
    program = shop.program(referral=50)
    newcomer = shop.new_customer(referred_by=shop.customer)
    bookings = [shop.booking(customer=newcomer) for _ in range(3)]
    errors = _in_threads(app, [_complete(pk, shop.status["completed"]) for pk in bookings])
    assert errors == []
    assert shop.balance(program) == 50 and shop.balance(program, newcomer) == 3 * 49


def test_the_same_points_redeemed_twice_at_once_only_once(app, shop):
    program = shop.program(threshold=100)
    _earn(shop, 150, program)
    drafts = [_draft(shop) for _ in range(3)]

    def redeem(pk):
        def fn(session):
            redeem_on_invoice(session, session.get(Invoice, pk), session.get(BonusProgram, program))
        return fn

    errors = _in_threads(app, [redeem(pk) for pk in drafts])
    assert len(errors) == 2 and all(isinstance(exc, BonusRefused) for exc in errors)
    assert shop.balance(program) == 50
    assert sum(1 for pk in drafts if _discounts(shop, pk)) == 1


def test_a_booking_takes_only_a_reward_of_a_program_that_covers_its_service(shop):
    program = shop.program(threshold=10, services=(shop.course,))
    _earn(shop, 10, program)
    pk = shop.booking(price="49.00")  # a cut: not covered
    with shop.app.app_context(), acting_as():
        with pytest.raises(BonusRefused, match="gilt nicht für Schnitt"):
            redeem_on_booking(db.session, db.session.get(Booking, pk), db.session.get(BonusProgram, program))
        db.session.rollback()
        assert db.session.get(Booking, pk).price == Decimal("49.00")
    assert shop.balance(program) == 10
