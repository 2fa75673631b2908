"""Reminders: the switch's default, which bookings are due, and exactly one reminder per
booking time — under repeated dispatch, concurrent dispatch, real workers on Redis and two
cron processes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from app.extensions import db
from app.jobs.base import acting_as
from app.models import Booking, BookingReminder, BookingStatus, Customer, NotificationLog, Service
from app.models.types import utcnow
from app.services.reminders import dispatch_due_reminders, reminder_default
from tests.conftest import TEST_REDIS_URL

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def due_bookings(app, hours_ahead: list[float], *, consent: bool = True, service_default: bool = True, **fields):
    """Bookings of a fresh customer (e-mail consent) without an employee at now + hours; removed afterwards."""
    with app.app_context(), acting_as():
        service = Service(name=f"Erinnerungstest {os.urandom(3).hex()}", category="einzelstunde",
                          duration_minutes=30, price=10, reminder_default=service_default)
        customer = Customer(first_name="Rita", last_name="Erinnerung", email=f"rita-{os.urandom(4).hex()}@example.org",
                            consent_email=consent)
        now = utcnow()
        bookings = [Booking(customer=customer, service=service, start_at=now + timedelta(hours=h), **fields)
                    for h in hours_ahead]
        db.session.add_all(bookings)
        db.session.commit()
        ids = [booking.id for booking in bookings]
        service_id, customer_id = service.id, customer.id
    try:
        yield ids
    finally:
        with app.app_context(), acting_as():
            db.session.execute(sa.delete(NotificationLog).where(NotificationLog.booking_id.in_(ids)))
            for pk in ids:
                db.session.delete(db.session.get(Booking, pk))
            db.session.flush()
            db.session.delete(db.session.get(Customer, customer_id))
            db.session.delete(db.session.get(Service, service_id))
            db.session.commit()


def reminders_of(app, ids: list[int]) -> dict[int, int]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(NotificationLog.booking_id, sa.func.count())
            .where(NotificationLog.booking_id.in_(ids), NotificationLog.kind == "reminder")
            .group_by(NotificationLog.booking_id)).all()
    return {booking_id: count for booking_id, count in rows}


def dispatch(app) -> int:
    with app.app_context(), acting_as():
        return dispatch_due_reminders(db.session)


# --- the switch -------------------------------------------------------------------------
def test_the_switch_defaults_from_service_and_consent(app):
    with app.app_context():
        with_consent = Customer(first_name="A", last_name="B", email="a@example.org", consent_email=True)
        sms_only = Customer(first_name="A", last_name="B", phone="+4930123", consent_sms=True)
        without = Customer(first_name="A", last_name="B", email="a@example.org", phone="+4930123")
        on, off = Service(name="x", reminder_default=True), Service(name="y", reminder_default=False)
        assert reminder_default(on, with_consent) is True
        assert reminder_default(on, sms_only) is True
        assert reminder_default(on, without) is False  # contact data alone is no consent
        assert reminder_default(off, with_consent) is False


def test_a_stored_booking_gets_the_default_unless_set(app):
    with due_bookings(app, [30.0]) as (auto,), due_bookings(app, [31.0], consent=False) as (no_consent,), \
            due_bookings(app, [32.0], reminder=False) as (switched_off,):
        with app.app_context():
            assert db.session.get(Booking, auto).reminder is True
            assert db.session.get(Booking, no_consent).reminder is False
            assert db.session.get(Booking, switched_off).reminder is False


def test_the_booking_form_offers_automatic_on_and_off(app, world, manager):
    html = manager.get("/bookingview/add").get_data(as_text=True)
    select = re.search(r'<select[^>]*name="reminder".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option ([^>]*)value="(\w+)"', select) == [("selected ", "auto"), ("", "y"), ("", "n")]


# --- due, once ------------------------------------------------------------------------------
def test_due_bookings_get_one_reminder_and_a_second_dispatch_sends_none(app):
    with due_bookings(app, [2.0, 23.5, 25.0, -1.0]) as (soon, edge, later, past):
        dispatch(app)
        assert reminders_of(app, [soon, edge, later, past]) == {soon: 1, edge: 1}
        dispatch(app)
        assert reminders_of(app, [soon, edge, later, past]) == {soon: 1, edge: 1}
        with app.app_context():
            claim = db.session.get(BookingReminder, (soon, db.session.get(Booking, soon).start_at))
            entry = db.session.get(NotificationLog, claim.notification_id)
            assert (entry.kind, entry.channel) == ("reminder", "email")
            assert entry.recipient == db.session.get(Booking, soon).customer.email


def test_cancelled_and_switched_off_bookings_get_none(app):
    with app.app_context():
        cancelled = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "cancellation"))
    with due_bookings(app, [3.0], status_id=cancelled, cancel_reason="krank") as ids, \
            due_bookings(app, [4.0], reminder=False) as off:
        dispatch(app)
        assert reminders_of(app, ids + off) == {}


def test_a_moved_booking_is_reminded_for_its_new_time(app):
    with due_bookings(app, [5.0]) as (pk,):
        dispatch(app)
        with app.app_context(), acting_as():
            booking = db.session.get(Booking, pk)
            booking.start_at += timedelta(hours=2)
            booking.end_at += timedelta(hours=2)
            db.session.commit()
        dispatch(app)
        assert reminders_of(app, [pk]) == {pk: 2}
        with app.app_context():
            starts = db.session.scalars(sa.select(BookingReminder.start_at).where(BookingReminder.booking_id == pk))
            assert len(set(starts)) == 2


def test_the_lead_time_is_the_setting(app):
    from app.models import Setting

    with app.app_context():
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "reminder_hours"))
        previous, setting.value = setting.value, "48"
        db.session.commit()
    try:
        with due_bookings(app, [40.0, 50.0]) as (inside, outside):
            dispatch(app)
            assert reminders_of(app, [inside, outside]) == {inside: 1}
    finally:
        with app.app_context():
            db.session.scalar(sa.select(Setting).where(Setting.key == "reminder_hours")).value = previous
            db.session.commit()


def test_concurrent_dispatches_remind_each_booking_once(app):
    """Two dispatches at the same moment (an overlapping cron run): the claims' primary key decides."""
    with due_bookings(app, [1.0 + i / 10 for i in range(30)]) as ids:
        barrier, errors = threading.Barrier(3), []

        def run():
            try:
                barrier.wait()
                dispatch(app)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert reminders_of(app, ids) == {pk: 1 for pk in ids}


# --- real Redis, real workers -------------------------------------------------------------
def test_queued_reminders_are_enqueued_for_sending_after_the_commit(app, rq_queues):
    with due_bookings(app, [6.0]) as (pk,):
        dispatch(app)
        with app.app_context():
            log_id = db.session.scalar(sa.select(NotificationLog.id).where(NotificationLog.booking_id == pk))
        jobs = rq_queues["notifications"].get_jobs()
        assert [(job.func_name, job.args) for job in jobs] == [("app.jobs.notifications.send_notification", (log_id,))]
        assert jobs[0].retries_left == 2  # JOB_RETRY_INTERVALS of the test app: (0, 0)


def _worker_env(app) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": TEST_REDIS_URL,
            "INSTANCE_PATH": app.config["INSTANCE_DIR"], "SECRET_KEY": "test-secret-not-for-production",
            "FLASK_APP": "run.py"}


def test_a_retried_dispatch_and_two_real_workers_remind_once(app, rq_queues):
    """The dispatch job enqueued three times (a retry, a second cron tick) and two `flask worker`
    processes working the queue at once: every booking has exactly one reminder."""
    from app.jobs.queue import enqueue_now

    with due_bookings(app, [7.0 + i / 10 for i in range(20)]) as ids:
        with app.app_context():
            for _ in range(3):
                enqueue_now("app.jobs.reminders.dispatch_reminders", queue="notifications")
        flask = str(Path(sys.executable).parent / "flask")
        workers = [subprocess.Popen([flask, "worker", "--burst", "--queue", "notifications", "--name",
                                     f"test-{os.getpid()}-{n}"], cwd=ROOT, env=_worker_env(app),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for n in range(2)]
        outputs = [worker.communicate(timeout=120)[0].decode() for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
        assert reminders_of(app, ids) == {pk: 1 for pk in ids}
        assert rq_queues["notifications"].failed_job_registry.count == 0 or all(
            "dispatch_reminders" not in (job.func_name or "")
            for job in rq_queues["notifications"].failed_job_registry.get_job_ids())


def test_a_second_cron_process_does_not_double_the_jobs(app, rq_queues):
    from rq import Queue

    from app.jobs.schedule import GuardedCron, Periodic

    connection = rq_queues["default"].connection
    connection.delete("terminbuch:cron:leader")
    items = [Periodic("app.jobs.reminders.dispatch_reminders", "default", interval=86400)]
    first, second = GuardedCron(connection, app, items), GuardedCron(connection, app, items)
    first.register_birth()
    second.register_birth()
    try:
        assert [len(first.enqueue_jobs()), len(second.enqueue_jobs())] == [1, 0]
        assert second.leader is False and first.leader is True
        assert Queue("default", connection=connection).count == 1
        # the leader stops: the stand-by takes over, and its first run is not a second copy of this slot
        first.register_death()
        assert second.hold_leadership() is True
        second.enqueue_jobs()
        assert Queue("default", connection=connection).count == 1
    finally:
        second.register_death()
        connection.delete("terminbuch:cron:leader")


def test_two_leaders_at_once_still_enqueue_a_run_once(app, rq_queues):
    """Should the lock ever fail (both think they lead), the run's job id is the same: one job."""
    from app.jobs.schedule import GuardedCron, Periodic

    connection = rq_queues["default"].connection
    items = [Periodic("app.jobs.reminders.dispatch_reminders", "default", interval=3600)]
    first, second = GuardedCron(connection, app, items), GuardedCron(connection, app, items)
    first.hold_leadership = second.hold_leadership = lambda: True
    first.enqueue_jobs()
    second.enqueue_jobs()
    assert rq_queues["default"].count == 1


def test_worker_and_cron_commands_refuse_without_redis(app):
    runner = app.test_cli_runner()
    previous = app.config.get("REDIS_URL")
    app.config["REDIS_URL"] = None
    try:
        for command in (["worker", "--burst"], ["cron"]):
            result = runner.invoke(args=command)
            assert result.exit_code != 0
            assert "REDIS_URL ist nicht gesetzt" in result.output
    finally:
        app.config["REDIS_URL"] = previous


def test_without_redis_a_job_runs_inline_after_the_commit(app):
    """INLINE_JOBS "sync" (tests): the dispatch runs in its own app context after the commit."""
    from app.jobs.queue import enqueue_after_commit

    with due_bookings(app, [8.0]) as (pk,), app.app_context():
        assert app.config.get("REDIS_URL") is None
        enqueue_after_commit(db.session, "app.jobs.reminders.dispatch_reminders")
        assert reminders_of(app, [pk]) == {}
        db.session.commit()
        assert reminders_of(app, [pk]) == {pk: 1}


def test_without_redis_a_rolled_back_job_does_not_run(app):
    from app.jobs.queue import enqueue_after_commit

    with due_bookings(app, [9.0]) as (pk,), app.app_context():
        enqueue_after_commit(db.session, "app.jobs.reminders.dispatch_reminders")
        db.session.rollback()
        db.session.commit()
        assert reminders_of(app, [pk]) == {}


def test_the_inline_thread_runs_jobs_in_order(app):
    from app.jobs.queue import run_inline, wait_for_inline_jobs

    previous = app.config["INLINE_JOBS"]
    app.config["INLINE_JOBS"] = "thread"
    try:
        with due_bookings(app, [10.0]) as (pk,), app.app_context():
            run_inline("app.jobs.reminders.dispatch_reminders", ())
            wait_for_inline_jobs()
            assert reminders_of(app, [pk]) == {pk: 1}
    finally:
        app.config["INLINE_JOBS"] = previous


def test_the_inline_cron_thread_runs_the_schedule(app):
    from app.jobs.schedule import start_inline_cron

    stop = threading.Event()
    previous = app.config["REMINDER_DISPATCH_SECONDS"]
    with due_bookings(app, [11.0]) as (pk,):
        app.config["REMINDER_DISPATCH_SECONDS"] = 1
        try:
            thread = start_inline_cron(app, stop)
            deadline = datetime.now(timezone.utc) + timedelta(seconds=20)
            while reminders_of(app, [pk]) == {} and datetime.now(timezone.utc) < deadline:
                stop.wait(0.2)
        finally:
            stop.set()
            app.config["REMINDER_DISPATCH_SECONDS"] = previous
        thread.join(10)
        assert reminders_of(app, [pk]) == {pk: 1}
