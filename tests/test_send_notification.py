"""send_notification end to end: a booking's notification is recorded, enqueued after the
commit and sent — inline without Redis, or by a real RQ worker with retries — to real
servers on 127.0.0.1 (tests/servers.py). The text is German (English for a customer
with language "en"), shows the business and the local time, and never reaches the
database; transient failures are retried, permanent ones fail at once."""
from __future__ import annotations

import itertools
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.jobs.base import acting_as
from app.jobs.notifications import send_notification
from app.models import Booking, BookingStatus, Customer, Employee, NotificationLog
from app.services.notifications import NOTIFICATION_KINDS, queue_booking_notification, queue_customer_message
from tests.conftest import WORLD
from tests.servers import HOST, closed_port, configured

SMS_TOKEN = "sms-token-geheim"
BOT_TOKEN = "4711:bot-geheim"
_days = itertools.count(1)


def winter_start() -> datetime:
    """08:00 UTC on a January/February day of 2036 no other test here uses (09:00 in Berlin)."""
    return datetime(2036, 1, 1, 8, 0, tzinfo=timezone.utc) + timedelta(days=next(_days))


def sms_config(stub) -> dict:
    return {"SMS_GATEWAY_URL": f"{stub.url}/sms", "SMS_GATEWAY_TOKEN": SMS_TOKEN, "SMS_SENDER": "Studio",
            "NOTIFY_TIMEOUT": 5}


@contextmanager
def customer_booking(app, employee_id: int | None = None, **customer_fields):
    """A customer of this test and a booking of theirs (employee1 by default) at
    `winter_start()`; yields (customer_id, booking_id); removes both and their log."""
    tag = uuid.uuid4().hex[:8]
    fields = {"first_name": "Clara", "last_name": f"Test{tag}", **customer_fields}
    if fields.get("email") == "auto":
        fields["email"] = f"clara{tag}@example.org"
    with app.app_context(), acting_as():
        customer = Customer(**fields)
        booking = Booking(customer=customer, service_id=WORLD.service,
                          employee_id=employee_id or WORLD.employee1, start_at=winter_start())
        db.session.add_all([customer, booking])
        db.session.commit()
        ids = customer.id, booking.id
    try:
        yield ids
    finally:
        with app.app_context(), acting_as():
            db.session.rollback()
            db.session.execute(sa.delete(NotificationLog).where(
                sa.or_(NotificationLog.customer_id == ids[0], NotificationLog.booking_id == ids[1])))
            db.session.execute(sa.delete(Booking).where(Booking.id == ids[1]))
            db.session.execute(sa.delete(Customer).where(Customer.id == ids[0]))
            db.session.commit()


def notify(app, booking_id: int, kind: str = "booking_confirmed") -> int:
    """Queue `kind` for the booking and commit (which sends inline or enqueues on RQ)."""
    with app.app_context(), acting_as():
        entry = queue_booking_notification(db.session, db.session.get(Booking, booking_id), kind)
        db.session.commit()
        return entry.id


def entry_state(app, log_id: int) -> tuple[str, str | None, datetime | None]:
    with app.app_context():
        entry = db.session.get(NotificationLog, log_id)
        return entry.status, entry.error, entry.sent_at


def stored_text(app) -> str:
    """Every value of every column of notification_log and its version table, as one text."""
    with app.app_context():
        rows = []
        for table in ("notification_log", "notification_log_version"):
            rows += db.session.execute(sa.text(f"SELECT * FROM {table}")).all()
        return "\n".join(str(value) for row in rows for value in row)


def business(app) -> str:
    from app.services.lenses import business_name

    with app.app_context():
        return business_name(db.session)


def run_worker(app) -> None:
    from app.jobs.worker import make_worker

    make_worker(app, ["notifications"], simple=True).work(burst=True)


def only_job(rq_queues):
    jobs = rq_queues["notifications"].jobs
    assert len(jobs) == 1, jobs
    return jobs[0]


@contextmanager
def failed_registry(rq_queues):
    from rq.registry import FailedJobRegistry

    registry = FailedJobRegistry(queue=rq_queues["notifications"])
    try:
        yield registry
    finally:
        for job_id in registry.get_job_ids():
            registry.remove(job_id, delete_job=True)


# --- e-mail, inline (no Redis) ---------------------------------------------------------------
def test_confirmation_email_in_german_with_business_and_local_time(app, world, smtp_server):
    with configured(app, **smtp_server.config()), customer_booking(app, email="auto") as (customer_id, booking_id):
        with app.app_context():
            address = db.session.get(Customer, customer_id).email
            start = db.session.get(Booking, booking_id).start_at
        log_id = notify(app, booking_id)
        [received] = smtp_server.messages
        assert received.rcpt_tos == [address]
        date = start.strftime("%d.%m.%Y")
        assert received.message["Subject"] == f"Buchungsbestätigung: Einzelstunde 60 am {date} um 09:00 Uhr"
        body = received.text
        assert body.startswith("Hallo Clara,\n\nIhr Termin ist bestätigt:\n\nEinzelstunde 60\n")
        assert "um 09:00 Uhr" in body and "08:00" not in body  # 08:00 UTC is 09:00 in Berlin in winter
        assert "bei Eva" in body and "Filiale Mitte" in body and "10115 Berlin" in body
        assert body.rstrip().endswith(f"Viele Grüße\n{business(app)}")
        status, error, sent_at = entry_state(app, log_id)
        assert (status, error) == ("sent", None) and sent_at is not None
        text = stored_text(app)
        assert "Ihr Termin ist bestätigt" not in text and "Hallo Clara" not in text
        assert received.message["Subject"] not in text


def test_english_for_a_customer_with_language_en(app, world, smtp_server):
    with configured(app, **smtp_server.config()), \
            customer_booking(app, email="auto", language="en") as (_customer_id, booking_id):
        with app.app_context():
            start = db.session.get(Booking, booking_id).start_at
        notify(app, booking_id)
        [received] = smtp_server.messages
        assert received.message["Subject"] == \
            f"Booking confirmation: Einzelstunde 60 on {start.day} Jan 2036 at 09:00"
        body = received.text
        assert body.startswith("Hello Clara,\n\nYour appointment is confirmed:")
        assert start.strftime("%A") in body and "with Eva" in body and "Kind regards" in body
        assert "Uhr" not in body and "Hallo" not in body


def test_cancellation_carries_its_reason(app, world, smtp_server):
    from app.services.status import change_status

    with configured(app, **smtp_server.config()), customer_booking(app, email="auto") as (_customer_id, booking_id):
        with app.app_context(), acting_as():
            cancelled = db.session.scalar(sa.select(BookingStatus).where(BookingStatus.kind == "cancellation"))
            entry = change_status(db.session, db.session.get(Booking, booking_id), cancelled,
                                  reason="Trainerin krank")
            db.session.commit()
            log_id = entry.id
        [received] = smtp_server.messages
        assert received.message["Subject"].startswith("Absage: Einzelstunde 60 am ")
        body = received.text
        assert "leider müssen wir Ihren Termin absagen" in body and "Grund: Trainerin krank" in body
        assert entry_state(app, log_id)[0] == "sent"


def test_free_message_travels_with_the_job_only(app, world, smtp_server):
    secret = f"Persönlicher Text {uuid.uuid4().hex}"
    with configured(app, **smtp_server.config()), customer_booking(app, email="auto") as (customer_id, _booking):
        with app.app_context(), acting_as():
            entry = queue_customer_message(db.session, db.session.get(Customer, customer_id), "message",
                                           "Ihr Termin", secret)
            db.session.commit()
            log_id = entry.id
        [received] = smtp_server.messages
        assert received.message["Subject"] == "Ihr Termin" and received.text.strip() == secret
        assert entry_state(app, log_id)[0] == "sent"
        assert secret not in stored_text(app)


def test_inline_sends_right_after_the_commit_and_never_for_a_rollback(app, world, smtp_server):
    assert app.config.get("REDIS_URL") is None and app.config["INLINE_JOBS"] == "sync"
    with configured(app, **smtp_server.config()), customer_booking(app, email="auto") as (_customer_id, booking_id):
        with app.app_context(), acting_as():
            entry = queue_booking_notification(db.session, db.session.get(Booking, booking_id), "reminder")
            db.session.flush()
            assert smtp_server.messages == []  # not before the commit
            db.session.rollback()
        assert smtp_server.messages == []
        log_id = notify(app, booking_id, "reminder")
        assert len(smtp_server.messages) == 1
        assert smtp_server.messages[0].message["Subject"].startswith("Erinnerung: ")
        assert entry_state(app, log_id)[0] == "sent"
        assert entry is not None


def test_sent_or_missing_entry_is_left_alone(app, world, smtp_server):
    with configured(app, **smtp_server.config()), customer_booking(app, email="auto") as (_customer_id, booking_id):
        log_id = notify(app, booking_id)
        first = entry_state(app, log_id)
        with app.app_context():
            send_notification(log_id)  # a duplicate run
            send_notification(10**9)  # no such entry
        assert len(smtp_server.messages) == 1 and entry_state(app, log_id) == first


def test_mail_server_not_running_fails_inline_without_raising(app, world):
    with configured(app, MAIL_SERVER=HOST, MAIL_PORT=closed_port(), MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                    NOTIFY_TIMEOUT=2), customer_booking(app, email="auto") as (_customer_id, booking_id):
        log_id = notify(app, booking_id)  # the commit (the request) goes on
        assert entry_state(app, log_id)[:2] == ("failed", "Mailserver nicht erreichbar.")


def test_channel_not_configured_fails_with_a_german_error(app, world):
    with configured(app, MAIL_SERVER=None), customer_booking(app, email="auto") as (_customer_id, booking_id):
        log_id = notify(app, booking_id)
        assert entry_state(app, log_id)[:2] == (
            "failed", "E-Mail-Versand ist nicht eingerichtet (MAIL_SERVER fehlt).")


def test_erased_customer_gets_nothing(app, world, smtp_server):
    with configured(app, **smtp_server.config()), customer_booking(app, email="auto") as (customer_id, booking_id):
        with app.app_context(), acting_as():
            entry = queue_booking_notification(db.session, db.session.get(Booking, booking_id), "reminder")
            db.session.flush()
            log_id = entry.id
            db.session.get(Customer, customer_id).erased_at = datetime.now(timezone.utc)
            db.session.commit()
        assert smtp_server.messages == []
        assert entry_state(app, log_id)[:2] == ("failed", "Kund:in wurde auf Anfrage gelöscht.")


# --- SMS and Telegram ----------------------------------------------------------------------
def test_sms_to_a_phone_only_customer(app, world, http_stub):
    with configured(app, **sms_config(http_stub)), \
            customer_booking(app, phone="0151 2345 6789") as (_customer_id, booking_id):
        log_id = notify(app, booking_id)
        [request] = http_stub.requests
        assert request.path == "/sms" and request.headers["Authorization"] == f"Bearer {SMS_TOKEN}"
        assert request.json["to"] == "+4915123456789" and request.json["from"] == "Studio"
        text = request.json["text"]
        assert text.startswith(f"{business(app)} – Buchungsbestätigung: Einzelstunde 60 am ")
        assert text.endswith("um 09:00 Uhr") and "\n" not in text
        assert entry_state(app, log_id)[0] == "sent"


@contextmanager
def employee_on_telegram(app, employee_id: int, chat_id: str = "555123"):
    with app.app_context(), acting_as():
        employee = db.session.get(Employee, employee_id)
        previous = employee.notify_channel, employee.telegram_chat_id
        employee.notify_channel, employee.telegram_chat_id = "telegram", chat_id
        db.session.commit()
    try:
        yield
    finally:
        with app.app_context(), acting_as():
            employee = db.session.get(Employee, employee_id)
            employee.notify_channel, employee.telegram_chat_id = previous
            db.session.commit()


def test_employee_hears_of_a_new_booking_on_telegram(app, world, http_stub):
    with configured(app, TELEGRAM_API_URL=http_stub.url, TELEGRAM_BOT_TOKEN=BOT_TOKEN), \
            employee_on_telegram(app, world.employee2), \
            customer_booking(app, employee_id=world.employee2) as (customer_id, booking_id):
        [request] = http_stub.requests
        assert request.path == f"/bot{BOT_TOKEN}/sendMessage"
        with app.app_context():
            booking = db.session.get(Booking, booking_id)
            name = db.session.get(Customer, customer_id).full_name
            day = booking.start_at.strftime("%d.%m.")
            entry = db.session.scalar(sa.select(NotificationLog).where(NotificationLog.booking_id == booking_id))
            assert (entry.kind, entry.channel, entry.recipient, entry.status) == (
                "staff_new_booking", "telegram", "555123", "sent")
        assert request.json["chat_id"] == "555123"
        assert request.json["text"].startswith(f"Neue Buchung: {name}, Einzelstunde 60, ")
        assert request.json["text"].endswith(f"{day} 09:00")


# --- a real RQ worker: retries --------------------------------------------------------------
def test_gateway_500_then_200_is_retried_and_sent(app, world, http_stub, rq_queues):
    http_stub.answer(500, 200)
    with configured(app, **sms_config(http_stub)), \
            customer_booking(app, phone="+4915123456789") as (_customer_id, booking_id), \
            failed_registry(rq_queues) as failed:
        log_id = notify(app, booking_id)
        job = only_job(rq_queues)
        assert entry_state(app, log_id)[0] == "queued" and http_stub.requests == []
        run_worker(app)
        assert len(http_stub.requests) == 2
        assert entry_state(app, log_id)[:2] == ("sent", None)
        assert job.id not in failed.get_job_ids()


def test_transient_failure_with_retries_left_stays_queued_with_its_error(app, world, http_stub, rq_queues):
    from rq.registry import ScheduledJobRegistry

    http_stub.answer(503)
    with configured(app, JOB_RETRY_INTERVALS=(3600,), **sms_config(http_stub)), \
            customer_booking(app, phone="+4915123456789") as (_customer_id, booking_id):
        log_id = notify(app, booking_id)
        job = only_job(rq_queues)
        scheduled = ScheduledJobRegistry(queue=rq_queues["notifications"])
        try:
            run_worker(app)
            assert entry_state(app, log_id)[:2] == ("queued", "SMS-Gateway antwortet HTTP 503.")
            assert job.id in scheduled.get_job_ids()  # back again in an hour
            assert len(http_stub.requests) == 1
        finally:
            scheduled.remove(job.id, delete_job=True)


def test_gateway_always_500_exhausts_the_retries_and_fails(app, world, http_stub, rq_queues):
    http_stub.answer(500)
    with configured(app, **sms_config(http_stub)), \
            customer_booking(app, phone="+4915123456789") as (_customer_id, booking_id), \
            failed_registry(rq_queues) as failed:
        log_id = notify(app, booking_id)
        job = only_job(rq_queues)
        run_worker(app)  # does not crash
        assert len(http_stub.requests) == 3  # the first try and JOB_RETRY_INTERVALS=(0, 0) retries
        assert entry_state(app, log_id)[:2] == ("failed", "SMS-Gateway antwortet HTTP 500.")
        assert job.id in failed.get_job_ids()
        traceback = job.latest_result().exc_string  # what the job monitor shows
        assert "TransientSendError: SMS-Gateway antwortet HTTP 500." in traceback
        assert SMS_TOKEN not in traceback


def test_gateway_400_fails_at_once_without_retry(app, world, http_stub, rq_queues):
    http_stub.answer(400)
    with configured(app, **sms_config(http_stub)), \
            customer_booking(app, phone="+4915123456789") as (_customer_id, booking_id), \
            failed_registry(rq_queues) as failed:
        log_id = notify(app, booking_id)
        job = only_job(rq_queues)
        run_worker(app)
        assert len(http_stub.requests) == 1
        assert entry_state(app, log_id)[:2] == ("failed", "SMS-Gateway lehnt ab: HTTP 400.")
        assert job.id not in failed.get_job_ids()  # a permanent failure is an answer, not a crash


def test_mail_server_down_is_retried_by_the_worker_then_fails(app, world, rq_queues):
    with configured(app, MAIL_SERVER=HOST, MAIL_PORT=closed_port(), MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                    NOTIFY_TIMEOUT=2), customer_booking(app, email="auto") as (_customer_id, booking_id), \
            failed_registry(rq_queues) as failed:
        log_id = notify(app, booking_id)
        job = only_job(rq_queues)
        run_worker(app)
        assert entry_state(app, log_id)[:2] == ("failed", "Mailserver nicht erreichbar.")
        assert job.id in failed.get_job_ids()


def test_worker_sends_email_in_the_customers_language(app, world, smtp_server, rq_queues):
    with configured(app, **smtp_server.config()), \
            customer_booking(app, email="auto", language="en") as (_customer_id, booking_id):
        log_id = notify(app, booking_id, "booking_requested")
        assert smtp_server.messages == []
        run_worker(app)
        [received] = smtp_server.messages
        assert received.message["Subject"].startswith("Request received: Einzelstunde 60 on ")
        assert entry_state(app, log_id)[0] == "sent"


# --- the texts ---------------------------------------------------------------------------------
CONTEXT = {"business": "Studio Nord", "first_name": "Anna", "customer": "Anna Berg", "service": "Einzelstunde 60",
           "employee": "Eva", "location": "Filiale Mitte", "address": "Hauptstr. 1, 10115 Berlin",
           "start": datetime(2036, 1, 15, 8, 0, tzinfo=timezone.utc), "reason": "Krankheit",
           "card": "10er-Karte", "units": 2, "total": 10,
           "expires": datetime(2036, 6, 30, 10, 0, tzinfo=timezone.utc),
           "subject": "Betreff", "body": "Text"}


@pytest.mark.parametrize("kind", sorted(set(NOTIFICATION_KINDS) | {"card_low"}))
def test_every_kind_has_a_german_and_an_english_text(app, kind):
    from app.services.notification_texts import render

    with app.app_context():
        de, en = render(kind, "de", CONTEXT), render(kind, "en", CONTEXT)
        assert render(kind, "xx", CONTEXT) == de  # an unknown language falls back to German
    assert all(de) and all(en)
    if kind in ("message", "recall"):
        assert de == en == ("Betreff", "Text")
        return
    assert de != en
    assert "Uhr" not in en[1] + en[0] and "Hallo" not in en[1]
    if not kind.startswith("card_"):
        assert "09:00" in de[1] and "09:00" in en[1]  # 08:00 UTC in Berlin
    if kind.startswith("staff_"):
        assert len(de[1]) <= 160 and "Anna Berg" in de[1] and "Einzelstunde 60" in de[1]
    elif kind.startswith("card_"):
        assert "10er-Karte" in de[1] and "2 von 10" in de[1] and "30. Juni 2036" in de[1]
    else:
        assert "Studio Nord" in de[1] and "Filiale Mitte" in de[1] and "Eva" in de[1]


def test_short_customer_text_for_sms(app):
    from app.services.notification_texts import render

    with app.app_context():
        subject, body = render("booking_cancelled", "de", {**CONTEXT, "short": True})
    assert body == f"Studio Nord – {subject} – Grund: Krankheit"
    assert subject == "Absage: Einzelstunde 60 am 15.01.2036 um 09:00 Uhr"


def test_unknown_kind_has_no_text(app):
    from app.services.notification_texts import render

    with app.app_context(), pytest.raises(ValueError):
        render("legacy_fax", "de", CONTEXT)
