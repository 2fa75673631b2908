"""Customer notifications about bookings: one function records and enqueues them.

The notification is recorded in NotificationLog as "queued" (never its text) and
the sending job is enqueued after the commit (app.jobs.queue). The sending itself
arrives with the jobs issue; until then the log row is the record of what is due.
"""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.jobs.queue import enqueue_after_commit
from app.models import Booking, NotificationLog

NOTIFICATION_KINDS = {
    "booking_confirmed": _l("Buchungsbestätigung"),
    "booking_cancelled": _l("Absage"),
    "booking_moved": _l("Terminänderung"),
    "reminder": _l("Erinnerung"),
}
SEND_JOB = "app.jobs.notifications.send_notification"


def kind_label(kind: str | None) -> str:
    """The German label of a notification kind; an unknown kind shows as itself, marked."""
    label = NOTIFICATION_KINDS.get(kind or "")
    return str(label) if label is not None else _("Sonstige (%(kind)s)", kind=kind or "–")


def notification_channel(customer) -> tuple[str, str] | None:
    """(channel, recipient) for a customer: e-mail if known, else SMS to the phone; None if neither."""
    if customer is None:
        return None
    if customer.email:
        return "email", customer.email
    if customer.phone:
        return "sms", customer.phone
    return None


def queue_booking_notification(session: Session, booking: Booking, kind: str) -> NotificationLog | None:
    """Record a `kind` notification (see NOTIFICATION_KINDS) to the booking's customer
    as queued and enqueue its sending after the commit. None when the customer has
    neither e-mail nor phone (nothing can be sent)."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    target = notification_channel(booking.customer)
    if target is None:
        return None
    channel, recipient = target
    entry = NotificationLog(
        kind=kind, channel=channel, recipient=recipient, customer=booking.customer,
        employee=booking.employee, booking=booking, status="queued",
    )
    session.add(entry)
    session.flush()  # the job carries the id; after the commit no SQL may run
    enqueue_after_commit(session, SEND_JOB, entry.id, queue="notifications")
    return entry
