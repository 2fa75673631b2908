"""Scheduled notification jobs (see app/jobs/schedule.py)."""
from __future__ import annotations

from app.extensions import db
from app.jobs.base import acting_as


def dispatch_reminders() -> int:
    from app.services.reminders import dispatch_due_reminders

    with acting_as():
        return dispatch_due_reminders(db.session)


def queue_card_renewals_job() -> int:
    from app.services.cards import queue_card_renewals

    with acting_as():
        queued = queue_card_renewals(db.session)
        db.session.commit()
        return len(queued)
