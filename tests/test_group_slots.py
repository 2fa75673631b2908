"""Group sessions: bookings of a service with capacity > 1 at the same start with
the same employee share the slot up to the capacity; every other overlap is still
refused, by the database (PostgreSQL exclusion constraint + capacity trigger with
an advisory lock, SQLite triggers). Own rows in April 2032."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tests import test_double_booking as single
from tests.test_double_booking import _backend, book, race

MINE_SUFFIX = " (Gruppen)"
mine = single.mine  # the module's employees, room, customer and statuses (fixture)
ctx = single.ctx  # an app context acting as the system user (fixture)

FULL = "„Welpengruppe“ am {when} ist ausgebucht (3 Plätze)."


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2032, 4, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def group(app, mine):
    """A 60-minute group service with 3 places (the module's employees and customer)."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, Service

    with app.app_context(), acting_as():
        service = Service(name="Welpengruppe", category="gruppe", duration_minutes=60, capacity=3,
                          price=Decimal("20.00"))
        db.session.add(service)
        db.session.commit()
        service_id = service.id
    yield service_id
    with app.app_context(), acting_as():
        db.session.execute(sa.delete(Booking).where(Booking.service_id == service_id))
        db.session.delete(db.session.get(Service, service_id))
        db.session.commit()


def _book_group(mine, group, start, *, employee="employee1", status="confirmed", resource=None) -> int:
    from app.extensions import db
    from app.models import Booking

    booking = Booking(customer_id=mine.customer, service_id=group, employee_id=getattr(mine, employee),
                      status_id=getattr(mine, status), resource_id=resource, start_at=start)
    db.session.add(booking)
    db.session.commit()
    return booking.id


def refusal(session, mine, group, start, **extra) -> str:
    from app.services.bookings import overlap_kind

    with pytest.raises(IntegrityError) as info:
        _book_group(mine, group, start, **extra)
    session.rollback()
    return overlap_kind(info.value)


def test_places_of_one_session_share_the_slot_up_to_the_capacity(ctx, mine, group):
    from app.models import Booking

    ids = [_book_group(mine, group, at(1, 9)) for _ in range(3)]
    assert all(ctx.get(Booking, pk).shared_slot for pk in ids)
    assert refusal(ctx, mine, group, at(1, 9)) == "capacity"  # the fourth place


def test_a_cancelled_place_frees_a_seat(ctx, mine, group):
    from app.models import Booking, BookingStatus

    ids = [_book_group(mine, group, at(2, 9)) for _ in range(3)]
    booking = ctx.get(Booking, ids[0])
    booking.status = ctx.get(BookingStatus, mine.cancelled)
    booking.cancel_reason = "krank"
    ctx.commit()
    _book_group(mine, group, at(2, 9))
    assert refusal(ctx, mine, group, at(2, 9)) == "capacity"
    # a cancelled place cannot come back into a full session
    booking = ctx.get(Booking, ids[0])
    booking.status = ctx.get(BookingStatus, mine.confirmed)
    with pytest.raises(IntegrityError):
        ctx.commit()
    ctx.rollback()


def test_other_overlaps_are_still_refused(ctx, mine, group):
    _book_group(mine, group, at(3, 9))
    assert refusal(ctx, mine, group, at(3, 9, 30)) == "employee"  # same group, other start
    with pytest.raises(IntegrityError):
        book(mine, at(3, 9, 15))  # a single booking inside the session
    ctx.rollback()
    _book_group(mine, group, at(3, 9), employee="employee2")  # another trainer runs a parallel session
    _book_group(mine, group, at(3, 11))  # later session of the same trainer


def test_single_booking_blocks_a_group_session_at_its_time(ctx, mine, group):
    book(mine, at(4, 9))
    assert refusal(ctx, mine, group, at(4, 9)) == "employee"


def test_shared_resource_for_one_session_only(ctx, mine, group):
    _book_group(mine, group, at(5, 9), resource=mine.room)
    _book_group(mine, group, at(5, 9), resource=mine.room)  # same session, same room
    assert refusal(ctx, mine, group, at(5, 9), employee="employee2", resource=mine.room) == "resource"


def test_full_session_answers_in_german_in_the_form(app, ctx, mine, group, manager):
    from app.formatting import fmt_datetime
    from app.models import Booking
    from tests.test_validation import assert_german_refusal, submit

    for _ in range(3):
        _book_group(mine, group, at(6, 9))
    html = submit(manager, "/bookingview/add", {
        "customer": mine.customer, "service": group, "employee": mine.employee1,
        "start_at": "2032-04-06 11:00:00", "comment": "Platz vier",  # 09:00 UTC = 11:00 in Berlin (CEST)
    }, "start_at")
    assert_german_refusal(html, FULL.format(when=fmt_datetime(at(6, 9))))
    assert ctx.scalar(sa.select(sa.func.count(Booking.id)).where(Booking.comment == "Platz vier")) == 0


def test_threads_race_for_the_last_places(app, mine, group):
    """The capacity holds under concurrency: 10 threads on PostgreSQL (6 on SQLite)
    race for the 3 places of one session → exactly 3 are stored."""
    threads = 10 if _backend(app) == "postgresql" else 6
    outcomes = race(app, mine, threads, at(20, 9), service=group)
    assert sorted(outcomes) == ["overlap_capacity"] * (threads - 3) + ["stored"] * 3, outcomes


def test_changing_to_a_group_service_makes_a_place(ctx, mine, group):
    from app.models import Booking, Service

    pk = book(mine, at(7, 9))
    booking = ctx.get(Booking, pk)
    assert booking.shared_slot is False
    booking.service = ctx.get(Service, group)
    ctx.commit()
    assert ctx.get(Booking, pk).shared_slot is True
    second = _book_group(mine, group, at(7, 9))  # now a session: a second place fits
    assert ctx.get(Booking, second).start_at == at(7, 9)


def test_a_session_with_places_left_is_offered_as_a_free_slot(app, ctx, mine, group, world):
    """World employee1 works Mon–Fri 9–18 (Berlin); 2032-04-13 is a Tuesday."""
    from app.models import Booking
    from app.services.availability import free_slots

    now = datetime(2032, 4, 1, tzinfo=timezone.utc)
    day = at(13, 9).date()
    before = {slot.start for slot in free_slots(group, day, day, world.employee1, now=now)}
    assert at(13, 9) in before and at(13, 9, 30) in before  # an empty day: every grid start

    def take_place() -> None:
        ctx.add(Booking(customer_id=mine.customer, service_id=group, employee_id=world.employee1,
                        status_id=mine.confirmed, start_at=at(13, 9)))
        ctx.commit()

    take_place()
    offered = {slot.start for slot in free_slots(group, day, day, world.employee1, now=now)}
    assert at(13, 9) in offered  # the session, 2 of 3 places left
    assert at(13, 9, 30) not in offered  # overlapping the session at another start: busy
    take_place()
    take_place()
    full = {slot.start for slot in free_slots(group, day, day, world.employee1, now=now)}
    assert at(13, 9) not in full and at(13, 10) in full
    # a single service of the same employee never joins the session
    assert at(13, 9) not in {slot.start for slot in free_slots(world.service, day, day, world.employee1, now=now)}
