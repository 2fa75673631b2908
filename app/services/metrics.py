"""Active-customer metrics (issue 4, point 4): customers with at least one future,
not cancelled booking, per service category and in total, under the current user's
row rules. The customer list filter `active_category` selects exactly these customers."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from app.models import Booking, Customer, Service
from app.models.services import SERVICE_CATEGORIES
from app.security import restrict

TOTAL = "total"
ALL = "alle"


def _active_bookings(columns, now: datetime, category: str | None = None) -> sa.Select:
    """Future, not cancelled bookings (ix_booking_start serves `start_at > now`), row rules applied."""
    stmt = sa.select(*columns).select_from(Booking).where(Booking.start_at > now, Booking.cancelled.is_(False))
    if category is not None:
        stmt = stmt.where(Booking.service_id.in_(sa.select(Service.id).where(Service.category == category)))
    stmt = restrict(stmt, Booking)
    visible = restrict(sa.select(Customer.id), Customer)
    return stmt if visible.whereclause is None else stmt.where(Booking.customer_id.in_(visible))


def active_customer_ids(category: str | None = None, now: datetime | None = None) -> sa.Select:
    """Ids of the active customers (of one category, or of all with None) the current user may see."""
    return _active_bookings([Booking.customer_id], now or datetime.now(timezone.utc), category)


def active_customer_counts(session, now: datetime | None = None) -> dict[str, int]:
    """{category: count, …, "total": count}; a customer counts once per category and once in the total.
    One statement: the per-category counts UNION ALL the total."""
    now = now or datetime.now(timezone.utc)
    customers = sa.func.count(sa.distinct(Booking.customer_id))
    per_category = _active_bookings([Service.category, customers], now).join(
        Service, Booking.service_id == Service.id
    ).group_by(Service.category)
    total = _active_bookings([sa.literal(TOTAL, sa.String), customers], now)
    counts = {key: 0 for key in (*SERVICE_CATEGORIES, TOTAL)}
    counts.update({key: count for key, count in session.execute(sa.union_all(per_category, total))})
    return counts
