"""No double booking: an employee or a resource never holds two overlapping
non-cancelled bookings ([start, end) half-open), enforced by the database —
PostgreSQL exclusion constraints, SQLite triggers — and answered in German by
the forms and the API. Own rows in 2032, so the `world` is not touched."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.helpers_perm import api_token, bearer
from tests.test_validation import FLASH_RE, assert_german_refusal, submit

OVERLAP = "Der Termin überschneidet sich mit einem anderen Termin von"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2032, 3, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def mine(app, world, request):
    """Two employees, a room, a customer and a 60-minute service of this module
    (a module importing this fixture sets MINE_SUFFIX to keep names unique)."""
    suffix = getattr(request.module, "MINE_SUFFIX", "")
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import BookingStatus, Customer, Employee, Resource, Service

    with app.app_context(), acting_as():
        e1 = Employee(first_name="Olga", last_name="Overlap", location_id=world.location)
        e2 = Employee(first_name="Paul", last_name="Parallel", location_id=world.location)
        room = Resource(name=f"Doppelraum{suffix}", location_id=world.location)
        customer = Customer(first_name="Dora", last_name="Doppelt", city="Berlin")
        service = Service(name=f"Doppelstunde 60{suffix}", duration_minutes=60, price=Decimal("50.00"))
        db.session.add_all([e1, e2, room, customer, service])
        db.session.commit()
        statuses = dict(db.session.execute(sa.select(BookingStatus.kind, BookingStatus.id)).all())
        ids = SimpleNamespace(
            employee1=e1.id, employee2=e2.id, room=room.id, customer=customer.id, service=service.id,
            confirmed=statuses["confirmation"], cancelled=statuses["cancellation"],
        )
    yield ids
    with app.app_context(), acting_as():  # leave no bookings behind for the other modules' lists
        from app.models import Booking

        db.session.rollback()
        for booking in db.session.scalars(sa.select(Booking).where(Booking.customer_id == ids.customer)):
            db.session.delete(booking)
        db.session.flush()
        for status in db.session.scalars(sa.select(BookingStatus).where(BookingStatus.name.like("Doppeltest%"))):
            db.session.delete(status)
        db.session.commit()


def book(mine, start, end=None, *, employee="employee1", resource=None, status="confirmed", **extra):
    """Store one booking (own app context, system user); returns its id."""
    from app.extensions import db
    from app.models import Booking

    booking = Booking(customer_id=mine.customer, service_id=mine.service, employee_id=getattr(mine, employee),
                      resource_id=resource, status_id=getattr(mine, status), start_at=start,
                      end_at=end or start + timedelta(hours=1), **extra)
    db.session.add(booking)
    db.session.commit()
    return booking.id


@pytest.fixture()
def ctx(app):
    from app.extensions import db
    from app.jobs.base import acting_as

    with app.app_context(), acting_as():
        yield db.session
        db.session.rollback()


def refused(session, mine, *args, **kwargs) -> str:
    """Booking refused by the database: returns which rule ('employee'/'resource')."""
    from app.services.bookings import overlap_kind

    with pytest.raises(IntegrityError) as info:
        book(mine, *args, **kwargs)
    session.rollback()
    kind = overlap_kind(info.value)
    assert kind is not None, info.value
    return kind


def test_overlap_for_the_same_employee_is_refused(ctx, mine):
    book(mine, at(1, 9))
    assert refused(ctx, mine, at(1, 9, 30)) == "employee"
    assert refused(ctx, mine, at(1, 8, 30), at(1, 11)) == "employee"  # encloses it
    assert refused(ctx, mine, at(1, 9, 15), at(1, 9, 45)) == "employee"  # inside it
    book(mine, at(1, 9, 30), employee="employee2")  # another employee is free


def test_adjacent_bookings_are_allowed(ctx, mine):
    book(mine, at(2, 9))
    book(mine, at(2, 10))  # starts when the first ends: [9, 10) and [10, 11) do not overlap
    book(mine, at(2, 8))  # ends when the first starts


def test_a_cancelled_booking_does_not_block_and_cannot_be_uncancelled_into_an_overlap(ctx, mine):
    from app.models import Booking, BookingStatus

    first = book(mine, at(3, 9), status="cancelled")
    assert ctx.get(Booking, first).cancelled is True
    second = book(mine, at(3, 9))
    assert ctx.get(Booking, second).cancelled is False
    # back to confirmed: now it would overlap the second booking
    booking = ctx.get(Booking, first)
    booking.status = ctx.get(BookingStatus, mine.confirmed)
    with pytest.raises(IntegrityError):
        ctx.commit()
    ctx.rollback()
    assert ctx.get(Booking, first).cancelled is True
    # the same by the foreign key alone
    ctx.get(Booking, first).status_id = mine.confirmed
    with pytest.raises(IntegrityError):
        ctx.commit()
    ctx.rollback()
    # cancelling the second frees the slot for the first
    ctx.get(Booking, second).status_id = mine.cancelled
    ctx.commit()
    ctx.get(Booking, first).status_id = mine.confirmed
    ctx.commit()
    assert (ctx.get(Booking, first).cancelled, ctx.get(Booking, second).cancelled) == (False, True)


def test_moving_a_booking_onto_another_is_refused(ctx, mine):
    from app.models import Booking

    book(mine, at(4, 9))
    other = book(mine, at(4, 11))
    ctx.get(Booking, other).start_at = at(4, 9, 30)
    ctx.get(Booking, other).end_at = at(4, 10, 30)
    with pytest.raises(IntegrityError):
        ctx.commit()
    ctx.rollback()
    ctx.get(Booking, other).comment = "unverändert verschiebbar"  # an update of the row itself passes
    ctx.commit()


def test_resource_overlap_across_two_employees_is_refused(ctx, mine):
    book(mine, at(5, 9), resource=mine.room)
    assert refused(ctx, mine, at(5, 9, 30), employee="employee2", resource=mine.room) == "resource"
    book(mine, at(5, 10), employee="employee2", resource=mine.room)  # adjacent
    book(mine, at(5, 9), employee="employee2")  # the same time without the room


def test_stored_datetimes_compare_in_time_order(ctx, mine):
    """The SQLite triggers compare start/end as text: that orders only because every
    value has the same format (microseconds included). PostgreSQL's constraint works
    on real `timestamptz` ranges."""
    first = book(mine, at(6, 9))
    second = book(mine, datetime(2032, 3, 6, 10, 0, 0, 5, tzinfo=timezone.utc))
    if ctx.get_bind().dialect.name == "sqlite":
        stored = ctx.execute(sa.text("SELECT start_at, end_at FROM booking WHERE id IN (:a, :b) ORDER BY id"),
                             {"a": first, "b": second}).all()
        assert [tuple(row) for row in stored] == [
            ("2032-03-06 09:00:00.000000", "2032-03-06 10:00:00.000000"),
            ("2032-03-06 10:00:00.000005", "2032-03-06 11:00:00.000005"),
        ]
    else:
        types = ctx.execute(sa.text("SELECT pg_typeof(start_at)::text, pg_typeof(end_at)::text FROM booking "
                                    "WHERE id = :a"), {"a": first}).one()
        assert tuple(types) == ("timestamp with time zone", "timestamp with time zone")


# --- forms and API -------------------------------------------------------------
def _count(app, **where) -> int:
    from app.extensions import db
    from app.models import Booking

    with app.app_context():
        stmt = sa.select(sa.func.count()).select_from(Booking)
        for key, value in where.items():
            stmt = stmt.where(getattr(Booking, key) == value)
        return db.session.scalar(stmt)


def test_form_refuses_an_overlap_in_german_and_stores_nothing(app, ctx, mine, manager):
    book(mine, at(8, 9))  # 10:00 in Berlin (winter time)
    form = {"customer": str(mine.customer), "service": str(mine.service), "employee": str(mine.employee1),
            "start_at": "2032-03-08 10:30:00", "end_at": "", "price": "", "comment": "Doppelt per Formular"}
    html = submit(manager, "/bookingview/add", form, "start_at")
    assert_german_refusal(html, f"{OVERLAP} Olga Overlap.")
    assert _count(app, comment="Doppelt per Formular") == 0
    # the next free hour is stored
    html = submit(manager, "/bookingview/add", form | {"start_at": "2032-03-08 11:00:00"}, "start_at")
    assert OVERLAP not in html, FLASH_RE.findall(html)
    assert _count(app, comment="Doppelt per Formular") == 1


def test_edit_form_refuses_an_overlap(app, ctx, mine, manager):
    from app.models import Booking

    book(mine, at(9, 9))
    other = book(mine, at(9, 11), comment="Vorher")
    html = submit(manager, f"/bookingview/edit/{other}", {"start_at": "2032-03-09 10:30:00", "end_at": "",
                                                           "comment": "Nachher"}, "start_at")
    assert_german_refusal(html, f"{OVERLAP} Olga Overlap.")
    ctx.expire_all()
    stored = ctx.get(Booking, other)
    assert (stored.start_at, stored.comment) == (at(9, 11), "Vorher")


def test_rest_post_and_put_of_an_overlap_answer_409_in_german(app, mine):
    """Without an app context around the requests: each gets its own (and its own language)."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        book(mine, at(10, 9), resource=mine.room)
    headers = bearer(api_token(app, "owner"))
    client = app.test_client()
    payload = {"customer": mine.customer, "service": mine.service, "employee": mine.employee1,
               "start_at": "2032-03-10T09:30:00+00:00", "end_at": "2032-03-10T10:30:00+00:00",
               "comment": "Doppelt per API"}
    response = client.post("/api/v1/booking/", json=payload, headers=headers)
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["message"] == f"{OVERLAP} Olga Overlap."
    assert _count(app, comment="Doppelt per API") == 0
    response = client.post("/api/v1/booking/?_l_=en", json=payload, headers=headers)
    assert response.status_code == 409
    assert response.get_json()["message"] == "The appointment overlaps another appointment of Olga Overlap."

    payload |= {"start_at": "2032-03-10T10:00:00+00:00", "end_at": "2032-03-10T11:00:00+00:00"}
    response = client.post("/api/v1/booking/", json=payload, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    pk = response.get_json()["id"]
    response = client.put(f"/api/v1/booking/{pk}", json={"start_at": "2032-03-10T09:59:00+00:00"}, headers=headers)
    assert response.status_code == 409
    assert OVERLAP in response.get_json()["message"]
    with app.app_context():
        assert db.session.get(Booking, pk).start_at == at(10, 10)


# --- concurrency -----------------------------------------------------------------
def race(app, mine, threads: int, start: datetime, service: int | None = None) -> list[str]:
    """`threads` threads, each with its own app context, session and connection,
    insert the same slot for the same employee at once (a one-hour booking of
    `service`, default the module's); returns each outcome."""
    from flask import g

    from app.extensions import db
    from app.models import Booking
    from app.services.bookings import overlap_kind

    with app.app_context():
        url = db.engine.url
        system = app.appbuilder.sm.find_user(username="system")
        actor = SimpleNamespace(id=system.id, is_authenticated=True)
        db.session.remove()
    connect_args = {"timeout": 60} if url.get_backend_name() == "sqlite" else {}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(index: int) -> None:
        with app.app_context():
            g.user = actor
            with Session(bind=engine) as session:
                session.add(Booking(customer_id=mine.customer, service_id=service or mine.service,
                                    employee_id=mine.employee1, status_id=mine.confirmed, start_at=start,
                                    end_at=start + timedelta(hours=1), comment=f"Wettlauf {index}"))
                barrier.wait(timeout=30)
                try:
                    session.commit()
                    outcome = "stored"
                except IntegrityError as exc:
                    session.rollback()
                    outcome = f"overlap_{overlap_kind(exc)}"
                except Exception as exc:  # reported: fails the test
                    session.rollback()
                    outcome = f"{type(exc).__name__}: {exc}"
        with lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    engine.dispose()
    return outcomes


def _backend(app) -> str:
    from app.extensions import db

    with app.app_context():
        return db.engine.dialect.name


def test_threads_book_the_same_slot_exactly_one_wins(app, mine):
    """20 threads on PostgreSQL (the issue's test), 8 on SQLite (one writer at a time)."""
    threads = 20 if _backend(app) == "postgresql" else 8
    outcomes = race(app, mine, threads, at(15, 9))
    assert sorted(outcomes) == ["overlap_employee"] * (threads - 1) + ["stored"], outcomes
    assert _count(app, employee_id=mine.employee1, start_at=at(15, 9)) == 1


def test_changing_a_status_kind_updates_its_bookings(ctx, mine):
    """An Owner turns a status into a cancellation: its bookings stop blocking, and back."""
    from app.models import Booking, BookingStatus

    status = BookingStatus(name="Doppeltest-Status", kind="neutral", position=99)
    ctx.add(status)
    ctx.commit()
    booking = Booking(customer_id=mine.customer, service_id=mine.service, employee_id=mine.employee1,
                      status_id=status.id, start_at=at(11, 9), end_at=at(11, 10))
    ctx.add(booking)
    ctx.commit()
    assert booking.cancelled is False
    status.kind = "cancellation"
    ctx.commit()
    ctx.expire_all()
    assert ctx.get(Booking, booking.id).cancelled is True
    book(mine, at(11, 9))  # the slot is free now
    ctx.get(BookingStatus, status.id).kind = "neutral"
    with pytest.raises(IntegrityError):  # and turning it back would double-book the slot
        ctx.commit()
    ctx.rollback()
