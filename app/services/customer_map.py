"""Kundenkarte (issue 7, point 3): which customers the map shows, and their marker rows.

One SELECT of columns (no ORM object per customer) gives every customer the current user
may see under the chosen filters: the ones with coordinates become marker rows
[lat, lon, colour, approx, id, name, address, next appointment, units], the others are
only counted. Correlated subqueries on ix_booking_customer_start fetch each customer's next
appointment and last booking; every booking and pass card subquery applies the row rules
(an Employee sees their own appointments with the customer, no pass cards)."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session, aliased

from app.formatting import business_tz
from app.models import Booking, Customer, Employee, Location, PassCard, Service
from app.models.services import SERVICE_CATEGORIES
from app.security import restrict
from app.services.metrics import active_customer_ids

COLOR_BY = ("active", "category", "location")  # the first is the default
# Colour-blind friendly (Okabe–Ito, then Tableau); the last one is "none".
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8c564b", "#7f7f7f",
           "#bcbd22", "#17becf"]
ACTIVE_COLORS = ["#2e7d32", "#78909c"]  # aktiv, nicht aktiv
NONE_COLOR = "#9e9e9e"
COORD_DIGITS = 5  # about 1 m
DATETIME_FORMAT = "%d.%m.%Y %H:%M"  # as app.formatting.fmt_datetime, in the business's time zone


@dataclass(frozen=True)
class MapFilters:
    """The map's filters, already validated (see app/views/map.py)."""

    lens_apply: Callable[[sa.Select], sa.Select] | None = None  # a saved lens's list filters
    category: str | None = None
    location_id: int | None = None
    active_only: bool = False
    color_by: str = COLOR_BY[0]
    heat: bool = False


@dataclass
class MapData:
    rows: list[list] = field(default_factory=list)  # marker rows, see module docstring
    total: int = 0  # customers matching the filters (m)
    without_coordinates: int = 0  # of those, without lat/lon (k)

    @property
    def shown(self) -> int:
        return len(self.rows)

    def bounds(self) -> list[list[float]] | None:
        if not self.rows:
            return None
        lats = [row[0] for row in self.rows]
        lons = [row[1] for row in self.rows]
        return [[min(lats), min(lons)], [max(lats), max(lons)]]


def _not_cancelled_bookings(*columns) -> sa.Select:
    return restrict(sa.select(*columns).where(Booking.cancelled.is_(False)), Booking)


def _booking_location():
    """A booking's location: its own, else its employee's."""
    employee = aliased(Employee)
    return sa.func.coalesce(
        Booking.location_id,
        sa.select(employee.location_id).where(employee.id == Booking.employee_id).scalar_subquery(),
    )


def filtered(stmt: sa.Select, filters: MapFilters, now: datetime) -> sa.Select:
    """`stmt` (a SELECT from customer) narrowed to the customers of the filters, row rules applied."""
    stmt = restrict(stmt.where(Customer.erased_at.is_(None)), Customer)
    if filters.lens_apply is not None:
        stmt = filters.lens_apply(stmt)
    if filters.active_only:
        stmt = stmt.where(Customer.id.in_(active_customer_ids(filters.category, now)))
    elif filters.category is not None:
        stmt = stmt.where(Customer.id.in_(_not_cancelled_bookings(Booking.customer_id).where(
            Booking.service_id.in_(sa.select(Service.id).where(Service.category == filters.category)))))
    if filters.location_id is not None:
        stmt = stmt.where(Customer.id.in_(
            _not_cancelled_bookings(Booking.customer_id).where(_booking_location() == filters.location_id)))
    return stmt


def customer_counts(session: Session, filters: MapFilters, now: datetime) -> tuple[int, int]:
    """(customers matching the filters, of those with coordinates): one COUNT."""
    with_coords = sa.func.count(sa.case((sa.and_(Customer.lat.isnot(None), Customer.lon.isnot(None)), 1)))
    total, placed = session.execute(filtered(sa.select(sa.func.count(), with_coords).select_from(Customer),
                                             filters, now)).one()
    return int(total), int(placed or 0)


def location_rows(session: Session) -> list[Location]:
    return list(session.scalars(sa.select(Location).where(Location.active.is_(True)).order_by(Location.name)))


def legend(color_by: str, locations: Sequence[Location]) -> list[tuple[str, str]]:
    """(colour, label) in colour-index order; labels are lazy strings (str() them)."""
    if color_by == "category":
        return [(PALETTE[i % len(PALETTE)], label) for i, label in enumerate(SERVICE_CATEGORIES.values())] + [
            (NONE_COLOR, _l("ohne Termin"))]
    if color_by == "location":
        return [(PALETTE[i % len(PALETTE)], location.name) for i, location in enumerate(locations)] + [
            (NONE_COLOR, _l("ohne Filiale"))]
    return [(ACTIVE_COLORS[0], _l("aktiv (künftiger Termin)")), (ACTIVE_COLORS[1], _l("nicht aktiv"))]


def map_statement(filters: MapFilters, now: datetime, with_units: bool) -> sa.Select:
    """The SELECT behind the map: one row of columns per customer of the filters."""
    next_start = _not_cancelled_bookings(sa.func.min(Booking.start_at)).where(
        Booking.customer_id == Customer.id, Booking.start_at > now).scalar_subquery()
    last_id = _not_cancelled_bookings(Booking.id).where(Booking.customer_id == Customer.id).order_by(
        Booking.start_at.desc(), Booking.id.desc()).limit(1).scalar_subquery()
    last = aliased(Booking)
    last_service = aliased(Service)
    last_employee = aliased(Employee)
    columns = [
        Customer.id, Customer.lat, Customer.lon, Customer.geocode_status, Customer.emoji_marker,
        Customer.first_name, Customer.last_name, Customer.street, Customer.postal_code, Customer.city,
        next_start.label("next_start"), last_service.category,
        sa.func.coalesce(last.location_id, last_employee.location_id).label("location_id"),
    ]
    if with_units:
        columns.append(restrict(sa.select(sa.func.sum(PassCard.units_total - PassCard.units_used)).where(
            PassCard.customer_id == Customer.id, PassCard.units_used < PassCard.units_total,
            sa.or_(PassCard.expires_at.is_(None), PassCard.expires_at > now),
        ), PassCard).scalar_subquery().label("units"))
    stmt = (
        sa.select(*columns).select_from(Customer)
        .outerjoin(last, last.id == last_id)
        .outerjoin(last_service, last_service.id == last.service_id)
        .outerjoin(last_employee, last_employee.id == last.employee_id)
    )
    return filtered(stmt, filters, now).order_by(Customer.id)


def map_data(session: Session, filters: MapFilters, now: datetime, locations: Sequence[Location],
             with_units: bool) -> MapData:
    """The marker rows and counts of the filters: one SELECT."""
    stmt = map_statement(filters, now, with_units)
    categories = {key: index for index, key in enumerate(SERVICE_CATEGORIES)}
    location_index = {location.id: index for index, location in enumerate(locations)}
    tz = business_tz()
    data = MapData()
    # tuples, not attribute access by name: 14 lookups on a Row cost more than the SELECT
    for (pk, lat, lon, status, emoji, first_name, last_name, street, postal_code, city, next_start, category,
         location_id, *units) in session.execute(stmt).tuples():
        data.total += 1
        if lat is None or lon is None:
            data.without_coordinates += 1
            continue
        if filters.color_by == "category":
            color = categories.get(category, len(categories))
        elif filters.color_by == "location":
            color = location_index.get(location_id, len(location_index))
        else:
            color = 0 if next_start is not None else 1
        name = f"{first_name} {last_name}"
        place = f"{postal_code or ''} {city or ''}".strip()
        marker = [
            round(lat, COORD_DIGITS), round(lon, COORD_DIGITS), color, 1 if status == "approx" else 0, pk,
            f"{emoji} {name}" if emoji else name, f"{street}, {place}" if street and place else street or place,
            next_start.astimezone(tz).strftime(DATETIME_FORMAT) if next_start is not None else "",
        ]
        if units:
            marker.append(int(units[0]) if units[0] else 0)
        data.rows.append(marker)
    return data


def to_script_json(value) -> str:
    """Compact JSON that is safe inside a <script> element (no `</script>`, no HTML comment)."""
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027"))
