"""Notification jobs (run by an RQ worker, or inline without Redis): send what a
NotificationLog row records and write down how it went — never the text."""
from __future__ import annotations

import logging

from rq import get_current_job
from sqlalchemy import select

from app.extensions import db
from app.jobs.base import acting_as
from app.models import NotificationLog
from app.models.types import utcnow
from app.services.channels import PermanentSendError, TransientSendError, send
from app.services.notification_texts import (
    BOOKING_KINDS,
    DEFAULT_LANGUAGE,
    STAFF_KINDS,
    booking_context,
    render,
)

log = logging.getLogger(__name__)
MAX_ERROR = 500


def send_notification(log_id: int, subject: str | None = None, body: str | None = None) -> None:
    """Send the notification recorded as NotificationLog `log_id` and mark it "sent".

    A free-text message (kind "message"/"recall", also the card renewal) brings its
    subject and body along; every other text is rendered here from the booking, in the
    customer's language (employees: German). Neither is ever stored.

    Idempotent: a missing or already sent entry is left alone, so a retried or
    duplicated job sends nothing twice (on PostgreSQL the row stays locked while sending:
    a second worker waits, then finds it sent). A permanent failure marks the entry
    "failed" with the reason. A transient one stores the reason and raises for RQ: the
    entry stays "queued" while the job has retries left, else it is "failed" and RQ's
    failed registry keeps the traceback for the job monitor. Without an RQ job (inline)
    a transient failure is final: "failed", logged, not raised into the request.
    """
    with acting_as():
        entry = db.session.scalars(
            select(NotificationLog).where(NotificationLog.id == log_id).with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if entry is None or entry.status == "sent":
            db.session.rollback()
            return
        try:
            if entry.customer is not None and entry.customer.erased_at is not None:
                raise PermanentSendError("Kund:in wurde auf Anfrage gelöscht.")
            if subject is None or body is None:
                subject, body = compose(entry)
            send(entry.channel, entry.recipient, subject, body)
        except PermanentSendError as exc:
            _finish(entry, "failed", str(exc))
            log.warning("notification %s failed for good: %s", log_id, exc)
            return
        except TransientSendError as exc:
            job = get_current_job()
            retrying = job is not None and (job.retries_left or 0) > 0
            _finish(entry, "queued" if retrying else "failed", str(exc))
            if job is None:
                log.warning("notification %s failed (no retry without a worker): %s", log_id, exc)
                return
            raise
        except Exception:
            db.session.rollback()  # a bug, not the channel: RQ (or the inline runner) keeps the traceback
            raise
        entry.status, entry.sent_at, entry.error = "sent", utcnow(), None
        db.session.commit()


def compose(entry: NotificationLog) -> tuple[str, str]:
    """(subject, body) of a notification whose text is rendered from its booking."""
    if entry.kind in STAFF_KINDS:
        language, context = DEFAULT_LANGUAGE, {}
        if entry.booking is not None:
            context = booking_context(db.session, entry.booking)
    elif entry.kind in BOOKING_KINDS:
        if entry.booking is None:
            raise PermanentSendError("Termin nicht mehr vorhanden.")
        customer = entry.customer or entry.booking.customer
        language, context = getattr(customer, "language", None), booking_context(db.session, entry.booking)
    else:  # "message", "recall", "card_renewal": the text travels with the job only
        raise PermanentSendError("Text der Nachricht fehlt.")
    context["short"] = entry.channel != "email"
    return render(entry.kind, language or DEFAULT_LANGUAGE, context)


def _finish(entry: NotificationLog, status: str, error: str | None) -> None:
    entry.status = status
    entry.error = error[:MAX_ERROR] if error else None
    db.session.commit()
