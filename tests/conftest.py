"""Test fixtures: a migrated database (SQLite by default, PostgreSQL with
TEST_DATABASE_URL), the app, a small world of business data, and one logged-in
client per role (logged in through the real login form, CSRF included)."""
from __future__ import annotations

import itertools
import os
import re
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.dbtools import create_database, drop_database, with_database

PASSWORD = "Test-Passwort-123"
ROLE_USERS = {"Owner": "owner", "Manager": "manager", "Viewer": "viewer", "Employee": "employee1"}
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    base = os.environ.get("TEST_DATABASE_URL")
    if base and base.startswith("postgresql"):
        url = create_database(with_database(base, f"tb_test_{_worker()}_{os.getpid()}"))
        yield url
        drop_database(url)
        return
    path = tmp_path_factory.mktemp("db") / "terminbuch.db"
    yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def app(database_url):
    from flask_migrate import upgrade

    from app import create_app
    from app.cli import init_app_data

    instance = tempfile.mkdtemp(prefix="tb-instance-")
    flask_app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret-not-for-production",
        "WTF_CSRF_ENABLED": True,
        "INSTANCE_DIR": instance,
        "SERVER_NAME": None,
        "INLINE_JOBS": "sync",  # without Redis a job runs right after the commit
        "JOB_RETRY_INTERVALS": (0, 0),  # a burst worker retries at once
        "GEOCODER_URL": None,  # no geocoding job on a customer save; tests/test_geocoding.py sets its stub
    })
    with flask_app.app_context():
        upgrade()
        init_app_data()
        build_world(flask_app)
    yield flask_app
    from app.extensions import db

    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture()
def app_ctx(app):
    with app.app_context():
        yield app


# --- the world: two employees, their customers and bookings -------------------
@dataclass
class World:
    ids: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        try:
            return self.ids[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


WORLD = World()


def build_world(flask_app) -> World:
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import (
        Booking,
        BookingStatus,
        Customer,
        Employee,
        Location,
        Pet,
        Service,
        WorkingHours,
    )

    sm = flask_app.appbuilder.sm
    users = {}
    for role, username in list(ROLE_USERS.items()) + [("Employee", "employee2")]:
        users[username] = sm.add_user(
            username, username.capitalize(), "Test", f"{username}@example.org",
            sm.find_role(role), password=PASSWORD,
        )
    with acting_as():
        loc = Location(name="Filiale Mitte", city="Berlin", postal_code="10115")
        e1 = Employee(first_name="Eva", last_name="Eins", location=loc, user_id=users["employee1"].id)
        e2 = Employee(first_name="Zoe", last_name="Zwei", location=loc, user_id=users["employee2"].id)
        service = Service(name="Einzelstunde 60", category="einzelstunde", duration_minutes=60,
                          buffer_minutes=10, price=Decimal("45.00"))
        c1 = Customer(first_name="Anna", last_name="Berg", emoji_marker="⭐", email="anna@example.org",
                      phone="+49301234567", city="Berlin")
        c2 = Customer(first_name="Bernd", last_name="Colleague", email="bernd@example.org", city="Potsdam")
        db.session.add_all([loc, e1, e2, service, c1, c2])
        for emp in (e1, e2):
            for weekday in range(5):
                db.session.add(WorkingHours(employee=emp, weekday=weekday,
                                            start_time=time(9), end_time=time(18)))
        start = datetime(2030, 3, 4, 9, 0, tzinfo=timezone.utc)
        b1 = Booking(customer=c1, service=service, employee=e1, start_at=start, comment="Erster Termin")
        b2 = Booking(customer=c2, service=service, employee=e2, start_at=start + timedelta(hours=2),
                     comment="Termin der Kollegin")
        pet2 = Pet(customer=c2, name="Bello", breed="Dackel")
        db.session.add_all([b1, b2, pet2])
        db.session.commit()
        WORLD.ids.update(
            location=loc.id, employee1=e1.id, employee2=e2.id, service=service.id,
            customer1=c1.id, customer2=c2.id, booking1=b1.id, booking2=b2.id, pet2=pet2.id,
            confirmed=db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "confirmation")),
            **{f"user_{name}": user.id for name, user in users.items()},
        )
    return WORLD


@pytest.fixture(scope="session")
def world(app) -> World:
    return WORLD


def _redis_url() -> str:
    """A Redis database of this test process: parallel workers must not empty each other's queues.
    TEST_REDIS_DB (default 15) is the first database; xdist worker gwN takes TEST_REDIS_DB - N."""
    worker = _worker()
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    first = int(os.environ.get("TEST_REDIS_DB", "15"))
    return f"redis://127.0.0.1:6379/{(first - index % 8) % 16}"


TEST_REDIS_URL = _redis_url()


@pytest.fixture()
def rq_queues(app):
    """The app on a real Redis (this worker's database) with empty queues "default",
    "notifications" and "exports"; REDIS_URL restored afterwards."""
    import redis
    from rq import Queue

    connection = redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=5)
    try:
        connection.ping()
    except redis.RedisError:
        assert not REQUIRE_SERVICES, "Redis does not answer but REQUIRE_SERVICES=1"
        pytest.fail("Redis at 127.0.0.1:6379 is needed for this test")
    previous = app.config.get("REDIS_URL")
    app.config["REDIS_URL"] = TEST_REDIS_URL
    queues = {name: Queue(name, connection=connection) for name in ("default", "notifications", "exports")}
    for queue in queues.values():
        queue.empty()
    yield queues
    for queue in queues.values():
        queue.empty()
    app.config["REDIS_URL"] = previous


_slots = itertools.count()


def distinct_start(base: datetime) -> datetime:
    """A start after `base` that no other call in this test process returns (bookings without
    an employee: no overlap with other tests)."""
    return base + timedelta(hours=2 * next(_slots)) + timedelta(days=hash(uuid.uuid4().hex) % 300)


@contextmanager
def temporary_booking(app, start: datetime, **fields):
    """A booking of the world's employee1 for customer1 at `start`, stored by the system
    user without the screens' checks; yields its id and deletes it afterwards."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        booking = Booking(customer_id=WORLD.customer1, service_id=WORLD.service, employee_id=WORLD.employee1,
                          start_at=start, **fields)
        db.session.add(booking)
        db.session.commit()
        pk = booking.id
    try:
        yield pk
    finally:
        with app.app_context(), acting_as():
            db.session.rollback()
            db.session.delete(db.session.get(Booking, pk))
            db.session.commit()


# --- clients -----------------------------------------------------------------
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    """The CSRF token of the form on `url` (GET it like a browser would)."""
    html = client.get(url).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    token = csrf_token(client, "/login/")
    response = client.post("/login/", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, f"login of {username} failed"
    return client


def post_form(client, url: str, data: dict, form_url: str | None = None):
    """Submit a form like a browser: fetch its page for the CSRF token, then POST."""
    payload = dict(data)
    payload["csrf_token"] = csrf_token(client, form_url or url)
    return client.post(url, data=payload)


@pytest.fixture()
def client_for(app, world):
    """client_for("Manager") → a test client logged in as that role's user
    (or pass a username, e.g. "employee2"); None → anonymous."""

    def make(role_or_user: str | None):
        client = app.test_client()
        if role_or_user is None:
            return client
        username = ROLE_USERS.get(role_or_user, role_or_user)
        return login(client, username)

    return make


@pytest.fixture()
def owner(client_for):
    return client_for("Owner")


@pytest.fixture()
def manager(client_for):
    return client_for("Manager")


@pytest.fixture()
def employee(client_for):
    return client_for("Employee")


@pytest.fixture()
def viewer(client_for):
    return client_for("Viewer")


@pytest.fixture()
def shop(app, world):
    """One test's own customers, services and bonus programs (tests/test_bonus.py Shop), removed afterwards."""
    from tests.test_bonus import Shop

    shop = Shop(app)
    yield shop
    shop.remove()


@pytest.fixture()
def statements(app):
    """Count SQL statements: `with statements() as count: …; count.n`. The engine is
    looked up once, so requests inside the block run in their own app contexts."""
    from contextlib import contextmanager

    from app.extensions import db

    with app.app_context():
        engine = db.engine

    @contextmanager
    def counter():
        class Count:
            n = 0

        def on_execute(*_args, **_kwargs):
            Count.n += 1

        sa.event.listen(engine, "before_cursor_execute", on_execute)
        try:
            yield Count
        finally:
            sa.event.remove(engine, "before_cursor_execute", on_execute)

    return counter


# --- notification test servers (tests/servers.py) ----------------------------------
@pytest.fixture()
def smtp_server():
    """A real SMTP server on 127.0.0.1 collecting what it receives (`.messages`)."""
    from tests.servers import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture()
def http_stub():
    """A real HTTP server on 127.0.0.1 recording requests, answering `.answer(...)` codes."""
    from tests.servers import HttpStub

    stub = HttpStub().start()
    yield stub
    stub.stop()
