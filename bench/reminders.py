"""Reminders through a real worker to a real SMTP server, and what enqueueing costs a booking save.

    .venv/bin/python bench/reminders.py [--reminders 10000] [--saves 300]
                                        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

1. dispatch: `--reminders` bookings (each its own customer with e-mail consent) start within
   the next 24 hours; `dispatch_due_reminders` claims them, records the NotificationLog rows
   and enqueues one send job each on Redis (database 4 of 127.0.0.1:6379, emptied first).
2. send: one `AppSimpleWorker` (the worker of `flask worker`, without fork) works the queue
   in burst mode; every job renders the German reminder and delivers it over SMTP to an
   aiosmtpd server in this process (tests/servers.py). Reported: mails/s, duplicates (a
   recipient twice), a second dispatch (must claim 0). The same number of mails sent with
   smtplib alone, one connection each as the channel does, is the ratio's baseline.
3. enqueue: `--saves` bookings confirmed one by one (commit + confirmation notification);
   the median of a save with its job enqueued to Redis after the commit against the same
   save with the job dropped before the commit. Target: the difference <= 2 ms.
A fresh database each: SQLite on a temporary file, PostgreSQL in a throw-away database.
"""
from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import time
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fresh_app, on_fresh_database
from tests.servers import SmtpServer

PG_DATABASE = "tb_bench_reminders"
REDIS_URL = "redis://127.0.0.1:6379/4"


def seed(count: int) -> None:
    from app.extensions import db
    from app.models import Booking, BookingStatus, Customer, Service
    from app.models.types import utcnow

    service = Service(name="Benchmark", category="einzelstunde", duration_minutes=30, price=20,
                      reminder_default=True)
    db.session.add(service)
    db.session.commit()
    now = utcnow()
    confirmed = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "confirmation"))
    db.session.execute(sa.insert(Customer.__table__), [
        {"first_name": "Kundin", "last_name": f"Nr{n}", "email": f"k{n}@bench.example", "consent_email": True,
         "country": "DE", "language": "de", "created_at": now} for n in range(count)])
    ids = db.session.scalars(sa.select(Customer.id).order_by(Customer.id)).all()
    span = timedelta(hours=23) / count
    db.session.execute(sa.insert(Booking.__table__), [
        {"customer_id": customer_id, "service_id": service.id, "status_id": confirmed,
         "start_at": now + timedelta(minutes=30) + n * span, "end_at": now + timedelta(minutes=60) + n * span,
         "price": 20, "source": "backoffice", "reminder": True, "created_at": now, "hours_override": False,
         "cancelled": False, "shared_slot": False} for n, customer_id in enumerate(ids)])
    db.session.commit()


def smtplib_alone(server: SmtpServer, count: int) -> float:
    start = time.perf_counter()
    for n in range(count):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "termine@bench.example", f"b{n}@bench.example", "Test"
        message.set_content("Erinnerung an Ihren Termin morgen um 10:00 Uhr.")
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            smtp.send_message(message)
    return time.perf_counter() - start


def enqueue_overhead(flask_app, saves: int) -> tuple[float, float]:
    """Median seconds of a confirming save with and without its job enqueued (alternating)."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.jobs.queue import PENDING_KEY
    from app.models import Booking, BookingStatus
    from app.services.notifications import queue_booking_notification

    with flask_app.app_context(), acting_as():
        start_status = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "start"))
        ids = db.session.scalars(sa.select(Booking.id).order_by(Booking.id).limit(saves)).all()
        db.session.execute(sa.update(Booking).where(Booking.id.in_(ids)).values(status_id=start_status))
        db.session.commit()
        confirmed = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "confirmation"))
        timings: dict[bool, list[float]] = {True: [], False: []}
        for n, pk in enumerate(ids):
            enqueue = n % 2 == 0
            begin = time.perf_counter()
            booking = db.session.get(Booking, pk)
            booking.status_id = confirmed
            queue_booking_notification(db.session, booking, "booking_confirmed")
            if not enqueue:
                db.session.info.pop(PENDING_KEY, None)
            db.session.commit()
            timings[enqueue].append(time.perf_counter() - begin)
        return statistics.median(timings[True]), statistics.median(timings[False])


def run(url: str, label: str, reminders: int, saves: int) -> None:
    from redis import Redis
    from rq import Queue

    from app.extensions import db
    from app.jobs.base import acting_as
    from app.jobs.worker import make_worker
    from app.models import NotificationLog
    from app.services.reminders import dispatch_due_reminders

    connection = Redis.from_url(REDIS_URL)
    connection.flushdb()
    server = SmtpServer().start()
    flask_app = fresh_app(url)
    flask_app.config.update(REDIS_URL=REDIS_URL, **server.config())
    try:
        with flask_app.app_context():
            seed(reminders)
        with flask_app.app_context(), acting_as():
            begin = time.perf_counter()
            queued = dispatch_due_reminders(db.session)
            dispatch_seconds = time.perf_counter() - begin
        queue = Queue("notifications", connection=connection)
        begin = time.perf_counter()
        make_worker(flask_app, ["notifications"], simple=True).work(burst=True, logging_level="WARNING")
        send_seconds = time.perf_counter() - begin
        left, failed = queue.count, queue.failed_job_registry.count
        recipients = [received.rcpt_tos[0] for received in server.messages]
        with flask_app.app_context(), acting_as():
            again = dispatch_due_reminders(db.session)
            sent = db.session.scalar(sa.select(sa.func.count()).select_from(NotificationLog).where(
                NotificationLog.kind == "reminder", NotificationLog.status == "sent"))
        mails = len(server.messages)
        server.messages.clear()
        alone = smtplib_alone(server, mails)
        with_job, without_job = enqueue_overhead(flask_app, saves)
        print(f"{label}: {reminders} due reminders")
        print(f"  dispatch (claim, log, enqueue): {queued} queued in {dispatch_seconds:.1f} s "
              f"= {queued / dispatch_seconds:.0f}/s; second dispatch claimed {again}")
        print(f"  worker → SMTP: {mails} mails in {send_seconds:.1f} s = {mails / send_seconds:.0f} mails/s; "
              f"logged sent {sent}; duplicates {len(recipients) - len(set(recipients))}; "
              f"queue left {left}, failed {failed}")
        print(f"  smtplib alone: {mails} mails in {alone:.1f} s = {mails / alone:.0f} mails/s; "
              f"ratio worker / smtplib {send_seconds / alone:.2f}×")
        print(f"  booking save median: with enqueue {with_job * 1000:.2f} ms, without {without_job * 1000:.2f} ms, "
              f"enqueue overhead {(with_job - without_job) * 1000:.2f} ms ({saves} saves)")
    finally:
        server.stop()
        connection.flushdb()
        with flask_app.app_context():
            db.session.remove()
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument("--postgres-url")
    args = parser.parse_args()
    on_fresh_database(args.postgres_url, PG_DATABASE, "tb-bench-reminders-",
                      lambda url, label: run(url, label, args.reminders, args.saves))


if __name__ == "__main__":
    main()
