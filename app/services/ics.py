"""An employee's read-only ICS feed (RFC 5545): secret tokens and the calendar text.

Only the SHA-256 of a token is stored; the feed URL is shown once when the token is
made. The feed carries what a schedule needs — time, service, customer's name — and
nothing else of the customer (no phone, e-mail or notes)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.models import Booking, Employee
from app.models.staff import CalendarFeed
from app.models.types import utcnow

FEED_PAST = timedelta(days=14)
FEED_AHEAD = timedelta(days=90)
LINE_OCTETS = 75
PRODID = "-//Terminbuch//Kalender//DE"


# --- tokens -------------------------------------------------------------------
def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_feed(session: Session, employee_id: int) -> str:
    """A new secret token for the employee's feed (the old one, if any, stops working).
    Returns the token; the caller commits."""
    token = secrets.token_urlsafe(32)
    feed = session.get(CalendarFeed, employee_id)
    if feed is None:
        feed = CalendarFeed(employee_id=employee_id)
        session.add(feed)
    feed.token_hash = token_hash(token)
    feed.created_at = utcnow()
    return token


def revoke_feed(session: Session, employee_id: int) -> bool:
    """Remove the employee's feed; False when there was none. The caller commits."""
    feed = session.get(CalendarFeed, employee_id)
    if feed is None:
        return False
    session.delete(feed)
    return True


def feed_employee(session: Session, token: str) -> Employee | None:
    """The active employee whose feed the token opens, else None. The lookup is by
    hash (an attacker controls no prefix of it) and confirmed in constant time."""
    wanted = token_hash(token)
    feed = session.scalar(
        select(CalendarFeed).options(joinedload(CalendarFeed.employee)).where(CalendarFeed.token_hash == wanted)
    )
    if feed is None or not hmac.compare_digest(feed.token_hash, wanted):
        return None
    if feed.employee is None or not feed.employee.active:  # SQLite may keep a deleted employee's feed
        return None
    return feed.employee


def feed_bookings(session: Session, employee_id: int, now: datetime) -> list[Booking]:
    """The employee's non-cancelled bookings from 14 days ago to 90 days ahead."""
    stmt = (
        select(Booking)
        .options(joinedload(Booking.customer), joinedload(Booking.service), joinedload(Booking.location))
        .where(
            Booking.employee_id == employee_id,
            Booking.cancelled.is_(False),
            Booking.start_at >= now - FEED_PAST,
            Booking.start_at < now + FEED_AHEAD,
        )
        .order_by(Booking.start_at)
    )
    return list(session.scalars(stmt))


# --- RFC 5545 text --------------------------------------------------------------
def escape_text(value: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11): backslash, semicolon, comma, newlines."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold_line(line: str) -> str:
    """Fold a content line to at most 75 octets per physical line (continuations start
    with a space), never splitting a UTF-8 character."""
    parts: list[str] = []
    current, size, limit = [], 0, LINE_OCTETS
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, LINE_OCTETS - 1
        current.append(char)
        size += octets
    parts.append("".join(current))
    return "\r\n ".join(parts)


def ics_datetime(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def booking_uid(booking: Booking) -> str:
    return f"booking-{booking.id}@terminbuch"


def _event_lines(booking: Booking, stamp: str) -> list[str]:
    summary = f"{booking.service.name} – {booking.customer.display_name}"
    lines = [
        "BEGIN:VEVENT",
        f"UID:{booking_uid(booking)}",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{ics_datetime(booking.start_at)}",
        f"DTEND:{ics_datetime(booking.end_at)}",
        f"SUMMARY:{escape_text(summary)}",
    ]
    if booking.location is not None:
        lines.append(f"LOCATION:{escape_text(booking.location.name)}")
    lines += ["TRANSP:OPAQUE", "END:VEVENT"]
    return lines


def render_calendar(name: str, bookings: Iterable[Booking], now: datetime | None = None) -> str:
    """The VCALENDAR text: CRLF line ends, folded lines, times in UTC."""
    stamp = ics_datetime(now or utcnow())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
    ]
    for booking in bookings:
        lines += _event_lines(booking, stamp)
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) + "\r\n" for line in lines)
