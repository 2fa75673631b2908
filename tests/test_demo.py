"""`flask demo seed` / app.demo.seed_demo on fresh SQLite databases.

The session `app` fixture already holds test users named like the demo logins,
so every test here uses apps of its own: one database is migrated and
initialised once (`flask init` costs seconds), and each test database is a copy
of that file.
"""
from __future__ import annotations

import re
import shutil
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.conftest import login

DEMO_PASSWORD = "Demo-Passwort-123"
CUSTOMERS, BOOKINGS, SEED = 60, 400, 7
TODAY = date(2025, 3, 20)  # ten days before the switch to summer time
LOGINS = ["owner", "manager", "viewer"] + [f"employee{i}" for i in range(1, 9)]
ROLE_OF = {"owner": "Owner", "manager": "Manager", "viewer": "Viewer"}


def _make_app(path):
    from app import create_app

    return create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
        "TESTING": True,
        "SECRET_KEY": "test-secret-demo",
        "INSTANCE_DIR": str(path.parent),
        "SERVER_NAME": None,
    })


def _dispose(flask_app) -> None:
    from app.extensions import db

    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    """A migrated database after `flask init`, copied for each test database."""
    from flask_migrate import upgrade

    from app.cli import init_app_data
    from app.extensions import db

    path = tmp_path_factory.mktemp("demo-template") / "template.db"
    flask_app = _make_app(path)
    with flask_app.app_context():
        # A throw-away file: skip the fsync of each of FAB's many permission commits.
        sa.event.listen(db.engine, "connect", lambda conn, _record: conn.execute("PRAGMA synchronous = OFF"))
        upgrade()
        init_app_data()
    _dispose(flask_app)
    return path


@pytest.fixture(scope="module")
def fresh_app(template_db, tmp_path_factory):
    """fresh_app("name") → an app on a new copy of the initialised database."""
    made = []

    def make(name: str):
        path = tmp_path_factory.mktemp(f"demo-{name}") / "demo.db"
        shutil.copyfile(template_db, path)
        flask_app = _make_app(path)
        made.append(flask_app)
        return flask_app

    yield make
    for flask_app in made:
        _dispose(flask_app)


def _seed(flask_app, **kwargs) -> list[str]:
    from app.demo import seed_demo

    with flask_app.app_context():
        return seed_demo(customers=CUSTOMERS, bookings=BOOKINGS, seed=SEED, password=DEMO_PASSWORD,
                         today=TODAY, **kwargs)


@pytest.fixture(scope="module")
def cli_app(fresh_app):
    """Seeded through the real command, as a user would."""
    flask_app = fresh_app("cli")
    result = flask_app.test_cli_runner().invoke(
        args=["demo", "seed", "--customers", str(CUSTOMERS), "--bookings", str(BOOKINGS)],
        env={"DEMO_PASSWORD": DEMO_PASSWORD},
    )
    assert result.exit_code == 0, result.output
    flask_app.seed_output = result.output
    return flask_app


@pytest.fixture(scope="module")
def orm_app(fresh_app):
    flask_app = fresh_app("orm")
    _seed(flask_app, fast=False)
    return flask_app


@pytest.fixture(scope="module")
def core_app(fresh_app):
    flask_app = fresh_app("core")
    _seed(flask_app, fast=True)
    return flask_app


def _count(flask_app, table: str) -> int:
    from app.extensions import db

    with flask_app.app_context():
        return db.session.scalar(sa.text(f'SELECT count(*) FROM "{table}"'))


def _rows(flask_app, table: str) -> list:
    from app.extensions import db

    with flask_app.app_context():
        return list(db.session.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY id')))


def _dump(flask_app) -> dict[str, list[tuple]]:
    """Every row the seed writes, in id order."""
    from app.demo import WRITE_ORDER
    from app.extensions import db

    with flask_app.app_context():
        dump = {
            model.__tablename__: [tuple(r) for r in db.session.execute(
                sa.select(model.__table__).order_by(model.__table__.c.id))]
            for model in WRITE_ORDER
        }
        dump["setting"] = [tuple(r) for r in db.session.execute(sa.text("SELECT key, value FROM setting ORDER BY key"))]
        dump["ab_user"] = [tuple(r) for r in db.session.execute(sa.text(
            "SELECT username, first_name, last_name, email FROM ab_user ORDER BY id"))]
    return dump


# --- the command --------------------------------------------------------------
def test_cli_seeds_requested_sizes_and_prints_logins(cli_app):
    assert _count(cli_app, "customer") == CUSTOMERS
    assert _count(cli_app, "booking") == BOOKINGS
    assert _count(cli_app, "employee") == 8
    assert _count(cli_app, "location") == 2
    assert DEMO_PASSWORD in cli_app.seed_output
    for username in LOGINS:
        assert username in cli_app.seed_output


def test_cli_refuses_a_non_empty_database(cli_app):
    runner = cli_app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed", "--customers", "5", "--bookings", "5"])
    assert result.exit_code != 0
    assert "nicht leer" in result.output
    result = runner.invoke(args=["demo", "seed", "--if-empty", "--customers", "5", "--bookings", "5"])
    assert result.exit_code == 0, result.output
    assert _count(cli_app, "customer") == CUSTOMERS
    assert _count(cli_app, "booking") == BOOKINGS


def test_demo_logins_exist_with_their_roles(cli_app):
    from app.extensions import db
    from app.models import Employee

    with cli_app.app_context():
        sm = cli_app.appbuilder.sm
        linked = {}
        for username in LOGINS:
            user = sm.find_user(username=username)
            assert user is not None and user.active, username
            roles = [role.name for role in user.roles]
            assert roles == [ROLE_OF.get(username, "Employee")], (username, roles)
            if username.startswith("employee"):
                employee = db.session.scalar(sa.select(Employee).where(Employee.user_id == user.id))
                assert employee is not None, f"{username} is not linked to an employee"
                assert (employee.first_name, employee.last_name) == (user.first_name, user.last_name)
                linked[username] = employee.id
        assert len(set(linked.values())) == 8


@pytest.mark.parametrize("username", ["owner", "employee1"])
def test_demo_login_through_the_login_form(cli_app, username):
    client = cli_app.test_client()
    login(client, username, DEMO_PASSWORD)
    response = client.get("/")
    assert response.status_code == 200
    assert "Termine in den nächsten 7 Tagen" in response.get_data(as_text=True)


def test_wrong_demo_password_is_refused(cli_app):
    from tests.conftest import csrf_token

    client = cli_app.test_client()
    token = csrf_token(client, "/login/")
    client.post("/login/", data={"username": "owner", "password": "falsch", "csrf_token": token})
    assert client.get("/").status_code == 302


# --- determinism and the two write paths -----------------------------------------
def test_same_seed_gives_the_same_data(orm_app, fresh_app):
    again = fresh_app("orm-again")
    _seed(again, fast=False)
    first, second = _dump(orm_app), _dump(again)
    names = [(row.first_name, row.last_name, row.email) for row in _rows(orm_app, "customer")]
    starts = [row.start_at for row in _rows(orm_app, "booking")]
    assert len(names) == CUSTOMERS and len(starts) == BOOKINGS
    assert names == [(row.first_name, row.last_name, row.email) for row in _rows(again, "customer")]
    assert starts == [row.start_at for row in _rows(again, "booking")]
    assert first == second


def test_core_fast_path_writes_the_same_rows_as_the_orm(orm_app, core_app):
    orm_rows, core_rows = _dump(orm_app), _dump(core_app)
    for table, rows in orm_rows.items():
        assert core_rows[table] == rows, table


@pytest.mark.parametrize("path", ["orm_app", "core_app"])
def test_every_row_has_an_insert_version_by_the_system_user(request, path):
    from sqlalchemy_continuum import version_class

    from app.demo import WRITE_ORDER
    from app.extensions import db
    from app.security import SYSTEM_USERNAME

    flask_app = request.getfixturevalue(path)
    with flask_app.app_context():
        system_id = flask_app.appbuilder.sm.find_user(username=SYSTEM_USERNAME).id
        for model in WRITE_ORDER:
            table, versions = model.__table__, version_class(model).__table__
            rows = db.session.scalar(sa.select(sa.func.count()).select_from(table))
            inserted = db.session.scalar(sa.select(sa.func.count()).select_from(versions).where(
                versions.c.operation_type == 0, versions.c.id.in_(sa.select(table.c.id))))
            assert rows > 0 and inserted == rows, model.__name__
        users = set(db.session.scalars(sa.text(
            "SELECT DISTINCT t.user_id FROM booking_version v JOIN \"transaction\" t ON t.id = v.transaction_id")))
        assert users == {system_id}
        customer_users = set(db.session.scalars(sa.text(
            "SELECT DISTINCT t.user_id FROM customer_version v JOIN \"transaction\" t ON t.id = v.transaction_id")))
        assert customer_users == {system_id}


# --- the data itself -----------------------------------------------------------
def test_bookings_are_consistent(orm_app):
    from app.extensions import db
    from app.models import Absence, Booking, BookingStatus, Service, WorkingHours

    tz = ZoneInfo("Europe/Berlin")
    now = datetime.combine(TODAY, datetime.min.time(), tzinfo=tz)
    with orm_app.app_context():
        session = db.session
        kind_of = {s.id: s.kind for s in session.scalars(sa.select(BookingStatus))}
        services = {s.id: s for s in session.scalars(sa.select(Service))}
        hours = defaultdict(list)
        for wh in session.scalars(sa.select(WorkingHours)):
            hours[(wh.employee_id, wh.weekday)].append((wh.start_time, wh.end_time))
        absences = defaultdict(list)
        for absence in session.scalars(sa.select(Absence)):
            assert absence.start_at.tzinfo is not None and absence.end_at > absence.start_at
            absences[absence.employee_id].append((absence.start_at, absence.end_at))
        bookings = list(session.scalars(sa.select(Booking).order_by(Booking.employee_id, Booking.start_at)))
        assert len(bookings) == BOOKINGS
        last_end = {}
        kinds = defaultdict(int)
        for b in bookings:
            assert b.start_at.tzinfo is not None and b.end_at.tzinfo is not None
            assert b.created_at.tzinfo is not None and b.created_at <= max(b.start_at, now)
            assert b.end_at > b.start_at
            service = services[b.service_id]
            assert b.end_at - b.start_at == timedelta(minutes=service.duration_minutes)
            assert b.price == service.price
            assert b.source in {"online", "phone", "walk_in", "backoffice"}
            local_start, local_end = b.start_at.astimezone(tz), b.end_at.astimezone(tz)
            assert any(start <= local_start.time() and local_end.time() <= end
                       for start, end in hours[(b.employee_id, local_start.weekday())]), b
            assert not any(start <= b.start_at < end for start, end in absences[b.employee_id]), b
            kind = kind_of[b.status_id]
            kinds[(kind, b.start_at < now)] += 1
            assert (kind == "cancellation") == bool(b.cancel_reason)
            if kind == "cancellation":
                continue
            assert b.start_at >= last_end.get(b.employee_id, b.start_at), f"overlap at booking {b.id}"
            last_end[b.employee_id] = b.end_at
        # past: mostly completed, some cancelled and no-shows; future: mostly confirmed
        assert kinds[("completed", True)] > 0.7 * sum(v for (k, past), v in kinds.items() if past)
        assert kinds[("completed", False)] == kinds[("no_show", False)] == 0
        assert kinds[("start", True)] == 0
        assert kinds[("cancellation", True)] > 0
        assert kinds[("confirmation", False)] > kinds[("start", False)]
        first = min(b.start_at for b in bookings)
        last = max(b.start_at for b in bookings)
        assert now - timedelta(days=731) <= first and last < now + timedelta(days=62)


def test_customers_look_like_a_real_customer_base(orm_app):
    from app.extensions import db
    from app.models import Customer, Pet
    from app.models.customers import EMOJI_MARKERS

    with orm_app.app_context():
        customers = list(db.session.scalars(sa.select(Customer)))
        emails = [c.email for c in customers if c.email]
        assert len(emails) == len(set(emails)) > CUSTOMERS / 2
        assert all(e == e.lower() and re.fullmatch(r"[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]+", e) for e in emails)
        assert all(c.emoji_marker in EMOJI_MARKERS for c in customers if c.emoji_marker)
        assert any(c.emoji_marker for c in customers)
        assert db.session.scalar(sa.select(sa.func.count(Pet.id))) > 0
        assert all(c.created_at.tzinfo is not None for c in customers)
        ids = {c.id for c in customers}
        assert all(c.referred_by_id in ids and c.referred_by_id != c.id for c in customers if c.referred_by_id)


def test_duplicates_on_purpose_and_another_seed(orm_app, fresh_app):
    """About 2 % of the customers are the same person again (same phone, name
    variant); another seed gives other people."""
    from app.demo import seed_demo
    from app.extensions import db
    from app.models import Customer

    flask_app = fresh_app("duplicates")
    with flask_app.app_context():
        seed_demo(customers=600, bookings=50, seed=SEED + 1, password=DEMO_PASSWORD, today=TODAY, fast=True)
    seeded = [(r.first_name, r.last_name) for r in _rows(orm_app, "customer")]
    assert [(r.first_name, r.last_name) for r in _rows(flask_app, "customer")][:CUSTOMERS] != seeded
    with flask_app.app_context():
        by_phone = defaultdict(list)
        for c in db.session.scalars(sa.select(Customer)):
            if c.phone:
                digits = re.sub(r"\D", "", c.phone)
                by_phone["0" + digits[2:] if digits.startswith("49") else digits].append(c)
        pairs = [group for group in by_phone.values() if len(group) > 1]
        assert 3 <= len(pairs) <= 30
        assert any(len({c.phone for c in group}) > 1 for group in pairs), "phone written in another format"
        assert any(len({(c.first_name, c.last_name) for c in group}) > 1 for group in pairs), "name variant"


def test_cards_and_bonus_respect_the_rules(orm_app):
    from app.extensions import db
    from app.models import BonusProgram, BonusTransaction, Booking, BookingStatus, PassCard, PassRedemption

    with orm_app.app_context():
        session = db.session
        cards = list(session.scalars(sa.select(PassCard)))
        assert cards
        redeemed = defaultdict(int)
        for redemption in session.scalars(sa.select(PassRedemption)):
            redeemed[redemption.card_id] += redemption.units
        for card in cards:
            assert 0 <= card.units_used <= card.units_total
            assert card.units_used == redeemed[card.id]
            assert card.expires_at is None or card.expires_at > card.purchased_at
        statuses = dict(session.execute(
            sa.select(Booking.id, BookingStatus.kind).join(BookingStatus, Booking.status_id == BookingStatus.id)
        ).tuples().all())
        assert {statuses[r.booking_id] for r in session.scalars(sa.select(PassRedemption))} <= {"completed", "no_show"}
        lines = list(session.scalars(sa.select(BonusTransaction)))
        assert {line.kind for line in lines} >= {"earn"}
        for line in lines:
            assert line.points != 0
            if line.kind in ("earn", "referral"):
                assert line.points > 0
            if line.kind in ("redeem", "expiry"):
                assert line.points < 0
        balances = defaultdict(int)
        for line in lines:
            balances[(line.customer_id, line.program_id)] += line.points
        assert min(balances.values()) >= 0
        programs = set(session.scalars(sa.select(BonusProgram)))
        assert programs and all(program.services for program in programs)  # salon vs dog school services


def test_invoices_of_recent_visits(orm_app):
    """A few invoices made by the screens' services: gapless numbers in date order, paid and
    open ones ("Offene Posten"), one draft, one Storno; each line a completed booking."""
    from app.extensions import db
    from app.models import BookingStatus, Invoice, InvoiceLine

    with orm_app.app_context():
        invoices = list(db.session.scalars(sa.select(Invoice).where(Invoice.status != "draft")
                                           .order_by(Invoice.sequence)))
        assert [invoice.sequence for invoice in invoices] == list(range(1, len(invoices) + 1))
        assert [invoice.issued_at for invoice in invoices] == sorted(invoice.issued_at for invoice in invoices)
        open_items = [i for i in invoices if i.status == "issued" and i.paid_at is None and i.cancels_id is None]
        assert open_items and any(invoice.paid_at for invoice in invoices)
        stornos = [invoice for invoice in invoices if invoice.cancels_id is not None]
        assert len(stornos) == 1 and stornos[0].total_gross == -stornos[0].cancels.total_gross
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice).where(Invoice.status == "draft")) == 1
        kinds = set(db.session.scalars(sa.select(BookingStatus.kind).join(
            InvoiceLine.booking).join(BookingStatus)))
        assert kinds == {"completed"}
        assert all(invoice.recipient_name for invoice in invoices)


def test_reminders_of_the_last_two_weeks_are_in_the_log(orm_app):
    """The demo's past reminders: one log entry a day before each not cancelled booking of the
    last 14 days that has its reminder on, only to customers who agreed to that channel."""
    from datetime import timedelta

    from app.extensions import db
    from app.models import Booking, Customer, NotificationLog

    now = datetime.combine(TODAY, datetime.min.time(), tzinfo=ZoneInfo("Europe/Berlin"))  # the demo's "now"
    with orm_app.app_context():
        entries = db.session.execute(
            sa.select(NotificationLog, Booking, Customer).join(Booking, NotificationLog.booking_id == Booking.id)
            .join(Customer, NotificationLog.customer_id == Customer.id)
            .where(NotificationLog.kind == "reminder")).all()
        assert entries and {entry.status for entry, _b, _c in entries} <= {"sent", "failed"}
        for entry, booking, customer in entries:
            assert booking.reminder and not booking.cancelled
            assert now - timedelta(days=14) <= booking.start_at < now
            assert booking.start_at - entry.created_at >= timedelta(hours=24)
            consent = customer.consent_email if entry.channel == "email" else customer.consent_sms
            assert consent and entry.customer_id == booking.customer_id
        assert len({booking.id for _e, booking, _c in entries}) == len(entries)  # once per booking


def test_seeding_needs_an_initialised_database(fresh_app):
    from app.demo import seed_demo
    from app.extensions import db

    flask_app = fresh_app("no-system-user")
    with flask_app.app_context():
        db.session.execute(sa.text("UPDATE ab_user SET username = 'someone' WHERE username = 'system'"))
        db.session.commit()
        with pytest.raises(RuntimeError, match="flask init"):
            seed_demo(customers=5, bookings=5, seed=1, password=DEMO_PASSWORD)
    assert _count(flask_app, "customer") == 0


def test_seed_never_reuses_the_id_of_a_deleted_row(fresh_app):
    """An empty customer table may still hold history: new rows start after it."""
    from app.demo import seed_demo
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    flask_app = fresh_app("after-delete")
    with flask_app.app_context():
        with acting_as():
            gone = Customer(first_name="Gelöscht", last_name="Kunde")
            db.session.add(gone)
            db.session.commit()
            gone_id = gone.id
            db.session.delete(gone)
            db.session.commit()
        seed_demo(customers=5, bookings=5, seed=SEED, password=DEMO_PASSWORD, today=TODAY, fast=True)
        ids = list(db.session.scalars(sa.select(Customer.id)))
    assert len(ids) == 5 and min(ids) > gone_id
