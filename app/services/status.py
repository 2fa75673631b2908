"""Moving a booking into another status: the one function every route uses.

A cancellation needs a reason; moving into a confirmation or a cancellation (from
another kind of status) queues the customer's notification. The status history
is not kept here: it is read from the booking's Continuum versions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy_continuum import version_class, versioning_manager

from app.models import Booking, BookingStatus, NotificationLog
from app.models.types import aware_utc
from app.services.bookings import flush_booking
from app.services.notifications import queue_booking_notification

NOTIFY_ON_KIND = {"confirmation": "booking_confirmed", "cancellation": "booking_cancelled"}
# A new booking tells the customer where it stands: a request waiting for confirmation, or confirmed.
NOTIFY_NEW = {"start": "booking_requested", "confirmation": "booking_confirmed"}


def check_cancel_reason(status: BookingStatus | None, reason: str | None) -> None:
    """A cancellation needs a reason (German ValueError otherwise)."""
    if status is not None and status.kind == "cancellation" and not (reason or "").strip():
        raise ValueError(_("Für eine Stornierung ist ein Grund erforderlich."))


def change_status(session: Session, booking: Booking, status: BookingStatus,
                  reason: str | None = None) -> NotificationLog | None:
    """Move `booking` into `status` and write it (not commit). Returns the queued
    notification, if one is due. A refusal (ValueError: no reason for a cancellation,
    an overlap when a cancelled booking comes back) stores nothing."""
    previous = booking.status
    if previous is not None and previous.id == status.id:
        return None
    check_cancel_reason(status, reason)
    booking.status = status
    booking.cancel_reason = reason.strip() if status.kind == "cancellation" else None
    flush_booking(session, booking)
    return notify_status_change(session, booking, previous, status)


def notify_new_booking(session: Session, booking: Booking) -> NotificationLog | None:
    """Queue "Anfrage eingegangen" or "Buchungsbestätigung" for a booking just stored by a
    screen or the API (not for imports or the demo, which write bookings directly)."""
    status = booking.status or (session.get(BookingStatus, booking.status_id) if booking.status_id else None)
    kind = NOTIFY_NEW.get(status.kind) if status is not None else None
    return queue_booking_notification(session, booking, kind) if kind else None


def notify_status_change(session: Session, booking: Booking, previous: BookingStatus | None,
                         status: BookingStatus) -> NotificationLog | None:
    """Queue the customer's notification when the booking entered a confirmation or
    cancellation from another kind of status."""
    kind = NOTIFY_ON_KIND.get(status.kind)
    if kind is None or (previous is not None and previous.kind == status.kind):
        return None
    return queue_booking_notification(session, booking, kind)


def write_edit(session: Session, booking: Booking, previous: BookingStatus | None) -> NotificationLog | None:
    """Write a booking edited by a form or the API (its checks passed; `previous` is its
    stored status): the other changes first, then a new status through `change_status`."""
    status = status_to_store(session, booking)
    if previous is None or status is None or status.id == previous.id:
        flush_booking(session, booking)
        return None
    booking.status = previous
    flush_booking(session, booking)
    return change_status(session, booking, status, booking.cancel_reason)


def stored_status(session: Session, booking: Booking) -> BookingStatus | None:
    """The status the booking has in the database, whatever a form or the API has set on
    it since (see `write_edit`)."""
    state = sa_inspect(booking)
    if state.transient or state.pending:
        return None
    status_id = state.committed_state.get("status_id", booking.status_id)
    with session.no_autoflush:
        return session.get(BookingStatus, status_id) if isinstance(status_id, int) else None


def status_to_store(session: Session, booking: Booking) -> BookingStatus | None:
    """The status the booking will be written with: a status relation set on it wins
    over its foreign key."""
    if sa_inspect(booking).attrs.status.history.has_changes() or booking.status_id is None:
        return booking.status
    with session.no_autoflush:
        return session.get(BookingStatus, booking.status_id)


# --- history ---------------------------------------------------------------------
@dataclass(frozen=True)
class StatusStep:
    status: BookingStatus | None
    at: datetime | None  # aware UTC
    user: User | None
    reason: str | None = None  # the cancel_reason of a cancellation step


def status_history(session: Session, booking_id: int) -> list[StatusStep]:
    """Every status the booking went through, newest first, with who and when (and
    the reason of a cancellation): from its Continuum versions (one query),
    versions that kept the status collapsed."""
    version = version_class(Booking)
    transaction = versioning_manager.transaction_cls
    rows = session.execute(
        select(version.status_id, version.cancel_reason, transaction.issued_at, User, BookingStatus)
        .join(transaction, transaction.id == version.transaction_id)
        .outerjoin(User, User.id == transaction.user_id)
        .outerjoin(BookingStatus, BookingStatus.id == version.status_id)
        .where(version.id == booking_id)
        .order_by(version.transaction_id)
    ).all()
    steps: list[StatusStep] = []
    last = object()
    for status_id, reason, issued_at, user, status in rows:
        if status_id == last:
            continue
        last = status_id
        at = aware_utc(issued_at)
        cancelled = status is not None and status.kind == "cancellation"
        steps.append(StatusStep(status, at, user, reason if cancelled else None))
    return steps[::-1]
