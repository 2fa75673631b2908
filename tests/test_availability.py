"""Availability (app.services.availability.free_slots): working hours, bookings
and their buffers, cancellations, absences, resources, the employee filter, DST
days in Europe/Berlin, and a query count that does not grow with the range.

Everything here lives in 2031 on employees, services and a resource of its own,
so the session-wide world (2030) and other modules do not interfere."""
from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.services.availability import Slot, free_slots, local_to_utc

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
MONDAY = date(2031, 6, 2)  # a summer week (CEST, UTC+2), Mon–Fri
NEXT_MONDAY = MONDAY + timedelta(days=7)
NOW = datetime(2031, 1, 1, tzinfo=UTC)  # before everything tested here
SPRING, FALL = date(2031, 3, 30), date(2031, 10, 26)  # Sundays of the DST changes


def local(day: date, hour: int, minute: int = 0) -> datetime:
    """An aware UTC instant of a plain (non-DST-edge) local time."""
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN).astimezone(UTC)


def starts(slots: list[Slot], employee_id: int) -> list[str]:
    """The local HH:MM starts of one employee."""
    return [f"{s.start.astimezone(BERLIN):%H:%M}" for s in slots if s.employee_id == employee_id]


def grid(first: str, last: str, step: int = 15) -> list[str]:
    h, m = map(int, first.split(":"))
    current = datetime(2000, 1, 1, h, m)
    end = datetime.combine(current.date(), time.fromisoformat(last))
    out = []
    while current <= end:
        out.append(f"{current:%H:%M}")
        current += timedelta(minutes=step)
    return out


ALL_DAY = grid("09:00", "12:00")  # 09:00–13:00 block, 60-minute service


@pytest.fixture(scope="module")
def av(app, world):
    """Employees A and B (Mon–Fri 09:00–13:00), C (Sundays 01:00–04:00 and
    08:00–12:00), services plain/buffered/room, and the bookings and absences
    the tests below read."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Absence, Booking, BookingStatus, Customer, Employee, Resource, Service, WorkingHours

    ids: dict[str, int] = {}
    with app.app_context(), acting_as():
        room = Resource(name="AV Raum")
        a = Employee(first_name="Anke", last_name="Availability")
        b = Employee(first_name="Bodo", last_name="Availability")
        c = Employee(first_name="Carla", last_name="Zeitumstellung")
        plain = Service(name="AV Plain 60", duration_minutes=60, buffer_minutes=0, price=0)
        buffered = Service(name="AV Puffer 60+15", duration_minutes=60, buffer_minutes=15, price=0)
        in_room = Service(name="AV Raum 60", duration_minutes=60, buffer_minutes=0, price=0, resource=room)
        customer = Customer(first_name="Vera", last_name="Verfügbar")
        db.session.add_all([room, a, b, c, plain, buffered, in_room, customer])
        for emp in (a, b):
            for weekday in range(5):
                db.session.add(WorkingHours(employee=emp, weekday=weekday, start_time=time(9), end_time=time(13)))
        db.session.add_all([
            WorkingHours(employee=c, weekday=6, start_time=time(1), end_time=time(4)),
            WorkingHours(employee=c, weekday=6, start_time=time(8), end_time=time(12)),
        ])
        cancelled = db.session.scalars(
            sa.select(BookingStatus).where(BookingStatus.kind == "cancellation").order_by(BookingStatus.position)
        ).first()
        tue, wed, thu, fri = (MONDAY + timedelta(days=n) for n in (1, 2, 3, 4))
        db.session.add_all([
            # Tuesday: A busy 10:00–11:00 with a 15-minute buffer → occupied until 11:15
            Booking(customer=customer, service=buffered, employee=a, start_at=local(tue, 10)),
            # Wednesday: a cancelled booking 10:00–11:00 frees its slot
            Booking(customer=customer, service=plain, employee=a, start_at=local(wed, 10), status=cancelled,
                    cancel_reason="Kunde krank"),
            # Thursday: A absent from 10:30; Friday: A absent all day
            Absence(employee=a, kind="other", start_at=local(thu, 10, 30), end_at=local(thu, 23)),
            Absence(employee=a, kind="vacation", start_at=local(fri, 0), end_at=local(fri + timedelta(days=1), 0)),
            # next Monday: A holds the room 10:00–11:00
            Booking(customer=customer, service=in_room, employee=a, resource=room, start_at=local(NEXT_MONDAY, 10)),
        ])
        db.session.commit()
        ids.update(a=a.id, b=b.id, c=c.id, plain=plain.id, buffered=buffered.id, room=in_room.id,
                   resource=room.id, customer=customer.id)
    employees = [ids["a"], ids["b"], ids["c"]]
    yield {**ids, "employees": employees}
    # Leave the shared session database as found (other modules list bookings, employees, …).
    with app.app_context():
        db.session.execute(sa.delete(Booking).where(Booking.customer_id == ids["customer"]))
        db.session.execute(sa.delete(Absence).where(Absence.employee_id.in_(employees)))
        db.session.execute(sa.delete(WorkingHours).where(WorkingHours.employee_id.in_(employees)))
        db.session.execute(sa.delete(Employee).where(Employee.id.in_(employees)))
        db.session.execute(sa.delete(Service).where(Service.id.in_([ids["plain"], ids["buffered"], ids["room"]])))
        db.session.execute(sa.delete(Resource).where(Resource.id == ids["resource"]))
        db.session.execute(sa.delete(Customer).where(Customer.id == ids["customer"]))
        db.session.commit()


def test_simple_day(app_ctx, av):
    slots = free_slots(av["plain"], MONDAY, MONDAY, av["a"], tz=BERLIN, now=NOW)
    assert starts(slots, av["a"]) == ALL_DAY
    first = slots[0]
    assert first.start == datetime(2031, 6, 2, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert first.end - first.start == timedelta(minutes=60)
    assert first.start.tzinfo is not None and first.start.utcoffset() == timedelta(0)
    assert first.local_start.hour == 9  # app TIMEZONE is Europe/Berlin


def test_step_and_default_timezone(app_ctx, av):
    slots = free_slots(av["plain"], MONDAY, MONDAY, av["a"], step_minutes=60, now=NOW)
    assert starts(slots, av["a"]) == ["09:00", "10:00", "11:00", "12:00"]


def test_booking_and_both_buffers_block(app_ctx, av):
    tue = MONDAY + timedelta(days=1)
    # existing booking occupies 10:00–11:15 (its own 15-minute buffer)
    plain = free_slots(av["plain"], tue, tue, av["a"], tz=BERLIN, now=NOW)
    assert starts(plain, av["a"]) == ["09:00", *grid("11:15", "12:00")]
    # the new service's buffer too: 09:00 + 60 + 15 runs into 10:00
    buffered = free_slots(av["buffered"], tue, tue, av["a"], tz=BERLIN, now=NOW)
    assert starts(buffered, av["a"]) == grid("11:15", "12:00")
    # the colleague is unaffected
    assert starts(free_slots(av["plain"], tue, tue, av["b"], tz=BERLIN, now=NOW), av["b"]) == ALL_DAY


def test_cancelled_booking_frees_the_slot(app_ctx, av):
    wed = MONDAY + timedelta(days=2)
    assert starts(free_slots(av["plain"], wed, wed, av["a"], tz=BERLIN, now=NOW), av["a"]) == ALL_DAY


def test_absence_removes_part_and_whole_day(app_ctx, av):
    thu, fri = MONDAY + timedelta(days=3), MONDAY + timedelta(days=4)
    slots = free_slots(av["plain"], thu, fri, av["a"], tz=BERLIN, now=NOW)
    assert {s.start.astimezone(BERLIN).date() for s in slots} == {thu}
    assert starts(slots, av["a"]) == ["09:00", "09:15", "09:30"]


def test_resource_conflict_across_employees(app_ctx, av):
    day = NEXT_MONDAY
    room = free_slots(av["room"], day, day, av["b"], tz=BERLIN, now=NOW)
    assert starts(room, av["b"]) == ["09:00", *grid("11:00", "12:00")]
    # without the room B is free all day
    assert starts(free_slots(av["plain"], day, day, av["b"], tz=BERLIN, now=NOW), av["b"]) == ALL_DAY


def test_employee_filter_and_order(app_ctx, av):
    only_b = free_slots(av["plain"], MONDAY, MONDAY, av["b"], tz=BERLIN, now=NOW)
    assert only_b and {s.employee_id for s in only_b} == {av["b"]}
    everyone = free_slots(av["plain"], MONDAY, MONDAY, tz=BERLIN, now=NOW)
    assert {av["a"], av["b"]} <= {s.employee_id for s in everyone}
    assert av["c"] not in {s.employee_id for s in everyone}  # C works Sundays only
    assert everyone == sorted(everyone, key=lambda s: (s.start, s.employee_id))
    assert set(only_b) <= set(everyone)


def test_a_team_in_one_call_equals_its_members_one_by_one(app_ctx, av, statements):
    friday = MONDAY + timedelta(days=4)
    members = [free_slots(av["plain"], MONDAY, friday, emp, tz=BERLIN, now=NOW) for emp in (av["a"], av["b"])]
    one_by_one = sorted((slot for slots in members for slot in slots), key=lambda s: (s.start, s.employee_id))
    with statements() as count:
        team = free_slots(av["plain"], MONDAY, friday, employee_ids=[av["a"], av["b"]], tz=BERLIN, now=NOW)
    assert team == one_by_one and {s.employee_id for s in team} == {av["a"], av["b"]}
    assert count.n <= 4
    assert free_slots(av["plain"], MONDAY, friday, employee_ids=[], tz=BERLIN, now=NOW) == []


def test_empty_range_and_bad_arguments(app_ctx, av):
    assert free_slots(av["plain"], MONDAY, MONDAY - timedelta(days=1), tz=BERLIN, now=NOW) == []
    with pytest.raises(LookupError):
        free_slots(10**9, MONDAY, MONDAY, tz=BERLIN, now=NOW)
    with pytest.raises(ValueError):
        free_slots(av["plain"], MONDAY, MONDAY, now=datetime(2031, 1, 1))


def test_past_starts_left_out(app_ctx, av):
    now = local(MONDAY, 10, 7)
    slots = free_slots(av["plain"], MONDAY, MONDAY + timedelta(days=1), av["b"], tz=BERLIN, now=now)
    assert starts(slots, av["b"])[:3] == ["10:15", "10:30", "10:45"]
    assert all(s.start >= now for s in slots)
    exactly = free_slots(av["plain"], MONDAY, MONDAY, av["b"], tz=BERLIN, now=local(MONDAY, 10))
    assert starts(exactly, av["b"])[0] == "10:00"


def _by_block(slots: list[Slot]) -> tuple[list[Slot], list[Slot]]:
    night = [s for s in slots if s.start.astimezone(BERLIN).hour < 6]
    morning = [s for s in slots if s.start.astimezone(BERLIN).hour >= 6]
    return night, morning


def _assert_clean(slots: list[Slot]) -> None:
    utc_starts = [s.start for s in slots]
    assert len(utc_starts) == len(set(utc_starts)), "a start appears twice"
    assert utc_starts == sorted(utc_starts)
    for s in slots:
        wall = s.start.astimezone(BERLIN)
        # every local start exists: it maps back to the same instant
        assert wall.replace(tzinfo=None).replace(tzinfo=BERLIN, fold=wall.fold).astimezone(UTC) == s.start
        assert s.end - s.start == timedelta(minutes=60)


def test_dst_spring_forward(app_ctx, av):
    before = SPRING - timedelta(days=7)
    slots = free_slots(av["plain"], before, SPRING, av["c"], tz=BERLIN, now=NOW)
    _assert_clean(slots)
    normal = [s for s in slots if s.start.astimezone(BERLIN).date() == before]
    change = [s for s in slots if s.start.astimezone(BERLIN).date() == SPRING]
    assert len(slots) == len(normal) + len(change)
    normal_night, normal_morning = _by_block(normal)
    night, morning = _by_block(change)
    # 08:00–12:00: same count, 08:00 local is 07:00 UTC before (CET) and 06:00 UTC on the day (CEST)
    assert len(morning) == len(normal_morning) == 13
    assert normal_morning[0].start == datetime(2031, 3, 23, 7, tzinfo=UTC)
    assert morning[0].start == datetime(2031, 3, 30, 6, tzinfo=UTC)
    assert starts(morning, av["c"]) == starts(normal_morning, av["c"]) == grid("08:00", "11:00")
    # 01:00–04:00 has only two real hours: nothing starts in the missing 02:00–03:00
    assert starts(normal_night, av["c"]) == grid("01:00", "03:00")
    assert starts(night, av["c"]) == ["01:00", "01:15", "01:30", "01:45", "03:00"]
    assert night[-1].start == datetime(2031, 3, 30, 1, tzinfo=UTC)
    assert night[-1].end == datetime(2031, 3, 30, 2, tzinfo=UTC)  # = 04:00 CEST, the block end


def test_dst_fall_back(app_ctx, av):
    before = FALL - timedelta(days=7)
    slots = free_slots(av["plain"], before, FALL, av["c"], tz=BERLIN, now=NOW)
    _assert_clean(slots)
    normal = [s for s in slots if s.start.astimezone(BERLIN).date() == before]
    change = [s for s in slots if s.start.astimezone(BERLIN).date() == FALL]
    _, normal_morning = _by_block(normal)
    night, morning = _by_block(change)
    assert len(morning) == len(normal_morning) == 13
    assert normal_morning[0].start == datetime(2031, 10, 19, 6, tzinfo=UTC)  # CEST
    assert morning[0].start == datetime(2031, 10, 26, 7, tzinfo=UTC)  # CET
    assert starts(morning, av["c"]) == grid("08:00", "11:00")
    # 01:00 CEST (23:00 UTC the day before) to 04:00 CET (03:00 UTC): four real hours,
    # every 15 minutes of real time, the repeated 02:xx once per offset, no duplicate
    assert night[0].start == datetime(2031, 10, 25, 23, tzinfo=UTC)
    assert night[-1].start == datetime(2031, 10, 26, 2, tzinfo=UTC)
    assert [s.start for s in night] == [night[0].start + timedelta(minutes=15 * i) for i in range(13)]
    repeated = [s for s in night if s.start.astimezone(BERLIN).hour == 2]
    assert len(repeated) == 8
    assert {s.start.astimezone(BERLIN).utcoffset() for s in repeated} == {timedelta(hours=1), timedelta(hours=2)}


def test_local_to_utc_edges():
    # nonexistent 02:30 on the spring day → the jump (03:00 CEST = 01:00 UTC)
    assert local_to_utc(SPRING, time(2, 30), BERLIN) == datetime(2031, 3, 30, 1, tzinfo=UTC)
    assert local_to_utc(SPRING, time(2, 0), BERLIN) == datetime(2031, 3, 30, 1, tzinfo=UTC)
    # ambiguous 02:30 on the autumn day → its first occurrence (CEST)
    assert local_to_utc(FALL, time(2, 30), BERLIN) == datetime(2031, 10, 26, 0, 30, tzinfo=UTC)
    assert local_to_utc(MONDAY, time(9), BERLIN) == datetime(2031, 6, 2, 7, tzinfo=UTC)


def test_query_count_constant_in_days(app_ctx, av, statements):
    free_slots(av["room"], MONDAY, MONDAY, tz=BERLIN, now=NOW)  # warm-up
    counts = []
    for days in (1, 14, 60):
        with statements() as count:
            free_slots(av["room"], MONDAY, MONDAY + timedelta(days=days - 1), tz=BERLIN, now=NOW)
        counts.append(count.n)
    assert counts[0] == counts[1] == counts[2] <= 4, counts


def _reference(service: dict, hours: dict, busy: dict, room_busy: list, days: list[date], step: int) -> set:
    """Brute force: every candidate against every interval."""
    out = set()
    occupied = timedelta(minutes=service["duration"] + service["buffer"])
    for emp, (h_from, h_to) in hours.items():
        for day in days:
            if day.weekday() >= 5:
                continue
            t, last = local(day, h_from), local(day, h_to) - timedelta(minutes=service["duration"])
            while t <= last:
                window = (t, t + occupied)
                spans = busy.get(emp, []) + (room_busy if service["room"] else [])
                if all(not (window[0] < e and s < window[1]) for s, e in spans):
                    out.add((emp, t))
                t += timedelta(minutes=step)
    return out


def test_matches_brute_force_under_load(app_ctx, av, statements):
    """Ten employees, two weeks, a realistic booking load (some cancelled, some on the room),
    checked against a brute-force reference. Also prints the time, without asserting it."""
    import time as clock

    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, BookingStatus, Employee, WorkingHours

    rng = random.Random(7)
    first = date(2031, 9, 1)  # a Monday
    days = [first + timedelta(days=i) for i in range(14)]
    services = {
        av["plain"]: {"duration": 60, "buffer": 0, "room": False},
        av["buffered"]: {"duration": 60, "buffer": 15, "room": False},
        av["room"]: {"duration": 60, "buffer": 0, "room": True},
    }
    statuses = dict(db.session.execute(sa.select(BookingStatus.kind, BookingStatus.id)).all())
    with acting_as():
        team = [Employee(first_name=f"Last{i}", last_name="Availability") for i in range(10)]
        db.session.add_all(team)
        db.session.flush()
        av["employees"].extend(emp.id for emp in team)  # removed with the module's data
        hours = {}
        for emp in team:
            h_from, h_to = rng.choice([(8, 16), (9, 18), (10, 19)])
            hours[emp.id] = (h_from, h_to)
            db.session.add_all([WorkingHours(employee_id=emp.id, weekday=d, start_time=time(h_from),
                                             end_time=time(h_to)) for d in range(5)])
        busy: dict[int, list] = {}
        room_busy: list = []
        for emp in team:
            for day in days:
                if day.weekday() >= 5:
                    continue
                t, day_end = local(day, hours[emp.id][0]), local(day, hours[emp.id][1])
                while True:
                    t += timedelta(minutes=rng.choice([0, 15, 30, 45, 60]))
                    if t + timedelta(minutes=75) > day_end:  # stay inside working hours, buffer included
                        break
                    service_id = rng.choice(list(services))
                    spec = services[service_id]
                    kind = "cancellation" if rng.random() < 0.15 else "confirmation"
                    end = t + timedelta(minutes=spec["duration"])
                    span = (t, end + timedelta(minutes=spec["buffer"]))
                    if spec["room"] and any(s < span[1] and span[0] < e for s, e in room_busy):
                        service_id, spec = av["plain"], services[av["plain"]]
                        span = (t, end)
                    db.session.add(Booking(customer_id=av["customer"], service_id=service_id, employee_id=emp.id,
                                           resource_id=av["resource"] if spec["room"] else None,
                                           status_id=statuses[kind], start_at=t, end_at=end,
                                           cancel_reason="Test" if kind == "cancellation" else None))
                    if kind != "cancellation":
                        busy.setdefault(emp.id, []).append(span)
                        if spec["room"]:
                            room_busy.append(span)
                    t = span[1]
        db.session.commit()
    # the fixture's room booking on NEXT_MONDAY is outside these days; A/B/C are filtered out below
    for service_id, spec in services.items():
        started = clock.perf_counter()
        with statements() as count:
            slots = free_slots(service_id, days[0], days[-1], tz=BERLIN, now=NOW)
        elapsed = (clock.perf_counter() - started) * 1000
        print(f"availability {service_id}: {len(slots)} slots, {count.n} queries, {elapsed:.1f} ms")
        got = {(s.employee_id, s.start) for s in slots if s.employee_id in hours}
        assert got == _reference(spec, hours, busy, room_busy, days, 15)
