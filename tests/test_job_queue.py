"""Jobs are enqueued after the commit on a real Redis, never for a rolled-back change;
booking notifications are recorded as queued through one function."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from app.extensions import db
from app.jobs.base import acting_as
from app.jobs.queue import enqueue_after_commit
from app.models import Booking, Customer, NotificationLog
from app.services.notifications import SEND_JOB, queue_booking_notification


@pytest.fixture()
def rq_queue(rq_queues):
    return rq_queues


def test_job_is_enqueued_only_after_commit(app_ctx, rq_queue):
    enqueue_after_commit(db.session, "app.jobs.notifications.send_notification", 1)
    assert rq_queue["default"].count == 0  # not before the commit
    db.session.commit()
    jobs = rq_queue["default"].get_jobs()
    assert [(job.func_name, job.args) for job in jobs] == [("app.jobs.notifications.send_notification", (1,))]


def test_rolled_back_change_enqueues_nothing(app_ctx, rq_queue):
    enqueue_after_commit(db.session, "app.jobs.notifications.send_notification", 2)
    db.session.rollback()
    db.session.commit()  # a later commit must not send the dropped job
    assert rq_queue["default"].count == 0


def test_booking_notification_is_logged_and_enqueued(app_ctx, rq_queue, world):
    with acting_as():
        booking = db.session.get(Booking, world.booking1)
        entry = queue_booking_notification(db.session, booking, "booking_confirmed")
        db.session.commit()
        stored = db.session.get(NotificationLog, entry.id)
        assert (stored.kind, stored.channel, stored.recipient, stored.status, stored.booking_id) == (
            "booking_confirmed", "email", "anna@example.org", "queued", world.booking1,
        )
        jobs = rq_queue["notifications"].get_jobs()
        assert [(job.func_name, job.args) for job in jobs] == [(SEND_JOB, (entry.id,))]
        db.session.delete(stored)
        db.session.commit()


def test_notification_without_contact_is_not_logged(app_ctx, rq_queue, world):
    with acting_as():
        customer = Customer(first_name="Ohne", last_name="Kontakt")
        booking = Booking(customer=customer, service_id=world.service, employee_id=None,
                          start_at=datetime(2032, 1, 5, 9, tzinfo=timezone.utc))
        db.session.add(booking)
        db.session.flush()
        assert queue_booking_notification(db.session, booking, "booking_cancelled") is None
        db.session.rollback()
    assert rq_queue["notifications"].count == 0


def test_phone_only_customer_gets_sms(app_ctx, world):
    customer = Customer(first_name="Nur", last_name="Telefon", phone="+49301111111")
    booking = Booking(customer=customer, service_id=world.service,
                      start_at=datetime(2032, 1, 5, 9, tzinfo=timezone.utc))
    with acting_as():
        db.session.add(booking)
        db.session.flush()
        entry = queue_booking_notification(db.session, booking, "booking_moved")
        assert (entry.channel, entry.recipient) == ("sms", "+49301111111")
        db.session.rollback()


def test_unknown_kind_is_refused(app_ctx, world):
    booking = db.session.get(Booking, world.booking1)
    with pytest.raises(ValueError):
        queue_booking_notification(db.session, booking, "spam")


def test_without_redis_the_job_runs_inline_and_the_log_says_how_it_went(app_ctx, world):
    assert app_ctx.config.get("REDIS_URL") is None and app_ctx.config.get("MAIL_SERVER") is None
    with acting_as():
        booking = db.session.get(Booking, world.booking1)
        entry = queue_booking_notification(db.session, booking, "booking_confirmed")
        db.session.commit()  # no Redis: sent inline right after the commit, which still succeeds
        stored = db.session.get(NotificationLog, entry.id)
        # no mail server configured in the tests: failed at once, with the reason (sending: test_send_notification.py)
        assert (stored.status, stored.error) == ("failed", "E-Mail-Versand ist nicht eingerichtet (MAIL_SERVER fehlt).")
        db.session.delete(stored)
        db.session.commit()
