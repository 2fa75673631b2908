"""Availability: the free start times of a service over a range of local days.

`free_slots()` is the one entry point (back-office booking form, later the
public request form). It answers from four queries whatever the range or the
number of employees: the service, the working hours of the active employees,
their absences and the bookings that can touch the range.

Rules, kept deliberately simple:

* Working hours are local wall-clock blocks in the business time zone. A block
  boundary that does not exist (spring-forward gap) is moved to the first
  instant after the gap; an ambiguous one (autumn) means its first occurrence.
  Candidates step through *real* time from the block start, so no start falls in
  the gap and none is produced twice in the repeated hour.
* A candidate start `s` needs `s + duration <= block end`. It occupies
  `[s, s + duration + buffer)` of the service.
* An existing non-cancelled booking occupies `[start_at, end_at + buffer of its
  own service)` for its employee, and the same span for its resource
  (`booking.resource_id`). Any overlap blocks: one employee and one resource
  hold one booking at a time (no group capacity here; that matches the
  no-double-booking rule). Cancelled bookings (`booking.cancelled`, i.e. status
  kind "cancellation") free their slot.
* Absences block their employee over `[start_at, end_at)`.
* Starts before `now` are left out.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from app.models import Absence, Booking, Employee, Service, WorkingHours

UTC = timezone.utc
# Bookings that started this long before the range (at least) are still looked
# at; the longest service (duration + buffer) widens it. Keeps the booking query
# an index range scan instead of a walk through all history.
MIN_LOOKBEHIND = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Slot:
    """A free start: employee, start and end (start + service duration), aware UTC."""

    employee_id: int
    start: datetime
    end: datetime

    @property
    def local_start(self) -> datetime:
        """The start in the business time zone (needs an app context)."""
        from app.formatting import to_local

        return to_local(self.start)


def local_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of the local wall-clock time `wall` on `day`.

    Ambiguous (repeated hour): the first occurrence. Nonexistent (skipped hour):
    the instant the clocks jump, i.e. the first valid instant after the gap.
    """
    local = datetime.combine(day, wall, tzinfo=tz)  # fold=0
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # In the gap: fold=0 and fold=1 read it with the offsets before and after the
    # transition; the transition lies between them. Bisect to the second.
    other = local.replace(fold=1).astimezone(UTC)
    lo, hi = int(min(instant, other).timestamp()), int(max(instant, other).timestamp())
    offset_before = datetime.fromtimestamp(lo, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset_before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


class Intervals:
    """Disjoint, sorted intervals (overlapping or touching ones merged) with O(log n)
    tests: `free` (overlaps none) and `covers` (lies inside one)."""

    __slots__ = ("ends", "starts")

    def __init__(self, spans: Iterable[tuple[datetime, datetime]]) -> None:
        self.starts: list[datetime] = []
        self.ends: list[datetime] = []
        for start, end in sorted(spans):
            if self.ends and start <= self.ends[-1]:
                if end > self.ends[-1]:
                    self.ends[-1] = end
            else:
                self.starts.append(start)
                self.ends.append(end)

    def free(self, start: datetime, end: datetime) -> bool:
        """True when [start, end) overlaps no interval."""
        i = bisect.bisect_left(self.starts, end) - 1
        return i < 0 or self.ends[i] <= start

    def covers(self, start: datetime, end: datetime) -> bool:
        """True when [start, end) lies inside one (merged) interval."""
        i = bisect.bisect_right(self.starts, start) - 1
        return i >= 0 and self.ends[i] >= end


_NOTHING_BUSY = Intervals(())

WeeklyHours = dict[int, list[tuple[time, time]]]  # weekday (0 = Monday) → local (start, end) blocks


def weekly_hours(session, employee_ids) -> dict[int, WeeklyHours]:
    """The working blocks of the employees (a list of ids or a select of ids) by weekday."""
    hours: dict[int, WeeklyHours] = defaultdict(lambda: defaultdict(list))
    for emp, weekday, block_start, block_end in session.execute(
        select(WorkingHours.employee_id, WorkingHours.weekday, WorkingHours.start_time, WorkingHours.end_time)
        .where(WorkingHours.employee_id.in_(employee_ids))
    ):
        hours[emp][weekday].append((block_start, block_end))
    return hours


def absences_between(session, employee_ids, lo: datetime, hi: datetime) -> list[tuple[int, datetime, datetime, str]]:
    """(employee_id, start, end, kind) of the absences overlapping [lo, hi), earliest first."""
    return [tuple(row) for row in session.execute(
        select(Absence.employee_id, Absence.start_at, Absence.end_at, Absence.kind)
        .where(Absence.employee_id.in_(employee_ids), Absence.start_at < hi, Absence.end_at > lo)
        .order_by(Absence.start_at)
    )]


def day_blocks(day: date, week: WeeklyHours, tz: ZoneInfo,
               cache: dict[tuple[date, time, time], tuple[datetime, datetime]] | None = None,
               ) -> list[tuple[datetime, datetime]]:
    """The working blocks of `week` on the local `day` as UTC instants (DST-safe)."""
    blocks = []
    for block_start, block_end in week.get(day.weekday(), ()):
        key = (day, block_start, block_end)
        span = cache.get(key) if cache is not None else None
        if span is None:
            span = (local_to_utc(day, block_start, tz), local_to_utc(day, block_end, tz))
            if cache is not None:
                cache[key] = span
        blocks.append(span)
    return blocks


def free_slots(
    service_id: int,
    start: date,
    end: date,
    employee_id: int | None = None,
    *,
    step_minutes: int = 15,
    tz: ZoneInfo | None = None,
    now: datetime | None = None,
    session=None,
    exclude_booking_id: int | None = None,
    employee_ids: Collection[int] | None = None,
) -> list[Slot]:
    """Free start times for `service_id` on the local days `start`..`end` (inclusive),
    for every active employee, only `employee_id`, or only `employee_ids` (one call for a
    team: the same four queries), sorted by (start, employee_id). For a group service
    (capacity > 1) the start of an existing session with places left is free too.

    `tz` defaults to the business time zone (app config TIMEZONE), `now` (aware) to
    the current time, `session` to the app's session. `exclude_booking_id`: a booking
    that does not count as busy (the one being moved or edited). Raises LookupError for an
    unknown service and ValueError for a non-positive step or a naive `now`.
    """
    if step_minutes <= 0:
        raise ValueError("step_minutes must be positive")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if session is None:
        from app.extensions import db

        session = db.session
    if tz is None:
        from app.formatting import business_tz

        tz = business_tz()
    if end < start:
        return []

    # 1. the service, and the longest span any service occupies (for the look-behind)
    longest = select(func.max(Service.duration_minutes + Service.buffer_minutes)).scalar_subquery()
    row = session.execute(
        select(Service.duration_minutes, Service.buffer_minutes, Service.resource_id, longest, Service.capacity)
        .where(Service.id == service_id)
    ).first()
    if row is None:
        raise LookupError(f"service {service_id} not found")
    duration = timedelta(minutes=row[0])
    buffer = timedelta(minutes=row[1] or 0)
    resource_id: int | None = row[2]
    lookbehind = max(MIN_LOOKBEHIND, timedelta(minutes=row[3] or 0))
    capacity = row[4] or 1

    range_lo = local_to_utc(start, time(0), tz)
    range_hi = local_to_utc(end + timedelta(days=1), time(0), tz) + buffer

    # 2. working hours of the active employees
    employees = select(Employee.id).where(Employee.active.is_(True))
    if employee_id is not None:
        employees = employees.where(Employee.id == employee_id)
    if employee_ids is not None:
        employees = employees.where(Employee.id.in_(list(employee_ids)))
    hours = weekly_hours(session, employees)
    if not hours:
        return []
    employee_ids = sorted(hours)

    # 3. absences touching the range
    spans: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for emp, absent_from, absent_to, _kind in absences_between(session, employee_ids, range_lo, range_hi):
        spans[emp].append((absent_from, absent_to))

    # 4. non-cancelled bookings of these employees, or on the service's resource
    owner = Booking.employee_id.in_(employee_ids)
    if resource_id is not None:
        owner = or_(owner, Booking.resource_id == resource_id)
    query = (
        select(Booking.employee_id, Booking.resource_id, Booking.start_at, Booking.end_at,
               Service.buffer_minutes, Booking.service_id, Booking.shared_slot)
        .join(Service, Service.id == Booking.service_id)
        .where(owner, Booking.start_at < range_hi, Booking.start_at >= range_lo - lookbehind,
               Booking.end_at > range_lo - lookbehind)
    )
    if exclude_booking_id is not None:
        query = query.where(Booking.id != exclude_booking_id)
    query = query.where(Booking.cancelled.is_(False))  # mirrors the status kind (booking model)
    resource_spans: list[tuple[datetime, datetime]] = []
    places: dict[tuple[int, datetime], int] = defaultdict(int)  # group sessions of this service
    for emp, res, booked_from, booked_to, booked_buffer, booked_service, shared in session.execute(query):
        span = (booked_from, booked_to + timedelta(minutes=booked_buffer or 0))
        if emp is not None:
            spans[emp].append(span)
            if shared and booked_service == service_id and emp in hours:
                places[(emp, booked_from)] += 1
        if resource_id is not None and res == resource_id:
            resource_spans.append(span)

    resource_busy = Intervals(resource_spans)
    step = timedelta(minutes=step_minutes)
    occupied = duration + buffer
    blocks_utc: dict[tuple[date, time, time], tuple[datetime, datetime]] = {}
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    slots: list[Slot] = []
    for emp in employee_ids:
        busy = Intervals(spans[emp]) if emp in spans else _NOTHING_BUSY
        week = hours[emp]
        for day in days:
            for first, last in day_blocks(day, week, tz, blocks_utc):
                last -= duration  # the latest possible start
                candidate = first
                if candidate < now:
                    candidate += -((first - now) // step) * step  # first grid point >= now
                while candidate <= last:
                    until = candidate + occupied
                    if busy.free(candidate, until) and resource_busy.free(candidate, until):
                        slots.append(Slot(emp, candidate, candidate + duration))
                    candidate += step
    # A group session with places left is a free start too (its participants share the slot).
    last_start = local_to_utc(end + timedelta(days=1), time(0), tz)
    if capacity > 1:
        slots.extend(
            Slot(emp, session_start, session_start + duration)
            for (emp, session_start), taken in places.items()
            if taken < capacity and now <= session_start and range_lo <= session_start < last_start
        )
    # Overlapping blocks of one employee must not yield the same start twice.
    return sorted(set(slots), key=lambda slot: (slot.start, slot.employee_id))
