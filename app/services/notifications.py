"""Customer notifications about bookings: one function records and enqueues them.

The notification is recorded in NotificationLog as "queued" (never its text) and
the sending job is enqueued after the commit (app.jobs.queue); app.jobs.notifications
sends it and records how it went.
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
    "message": _l("Nachricht an Kund:in"),
    "recall": _l("Wiederbesuch-Erinnerung"),
    "card_renewal": _l("Kartenverlängerung"),
    "booking_requested": _l("Anfrage eingegangen"),
    "staff_new_booking": _l("Neue Buchung (Mitarbeiter:in)"),
    "staff_cancelled": _l("Absage (Mitarbeiter:in)"),
    "staff_schedule_changed": _l("Planänderung (Mitarbeiter:in)"),
}
# Kinds that are advertising in the sense of § 7 UWG: only with the customer's e-mail consent.
CONSENT_KINDS = {"recall"}
MAX_SUBJECT = 200
MAX_BODY = 10_000
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


class MessageRefused(ValueError):
    """A customer message cannot be sent; the text says why (German, for the user)."""


def queue_customer_message(session: Session, customer, kind: str, subject: str, body: str) -> NotificationLog:
    """Record an e-mail of `kind` to `customer` as queued and enqueue its sending after the
    commit. Subject and body travel with the job only (Redis), never into the database.
    Raises MessageRefused (German text) without e-mail address, consent (CONSENT_KINDS)
    or text."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    subject, body = (subject or "").strip(), (body or "").strip()
    if customer is None or not customer.email:
        raise MessageRefused(_("Für diese Kund:in ist keine E-Mail-Adresse hinterlegt."))
    if customer.erased_at is not None:
        raise MessageRefused(_("Diese Kund:in wurde auf Anfrage gelöscht."))
    if kind in CONSENT_KINDS and not customer.consent_email:
        raise MessageRefused(_("Diese Kund:in hat keine Einwilligung für E-Mails gegeben."))
    if not subject or not body:
        raise MessageRefused(_("Bitte Betreff und Text angeben."))
    if len(subject) > MAX_SUBJECT or len(body) > MAX_BODY:
        raise MessageRefused(_("Betreff oder Text ist zu lang."))
    entry = NotificationLog(kind=kind, channel="email", recipient=customer.email, customer=customer,
                            status="queued")
    session.add(entry)
    session.flush()
    enqueue_after_commit(session, SEND_JOB, entry.id, subject, body, queue="notifications")
    return entry
