"""Mehrfachkarten: a unit is redeemed when a covered booking is completed (or a no-show, if
the card type says so) and given back when the booking leaves that status — on every path
(change_status, plain attribute change like the API, history revert, deletion), never
twice, never below zero, also under concurrency; selling a card; renewal reminders."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy_continuum import version_class

from app.extensions import db
from app.jobs.base import acting_as
from app.models import (
    Booking,
    BookingStatus,
    Customer,
    NotificationLog,
    PassCard,
    PassCardType,
    PassRedemption,
    Service,
    Setting,
)
from app.models.types import utcnow
from app.services.cards import cards_to_renew, queue_card_renewals, renewal_threshold, sell_card
from app.services.history import revert_row
from app.services.notifications import SEND_JOB
from app.services.status import change_status
from tests.conftest import distinct_start
from tests.helpers_perm import api_token, bearer


def _start() -> datetime:
    return distinct_start(datetime(2031, 1, 6, 8, tzinfo=timezone.utc))


class Deck:
    """One test's own customer, services, card types and bookings; removed afterwards."""

    def __init__(self, app):
        self.app = app
        self.tag = uuid4().hex[:10]
        with app.app_context(), acting_as():
            self.status = {kind: db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == kind)
                                                   .order_by(BookingStatus.position))
                           for kind in ("confirmation", "cancellation", "completed", "no_show")}
            customer = Customer(first_name="Karla", last_name=f"Karte {self.tag}", email=f"k{self.tag}@example.org")
            covered = Service(name=f"Kurs {self.tag}", category="kurs", duration_minutes=45, price=Decimal("20"))
            listed = Service(name=f"Seminar {self.tag}", category="seminar", duration_minutes=45, price=Decimal("20"))
            other = Service(name=f"Anders {self.tag}", category="gruppe", duration_minutes=45, price=Decimal("20"))
            db.session.add_all([customer, covered, listed, other])
            db.session.commit()
            self.customer, self.covered, self.listed, self.other = customer.id, covered.id, listed.id, other.id
        self.types: list[int] = []

    def card_type(self, units: int = 3, validity_days: int | None = 365, category: str | None = "kurs",
                  services: tuple[int, ...] = (), no_show_costs_unit: bool = True) -> int:
        with self.app.app_context(), acting_as():
            card_type = PassCardType(name=f"Karte {self.tag} {len(self.types)}", units=units,
                                     validity_days=validity_days, price=Decimal("90.00"), category=category,
                                     no_show_costs_unit=no_show_costs_unit)
            card_type.services = [db.session.get(Service, pk) for pk in services]
            db.session.add(card_type)
            db.session.commit()
            self.types.append(card_type.id)
            return card_type.id

    def card(self, type_id: int, purchased_days_ago: int = 10, units_used: int = 0, customer: int | None = None,
             expires_at: datetime | None = None) -> int:
        with self.app.app_context(), acting_as():
            card = sell_card(db.session, db.session.get(PassCardType, type_id),
                             db.session.get(Customer, customer or self.customer),
                             purchased_at=utcnow() - timedelta(days=purchased_days_ago))
            card.units_used = units_used
            if expires_at is not None:
                card.expires_at = expires_at
            db.session.commit()
            return card.id

    def booking(self, kind: str = "confirmation", service: int | None = None) -> int:
        with self.app.app_context(), acting_as():
            booking = Booking(customer_id=self.customer, service_id=service or self.covered,
                              start_at=_start(), status_id=self.status[kind])
            db.session.add(booking)
            db.session.commit()
            return booking.id

    def set_status(self, pk: int, kind: str, via: str = "change_status") -> None:
        with self.app.app_context(), acting_as():
            booking = db.session.get(Booking, pk)
            if via == "change_status":
                change_status(db.session, booking, db.session.get(BookingStatus, self.status[kind]),
                              "Kund:in hat abgesagt" if kind == "cancellation" else None)
            else:  # a plain foreign key change, the way a bulk job or a script writes it
                booking.status_id = self.status[kind]
                if kind == "cancellation":
                    booking.cancel_reason = "abgesagt"
            db.session.commit()

    def used(self, card: int) -> int:
        with self.app.app_context():
            return db.session.scalar(sa.select(PassCard.units_used).where(PassCard.id == card))

    def redemptions(self, booking: int | None = None) -> list[tuple[int, int]]:
        """(card_id, booking_id) of this deck's redemptions (or one booking's)."""
        with self.app.app_context():
            stmt = sa.select(PassRedemption.card_id, PassRedemption.booking_id).join(
                PassCard, PassCard.id == PassRedemption.card_id).where(PassCard.customer_id == self.customer)
            if booking is not None:
                stmt = stmt.where(PassRedemption.booking_id == booking)
            return [tuple(row) for row in db.session.execute(stmt.order_by(PassRedemption.id))]

    def remove(self) -> None:
        with self.app.app_context(), acting_as():
            db.session.rollback()
            db.session.execute(sa.delete(NotificationLog).where(NotificationLog.customer_id == self.customer))
            for booking in db.session.scalars(sa.select(Booking).where(Booking.customer_id == self.customer)):
                db.session.delete(booking)
            db.session.flush()
            for card in db.session.scalars(sa.select(PassCard).where(PassCard.type_id.in_(self.types or [0]))):
                db.session.delete(card)
            db.session.flush()
            for pk in self.types:
                db.session.delete(db.session.get(PassCardType, pk))
            for model, pk in ((Service, self.covered), (Service, self.listed), (Service, self.other),
                              (Customer, self.customer)):
                db.session.delete(db.session.get(model, pk))
            db.session.commit()


@pytest.fixture()
def deck(app, world):
    made = Deck(app)
    try:
        yield made
    finally:
        made.remove()


def test_completion_redeems_from_the_oldest_valid_card_and_cancelling_gives_it_back(deck):
    kind = deck.card_type(units=3)
    expired = deck.card(kind, purchased_days_ago=400, expires_at=utcnow() - timedelta(days=1))
    older = deck.card(kind, purchased_days_ago=30)
    newer = deck.card(kind, purchased_days_ago=5)
    pk = deck.booking()
    assert deck.redemptions() == []

    deck.set_status(pk, "completed")
    assert deck.redemptions() == [(older, pk)]
    assert (deck.used(expired), deck.used(older), deck.used(newer)) == (0, 1, 0)

    # completing again or touching the booking otherwise never counts twice
    deck.set_status(pk, "completed")
    with deck.app.app_context(), acting_as():
        db.session.get(Booking, pk).comment = "war gut"
        db.session.commit()
    assert deck.redemptions() == [(older, pk)] and deck.used(older) == 1

    deck.set_status(pk, "cancellation")
    assert deck.redemptions() == [] and deck.used(older) == 1 - 1

    deck.set_status(pk, "completed")
    assert deck.redemptions() == [(older, pk)] and deck.used(older) == 1


def test_a_used_up_card_passes_to_the_next_and_without_units_nothing_is_redeemed(deck):
    kind = deck.card_type(units=1)
    first = deck.card(kind, purchased_days_ago=20)
    second = deck.card(kind, purchased_days_ago=10)
    a, b, c = deck.booking(), deck.booking(), deck.booking()
    deck.set_status(a, "completed")
    deck.set_status(b, "completed")
    deck.set_status(c, "completed")
    assert deck.redemptions() == [(first, a), (second, b)]
    assert (deck.used(first), deck.used(second)) == (1, 1)
    # c is completed without a unit; cancelling a frees a unit, c does not take it later by itself
    deck.set_status(a, "cancellation")
    assert deck.redemptions() == [(second, b)] and deck.used(first) == 0


def test_expired_cards_redeem_nothing(deck):
    kind = deck.card_type(units=5)
    card = deck.card(kind, purchased_days_ago=100, expires_at=utcnow() - timedelta(minutes=1))
    pk = deck.booking()
    deck.set_status(pk, "completed")
    assert deck.redemptions() == [] and deck.used(card) == 0


def test_coverage_by_listed_services_or_else_by_category(deck):
    by_category = deck.card_type(category="kurs")  # no services: every "kurs" service
    by_list = deck.card_type(category="kurs", services=(deck.listed,))  # only the listed service
    category_card = deck.card(by_category, purchased_days_ago=10)
    list_card = deck.card(by_list, purchased_days_ago=20)  # older, but covers only `listed`

    on_covered = deck.booking(service=deck.covered)
    on_listed = deck.booking(service=deck.listed)
    on_other = deck.booking(service=deck.other)
    for pk in (on_covered, on_listed, on_other):
        deck.set_status(pk, "completed")
    assert deck.redemptions() == [(category_card, on_covered), (list_card, on_listed)]
    assert deck.redemptions(on_other) == []


def test_no_show_costs_a_unit_only_when_the_type_says_so(deck):
    free = deck.card_type(no_show_costs_unit=False)
    free_card = deck.card(free, purchased_days_ago=20)
    pk = deck.booking()
    deck.set_status(pk, "no_show")
    assert deck.redemptions() == []
    deck.set_status(pk, "completed")
    assert deck.redemptions() == [(free_card, pk)]
    deck.set_status(pk, "no_show")  # completed → no-show on a card where no-shows are free: back
    assert deck.redemptions() == [] and deck.used(free_card) == 0

    costly = deck.card_type(no_show_costs_unit=True)
    costly_card = deck.card(costly, purchased_days_ago=5)
    other = deck.booking()
    deck.set_status(other, "no_show")
    assert deck.redemptions(other) == [(costly_card, other)] and deck.used(costly_card) == 1


def test_every_path_follows_the_status_api_plain_change_revert_and_delete(app, deck):
    kind = deck.card_type(units=5)
    card = deck.card(kind)
    pk = deck.booking()

    # the REST API (PUT) of a manager
    token = api_token(app, "manager")
    response = app.test_client().put(f"/api/v1/booking/{pk}", headers=bearer(token),
                                     json={"status": deck.status["completed"]})
    assert response.status_code == 200, response.json
    assert deck.redemptions() == [(card, pk)] and deck.used(card) == 1

    # a plain foreign key change back to confirmed gives the unit back
    deck.set_status(pk, "confirmation", via="status_id")
    assert deck.redemptions() == [] and deck.used(card) == 0

    # a history revert to the completed version takes it again, a revert before it gives it back
    version = version_class(Booking)
    with app.app_context(), acting_as():
        rows = db.session.execute(sa.select(version.transaction_id, version.status_id)
                                  .where(version.id == pk).order_by(version.transaction_id)).all()
        completed_tx = next(tx for tx, status in rows if status == deck.status["completed"])
        confirmed_tx = rows[0][0]
        revert_row(db.session, db.session.get(Booking, pk), completed_tx)
        db.session.commit()
    assert deck.redemptions() == [(card, pk)] and deck.used(card) == 1
    with app.app_context(), acting_as():
        revert_row(db.session, db.session.get(Booking, pk), confirmed_tx)
        db.session.commit()
    assert deck.redemptions() == [] and deck.used(card) == 0

    # deleting a completed booking gives its unit back
    deck.set_status(pk, "completed", via="status_id")
    assert deck.used(card) == 1
    with app.app_context(), acting_as():
        db.session.delete(db.session.get(Booking, pk))
        db.session.commit()
    assert deck.redemptions() == [] and deck.used(card) == 0


def test_a_new_booking_stored_as_completed_redeems(deck):
    card = deck.card(deck.card_type(units=2))
    pk = deck.booking(kind="completed")
    assert deck.redemptions() == [(card, pk)] and deck.used(card) == 1


def test_the_database_refuses_units_below_zero_or_above_the_total_and_a_second_redemption(app, deck):
    card = deck.card(deck.card_type(units=2))
    pk = deck.booking(kind="completed")
    with app.app_context():
        for value in (-1, 3):
            with pytest.raises(IntegrityError):
                db.session.execute(sa.update(PassCard).where(PassCard.id == card).values(units_used=value))
            db.session.rollback()
        with pytest.raises(IntegrityError):
            db.session.execute(sa.insert(PassRedemption).values(card_id=card, booking_id=pk, units=1,
                                                                 redeemed_at=utcnow()))
        db.session.rollback()
    assert deck.used(card) == 1 and len(deck.redemptions()) == 1


def _complete_in_thread(app, pk: int, status_id: int, barrier: threading.Barrier, errors: list) -> None:
    try:
        with app.app_context(), acting_as():
            assert db.session.get(Booking, pk).status_id  # loaded before the race starts
            barrier.wait(timeout=30)
            for attempt in range(20):  # SQLite: a writer may find the file locked; try again
                try:
                    booking = db.session.get(Booking, pk)
                    booking.status_id = status_id
                    db.session.commit()
                    return
                except OperationalError:
                    db.session.rollback()
                    if db.engine.dialect.name != "sqlite" or attempt == 19:
                        raise
                    threading.Event().wait(0.05)
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        with app.app_context():
            db.session.remove()


def _race(app, targets: list[int], status_id: int) -> list:
    errors: list = []
    barrier = threading.Barrier(len(targets))
    threads = [threading.Thread(target=_complete_in_thread, args=(app, pk, status_id, barrier, errors))
               for pk in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_ten_concurrent_completions_against_three_units_redeem_exactly_three(app, deck):
    card = deck.card(deck.card_type(units=3))
    bookings = [deck.booking() for _ in range(10)]
    errors = _race(app, bookings, deck.status["completed"])
    assert errors == []
    redeemed = deck.redemptions()
    assert len(redeemed) == 3 and {c for c, _ in redeemed} == {card}
    assert len({b for _, b in redeemed}) == 3 and deck.used(card) == 3
    with app.app_context():
        completed = db.session.scalar(sa.select(sa.func.count()).select_from(Booking).where(
            Booking.id.in_(bookings), Booking.status_id == deck.status["completed"]))
    assert completed == 10


def test_the_same_booking_completed_twice_at_once_redeems_once(app, deck):
    card = deck.card(deck.card_type(units=5))
    pk = deck.booking()
    errors = _race(app, [pk, pk], deck.status["completed"])
    with app.app_context():
        dialect = db.engine.dialect.name
    if dialect == "postgresql":
        assert errors == []  # the second waits on the booking row lock and then finds the redemption
    else:  # SQLite: the UNIQUE booking_id refuses the loser's second redemption
        assert all(isinstance(exc, IntegrityError) for exc in errors) and len(errors) <= 1
    assert deck.redemptions() == [(card, pk)] and deck.used(card) == 1


def test_renewal_reminders_for_cards_running_low(app, deck, rq_queues):
    kind = deck.card_type(units=5)
    low = deck.card(kind, purchased_days_ago=30, units_used=3)  # 2 left: at the default threshold
    with app.app_context():
        assert renewal_threshold(db.session) == 2
        assert low in [card.id for card in cards_to_renew(db.session)]
        assert low not in [card.id for card in cards_to_renew(db.session, remaining=1)]
    with app.app_context(), acting_as():
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "card_renewal_remaining"))
        previous, setting.value = setting.value, "1"
        db.session.commit()
        try:
            assert low not in [card.id for card in cards_to_renew(db.session)]
        finally:
            setting.value = previous
            db.session.commit()

    with app.app_context(), acting_as():
        queued = [entry for entry in queue_card_renewals(db.session) if entry.customer_id == deck.customer]
        db.session.commit()
        assert [(entry.kind, entry.channel, entry.recipient) for entry in queued] == [
            ("card_renewal", "email", f"k{deck.tag}@example.org")]
        entry_id = queued[0].id
        # reminded once: not again
        assert low not in [card.id for card in cards_to_renew(db.session)]
    jobs = [job for job in rq_queues["notifications"].jobs if job.args[0] == entry_id]
    assert len(jobs) == 1 and jobs[0].func_name == SEND_JOB and "3 von 5" not in jobs[0].args[2]
    assert "2 von 5" in jobs[0].args[2]


def test_no_renewal_when_a_newer_card_exists_or_the_card_expired(app, deck):
    kind = deck.card_type(units=5)
    low = deck.card(kind, purchased_days_ago=30, units_used=4)
    expired_low = deck.card(deck.card_type(units=5), purchased_days_ago=300, units_used=4,
                            expires_at=utcnow() - timedelta(days=1))
    with app.app_context():
        due = [card.id for card in cards_to_renew(db.session)]
    assert low in due and expired_low not in due
    deck.card(kind, purchased_days_ago=1)
    with app.app_context():
        assert low not in [card.id for card in cards_to_renew(db.session)]


def test_selling_a_card_takes_units_price_and_validity_from_the_type(app, deck, owner):
    from tests.conftest import post_form

    kind = deck.card_type(units=7, validity_days=30)
    response = post_form(owner, "/passcardview/add", {
        "customer": str(deck.customer), "type": str(kind), "price": "", "purchased_at": "2031-02-01 10:00:00",
        "expires_at": "",
    }, "/passcardview/add")
    assert response.status_code in (200, 302)
    with app.app_context():
        card = db.session.scalar(sa.select(PassCard).where(PassCard.type_id == kind))
        assert card is not None, response.get_data(as_text=True)[:2000]
        assert (card.units_total, card.units_used, card.price) == (7, 0, Decimal("90.00"))
        assert card.expires_at - card.purchased_at == timedelta(days=30)

    # an inactive type cannot be sold
    with app.app_context(), acting_as():
        db.session.get(PassCardType, kind).active = False
        db.session.commit()
    response = post_form(owner, "/passcardview/add", {
        "customer": str(deck.customer), "type": str(kind), "price": "10", "purchased_at": "2031-02-01 10:00:00",
    }, "/passcardview/add")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PassCard).where(PassCard.type_id == kind)) == 1


def test_card_type_form_stores_the_covered_services(app, deck, owner):
    from tests.conftest import post_form

    name = f"Formkarte {deck.tag}"
    post_form(owner, "/passcardtypeview/add", {
        "name": name, "units": "4", "validity_days": "", "price": "40", "services": [str(deck.listed)],
        "category": "", "no_show_costs_unit": "y", "active": "y",
    }, "/passcardtypeview/add")
    with app.app_context():
        card_type = db.session.scalar(sa.select(PassCardType).where(PassCardType.name == name))
        assert card_type is not None
        deck.types.append(card_type.id)
        assert [service.id for service in card_type.services] == [deck.listed]
