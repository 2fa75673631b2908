"""Kalender: day and week views per location, "Mein Kalender" and the ICS feed.

Bookings are placed by the business's local wall-clock time (a DST day has 23 or
25 hours; a 10:00 booking sits at 10:00). Every query goes through the row rules:
an Employee sees their own column and bookings only, in every view."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from flask import Response, abort, flash, g, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from sqlalchemy import inspect, or_, select
from sqlalchemy.orm import joinedload
from sqlalchemy.sql import ColumnElement

from app.extensions import db
from app.formatting import business_tz, fmt_datetime, status_badge, status_colors, to_local
from app.models import Booking, Employee, Location
from app.models.staff import ABSENCE_KINDS, WEEKDAYS, Absence, CalendarFeed
from app.security import restrict
from app.services.ics import feed_bookings, feed_employee, issue_feed, render_calendar, revoke_feed
from app.views.validators import parse_id

FIRST_HOUR, LAST_HOUR = 7, 21
MAX_BOOKING_SPAN = timedelta(days=1)  # lets the range query use ix_booking_start
MIN_BLOCK_MINUTES = 15  # one line of text (time and customer) still fits
SHORT_BLOCK_MINUTES = 45  # shorter blocks show time and customer on one line
MAX_TOKEN_LENGTH = 100
MIN_YEAR, MAX_YEAR = 1900, 2200


# --- the grid ---------------------------------------------------------------------
@dataclass
class Block:
    booking: Booking
    start: int  # minutes after local midnight of the column's day (wall clock)
    end: int
    lane: int = 0
    lanes: int = 1

    @property
    def colors(self) -> tuple[str, str]:
        return status_colors(self.booking.status)

    @property
    def short(self) -> bool:
        return self.end - self.start < SHORT_BLOCK_MINUTES


@dataclass
class Shade:
    """A shaded span of a column: an absence (labelled with its kind) or time outside
    the working hours."""

    start: int
    end: int
    kind: str  # "absence" or "off"
    label: str = ""
    title: str = ""


@dataclass
class Column:
    day: date
    employee: Employee | None
    blocks: list[Block] = field(default_factory=list)
    shades: list[Shade] = field(default_factory=list)

    @property
    def absent(self) -> bool:
        return any(shade.kind == "absence" for shade in self.shades)


@dataclass
class Grid:
    days: list[date]
    employees: list[Employee | None]
    columns: list[Column]
    first_hour: int = FIRST_HOUR
    last_hour: int = LAST_HOUR

    @property
    def hours(self) -> list[int]:
        return list(range(self.first_hour, self.last_hour))

    @property
    def height(self) -> int:
        return (self.last_hour - self.first_hour) * 60

    def top(self, block: Block) -> int:
        return block.start - self.first_hour * 60

    def block_height(self, block: Block) -> int:
        return max(block.end - block.start, MIN_BLOCK_MINUTES)

    def shade_style(self, shade: Shade) -> str:
        """Top and height of a shade, cut to the hours the grid shows."""
        first = max(shade.start, self.first_hour * 60)
        last = min(shade.end, self.last_hour * 60)
        return f"top: {first - self.first_hour * 60}px; height: {max(last - first, 0)}px;"

    def visible(self, shade: Shade) -> bool:
        return min(shade.end, self.last_hour * 60) > max(shade.start, self.first_hour * 60)

    @property
    def statuses(self) -> list:
        """The statuses shown, for the legend."""
        found = {block.booking.status.id: block.booking.status for col in self.columns for block in col.blocks}
        return sorted(found.values(), key=lambda status: status.position)


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=business_tz())


def utc_range(first: date, days: int) -> tuple[datetime, datetime]:
    """UTC bounds of local days (each 23, 24 or 25 hours long)."""
    return (local_midnight(first).astimezone(timezone.utc),
            local_midnight(first + timedelta(days=days)).astimezone(timezone.utc))


def wall_minutes(booking: Booking | Absence, day: date) -> tuple[int, int] | None:
    """Start and end of the booking (or absence) on `day` in minutes after local midnight,
    by the wall clock where it starts; its real duration decides the length. None when
    it does not touch the day."""
    start, end = to_local(booking.start_at), to_local(booking.end_at)
    if start.date() > day or end <= local_midnight(day):
        return None
    if start.date() == day:
        first = start.hour * 60 + start.minute
        last = first + int((booking.end_at - booking.start_at).total_seconds() // 60)
    else:
        first = 0
        last = end.hour * 60 + end.minute if end.date() == day else 24 * 60
    return first, min(last, 24 * 60)


def assign_lanes(blocks: list[Block]) -> None:
    """Overlapping blocks (a cancelled one under its replacement) side by side."""
    ends: list[int] = []
    for block in sorted(blocks, key=lambda b: (b.start, b.end)):
        block.lane = next((i for i, end in enumerate(ends) if end <= block.start), len(ends))
        if block.lane == len(ends):
            ends.append(block.end)
        else:
            ends[block.lane] = block.end
    for block in blocks:
        block.lanes = max(len(ends), 1)


def build_grid(days: list[date], employees: list[Employee], bookings: list[Booking]) -> Grid:
    columns_of = list(employees)
    known = {employee.id for employee in employees}
    for booking in bookings:  # an employee of another location with a booking here, or none
        if booking.employee_id not in known:
            known.add(booking.employee_id)
            columns_of.append(booking.employee)
    columns = {(day, emp.id if emp else None): Column(day, emp) for day in days for emp in columns_of}
    grid = Grid(days, columns_of, list(columns.values()))
    for booking in bookings:
        for day in days:
            span = wall_minutes(booking, day)
            if span is None:
                continue
            columns[(day, booking.employee_id)].blocks.append(Block(booking, *span))
            grid.first_hour = min(grid.first_hour, span[0] // 60)
            grid.last_hour = max(grid.last_hour, -(-span[1] // 60))
    for column in grid.columns:
        assign_lanes(column.blocks)
    return grid


def off_hours(employee: Employee, day: date) -> list[tuple[int, int]]:
    """The minutes of `day` outside the employee's working hours; none when no working
    hours are known (not entered, or not loaded — loading them here would cost a query
    per column)."""
    if "working_hours" in inspect(employee).unloaded or not employee.working_hours:
        return []
    spans = sorted((wh.start_time.hour * 60 + wh.start_time.minute, wh.end_time.hour * 60 + wh.end_time.minute)
                   for wh in employee.working_hours if wh.weekday == day.weekday())
    gaps, cursor = [], 0
    for first, last in spans:
        if first > cursor:
            gaps.append((cursor, first))
        cursor = max(cursor, last)
    if cursor < 24 * 60:
        gaps.append((cursor, 24 * 60))
    return gaps


def add_shades(grid: Grid, absences: list[Absence]) -> None:
    """Shade absences and the time outside the working hours in each employee's column."""
    off_label = _("außerhalb der Arbeitszeit")
    for column in grid.columns:
        if column.employee is None:
            continue
        shades = [Shade(first, last, "off", title=off_label) for first, last in off_hours(column.employee, column.day)]
        for absence in absences:
            span = wall_minutes(absence, column.day) if absence.employee_id == column.employee.id else None
            if span is not None:
                kind = str(ABSENCE_KINDS.get(absence.kind, absence.kind))
                title = f"{kind}: {fmt_datetime(absence.start_at)} – {fmt_datetime(absence.end_at)}"
                shades.append(Shade(*span, "absence", kind, title))
        column.shades = [shade for shade in shades if grid.visible(shade)]


# --- queries ----------------------------------------------------------------------
def absences_between(start: datetime, end: datetime, employee_ids: list[int]) -> list[Absence]:
    """One statement: the absences of these employees touching [start, end), by the row rules."""
    if not employee_ids:
        return []
    stmt = (select(Absence).where(Absence.employee_id.in_(employee_ids), Absence.start_at < end,
                                  Absence.end_at > start).order_by(Absence.start_at))
    return list(db.session.scalars(restrict(stmt, Absence)))


def shaded_grid(days: list[date], employees: list[Employee], bookings: list[Booking]) -> Grid:
    grid = build_grid(days, employees, bookings)
    start, end = utc_range(days[0], len(days))
    add_shades(grid, absences_between(start, end, [emp.id for emp in grid.employees if emp is not None]))
    return grid


def bookings_between(start: datetime, end: datetime, where: ColumnElement[bool], show_cancelled: bool
                     ) -> list[Booking]:
    """One statement: the bookings touching [start, end) that the user may see, with
    customer, service, status and employee loaded."""
    stmt = (
        select(Booking)
        .options(joinedload(Booking.customer), joinedload(Booking.service), joinedload(Booking.status),
                 joinedload(Booking.employee))
        .where(Booking.start_at >= start - MAX_BOOKING_SPAN, Booking.start_at < end, Booking.end_at > start, where)
        .order_by(Booking.start_at)
    )
    if not show_cancelled:
        stmt = stmt.where(Booking.cancelled.is_(False))
    return list(db.session.scalars(restrict(stmt, Booking)).unique())


def location_employees(location_id: int) -> list[Employee]:
    """The active employees of the location, their working hours loaded in the same statement."""
    stmt = (select(Employee).options(joinedload(Employee.working_hours))
            .where(Employee.location_id == location_id, Employee.active.is_(True)))
    return list(db.session.scalars(restrict(stmt.order_by(Employee.last_name, Employee.first_name), Employee))
                .unique())


def at_location(location_id: int) -> ColumnElement[bool]:
    """Bookings of the location's employees, and bookings held at the location."""
    staff = select(Employee.id).where(Employee.location_id == location_id)
    return or_(Booking.employee_id.in_(staff), Booking.location_id == location_id)


def own_employee() -> Employee | None:
    user = g.user
    if not user:
        return None
    stmt = select(Employee).options(joinedload(Employee.working_hours)).where(Employee.user_id == user.id)
    return db.session.scalars(stmt).unique().first()


# --- request arguments --------------------------------------------------------------
def today() -> date:
    return to_local(datetime.now(timezone.utc)).date()


def requested_day() -> date:
    value = request.args.get("datum", "").strip()
    if not value:
        return today()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or not MIN_YEAR <= day.year <= MAX_YEAR:  # date.min/max: no day before/after
        abort(400, _("Ungültiges Datum."))
    return day


def show_cancelled() -> bool:
    return request.args.get("storniert") == "1"


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def day_label(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day:%d.%m.%Y}"


def navigation(endpoint: str, day: date, step: int, **args) -> dict[str, str]:
    """Links to the previous/next day or week and to today, keeping the other arguments."""
    args = {key: value for key, value in args.items() if value not in (None, "", False)}
    return {
        "previous": url_for(endpoint, datum=(day - timedelta(days=step)).isoformat(), **args),
        "next": url_for(endpoint, datum=(day + timedelta(days=step)).isoformat(), **args),
        "today": url_for(endpoint, **args),
    }


def fmt_time(value: datetime) -> str:
    return f"{to_local(value):%H:%M}"


GRID_HELPERS = {"day_label": day_label, "fmt_time": fmt_time, "status_badge": status_badge}


class CalendarView(BaseView):
    """Kalender of a location: day and week, employees as columns."""

    route_base = "/kalender"
    default_view = "index"
    method_permission_name = {"index": "index", "week": "index", "feeds": "feeds"}
    template = "terminbuch/calendar_location.html"

    def _location(self, locations: list[Location]) -> Location | None:
        value = request.args.get("filiale", "").strip()
        if value:
            location_id = parse_id(value)
            if location_id is None:
                abort(400, _("Ungültige Filiale."))
            chosen = next((loc for loc in locations if loc.id == location_id), None)
            if chosen is None:
                abort(404)
            return chosen
        own = own_employee()
        preferred = own.location_id if own is not None else None
        return next((loc for loc in locations if loc.id == preferred), locations[0] if locations else None)

    def _render(self, mode: str, first: date, days: int, anchor: date):
        locations = list(db.session.scalars(
            select(Location).where(Location.active.is_(True)).order_by(Location.name)))
        location = self._location(locations)
        grid = None
        if location is not None:
            start, end = utc_range(first, days)
            bookings = bookings_between(start, end, at_location(location.id), show_cancelled())
            grid = shaded_grid([first + timedelta(days=i) for i in range(days)],
                               location_employees(location.id), bookings)
        endpoint = "CalendarView.index" if mode == "day" else "CalendarView.week"
        args = {"filiale": location.id if location else None, "storniert": "1" if show_cancelled() else None}
        return self.render_template(
            self.template, mode=mode, grid=grid, locations=locations, location=location, anchor=anchor,
            first=first, days=days, show_cancelled=show_cancelled(), nav=navigation(endpoint, anchor, days, **args),
            title=_("Kalender"), **GRID_HELPERS, can_feeds=self.appbuilder.sm.has_access("can_feeds", "CalendarView"),
        )

    @expose("/")
    @has_access
    def index(self):
        day = requested_day()
        return self._render("day", day, 1, day)

    @expose("/woche")
    @has_access
    def week(self):
        day = requested_day()
        return self._render("week", week_start(day), 7, day)

    @expose("/links", methods=["GET", "POST"])
    @has_access
    def feeds(self):
        """Managers see which employees have a feed link and revoke one (POST, CSRF)."""
        if request.method == "POST":
            employee_id = parse_id(request.form.get("employee_id"))
            if employee_id is None:
                abort(400)
            if revoke_feed(db.session, employee_id):
                db.session.commit()
                flash(_("Der Kalender-Link wurde widerrufen."), "success")
            else:
                flash(_("Diese Mitarbeiter:in hat keinen Kalender-Link."), "warning")
            return redirect(url_for("CalendarView.feeds"))
        employees = db.session.scalars(
            restrict(select(Employee).options(joinedload(Employee.location)), Employee)
            .order_by(Employee.last_name, Employee.first_name)).all()
        feeds = {feed.employee_id: feed for feed in db.session.scalars(select(CalendarFeed))}
        return self.render_template("terminbuch/calendar_feeds.html", employees=employees, feeds=feeds,
                                    fmt_datetime=fmt_datetime, title=_("Kalender-Links"))

    @expose("/ics/<token>.ics")
    def ics(self, token: str):
        """The read-only feed: public, opened by the secret token alone; any unknown
        token is a plain 404."""
        employee = feed_employee(db.session, token) if len(token) <= MAX_TOKEN_LENGTH else None
        if employee is None:
            abort(404)
        now = datetime.now(timezone.utc)
        text = render_calendar(f"Terminbuch – {employee.full_name}", feed_bookings(db.session, employee.id, now), now)
        response = Response(text, mimetype="text/calendar")
        response.headers["Content-Disposition"] = 'inline; filename="terminbuch.ics"'
        response.headers["Cache-Control"] = "private, no-cache"
        response.headers["X-Robots-Tag"] = "noindex"
        return response


class MyCalendarView(BaseView):
    """Mein Kalender: the own bookings of the logged-in employee, and their feed link."""

    route_base = "/mein-kalender"
    default_view = "index"
    template = "terminbuch/calendar_mine.html"

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        employee = own_employee()
        token = None
        if request.method == "POST":
            if employee is None:  # the page explains why there is no own calendar
                return redirect(url_for("MyCalendarView.index"))
            token = self._change_feed(employee)
            if token is None:
                return redirect(url_for("MyCalendarView.index"))
        mode = "day" if request.args.get("ansicht") == "tag" else "week"
        anchor = requested_day()
        first, days = (anchor, 1) if mode == "day" else (week_start(anchor), 7)
        grid = None
        if employee is not None:
            start, end = utc_range(first, days)
            bookings = bookings_between(start, end, Booking.employee_id == employee.id, show_cancelled())
            grid = shaded_grid([first + timedelta(days=i) for i in range(days)], [employee], bookings)
        args = {"ansicht": "tag" if mode == "day" else None, "storniert": "1" if show_cancelled() else None}
        feed = db.session.get(CalendarFeed, employee.id) if employee is not None else None
        return self.render_template(
            self.template, mode=mode, grid=grid, employee=employee, anchor=anchor, first=first, days=days,
            show_cancelled=show_cancelled(), nav=navigation("MyCalendarView.index", anchor, days, **args),
            fmt_datetime=fmt_datetime, **GRID_HELPERS,
            feed=feed, feed_url=url_for("CalendarView.ics", token=token, _external=True) if token else None,
            title=_("Mein Kalender"),
        )

    @staticmethod
    def _change_feed(employee: Employee) -> str | None:
        """POST: make (or renew) the feed link — the token is returned to be shown once —
        or delete it."""
        action = request.form.get("aktion")
        if action == "erstellen":
            token = issue_feed(db.session, employee.id)
            db.session.commit()
            return token
        if action == "loeschen":
            if revoke_feed(db.session, employee.id):
                db.session.commit()
                flash(_("Ihr Kalender-Link wurde gelöscht."), "success")
            return None
        abort(400)

