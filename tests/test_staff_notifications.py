"""Staff notifications: an employee who chose SMS or Telegram is told of a new booking, a
cancellation and a change of tomorrow's plan — recorded in the same transaction, sent after
the commit, never for a rolled-back change, never about their own doing."""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from html import unescape

import sqlalchemy as sa

from app.extensions import db
from app.formatting import business_tz
from app.jobs.base import acting_as
from app.models import Booking, BookingStatus, Employee, NotificationLog
from app.models.types import utcnow
from tests.conftest import WORLD, distinct_start


@contextmanager
def channel(app, employee_id: int, notify: str, phone: str | None = "+4915112345678", chat: str | None = "4711"):
    with app.app_context(), acting_as():
        employee = db.session.get(Employee, employee_id)
        before = (employee.notify_channel, employee.phone, employee.telegram_chat_id)
        employee.notify_channel, employee.phone, employee.telegram_chat_id = notify, phone, chat
        db.session.commit()
    try:
        yield
    finally:
        with app.app_context(), acting_as():
            employee = db.session.get(Employee, employee_id)
            employee.notify_channel, employee.phone, employee.telegram_chat_id = before
            db.session.commit()


def staff_logs(app, booking_id: int) -> list[tuple[str, str, str, int]]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            sa.select(NotificationLog.kind, NotificationLog.channel, NotificationLog.recipient,
                      NotificationLog.employee_id)
            .where(NotificationLog.booking_id == booking_id, NotificationLog.kind.like("staff_%"))
            .order_by(NotificationLog.id))]


def tomorrow_at(app, hour: int) -> datetime:
    with app.app_context():
        zone = business_tz()
    day = (datetime.now(zone) + timedelta(days=1)).date()
    return datetime.combine(day, time(hour), tzinfo=zone)


@contextmanager
def booking(app, start: datetime, employee_id: int | None = None, username: str | None = None):
    with app.app_context():
        ctx = acting_as(username) if username else acting_as()
        with ctx:
            item = Booking(customer_id=WORLD.customer1, service_id=WORLD.service,
                           employee_id=employee_id or WORLD.employee1, start_at=start, hours_override=True)
            db.session.add(item)
            db.session.commit()
            pk = item.id
    try:
        yield pk
    finally:
        with app.app_context(), acting_as():
            db.session.execute(sa.delete(NotificationLog).where(NotificationLog.booking_id == pk))
            db.session.delete(db.session.get(Booking, pk))
            db.session.commit()


def test_a_new_booking_tells_the_employee_by_telegram(app, world):
    with channel(app, WORLD.employee1, "telegram"), booking(app, distinct_start(utcnow() + timedelta(days=400))) as pk:
        assert staff_logs(app, pk) == [("staff_new_booking", "telegram", "4711", WORLD.employee1)]


def test_sms_goes_to_the_employees_phone_and_off_means_nothing(app, world):
    with channel(app, WORLD.employee1, "sms"), booking(app, distinct_start(utcnow() + timedelta(days=400))) as pk:
        assert staff_logs(app, pk) == [("staff_new_booking", "sms", "+4915112345678", WORLD.employee1)]
    with channel(app, WORLD.employee1, "none"), booking(app, distinct_start(utcnow() + timedelta(days=400))) as pk:
        assert staff_logs(app, pk) == []
    with channel(app, WORLD.employee1, "telegram", chat=None), \
            booking(app, distinct_start(utcnow() + timedelta(days=400))) as pk:
        assert staff_logs(app, pk) == []  # no chat id: nothing to send to


def test_no_message_about_ones_own_booking_or_a_past_one(app, world):
    with channel(app, WORLD.employee1, "telegram"):
        with booking(app, distinct_start(utcnow() + timedelta(days=400)), username="employee1") as pk:
            assert staff_logs(app, pk) == []
        with booking(app, utcnow() - timedelta(days=3, hours=distinct_start(utcnow()).hour)) as pk:
            assert staff_logs(app, pk) == []


def test_a_cancellation_tells_the_employee(app, world):
    with app.app_context():
        cancelled = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "cancellation"))
    with booking(app, distinct_start(utcnow() + timedelta(days=400))) as pk, channel(app, WORLD.employee1, "sms"):
        with app.app_context(), acting_as():
            item = db.session.get(Booking, pk)
            item.status_id, item.cancel_reason = cancelled, "krank"
            db.session.commit()
        assert staff_logs(app, pk) == [("staff_cancelled", "sms", "+4915112345678", WORLD.employee1)]


def test_moving_tomorrows_booking_tells_both_employees(app, world):
    with booking(app, tomorrow_at(app, 7)) as pk, channel(app, WORLD.employee1, "sms"), \
            channel(app, WORLD.employee2, "telegram", chat="999"):
        with app.app_context(), acting_as():
            item = db.session.get(Booking, pk)
            item.employee_id = WORLD.employee2
            item.start_at = tomorrow_at(app, 6)
            item.end_at = item.start_at + timedelta(minutes=60)
            db.session.commit()
        assert sorted(staff_logs(app, pk)) == sorted([
            ("staff_schedule_changed", "sms", "+4915112345678", WORLD.employee1),
            ("staff_schedule_changed", "telegram", "999", WORLD.employee2),
        ])


def test_a_change_far_ahead_is_no_schedule_message(app, world):
    with booking(app, distinct_start(utcnow() + timedelta(days=400))) as pk, channel(app, WORLD.employee1, "sms"):
        with app.app_context(), acting_as():
            item = db.session.get(Booking, pk)
            item.start_at += timedelta(hours=1)
            item.end_at += timedelta(hours=1)
            db.session.commit()
        assert staff_logs(app, pk) == []


def test_a_rolled_back_booking_records_and_sends_nothing(app, world, rq_queues):
    with channel(app, WORLD.employee1, "telegram"), app.app_context(), acting_as():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(NotificationLog))
        item = Booking(customer_id=WORLD.customer1, service_id=WORLD.service, employee_id=WORLD.employee1,
                       start_at=distinct_start(utcnow() + timedelta(days=400)), hours_override=True)
        db.session.add(item)
        db.session.flush()
        db.session.rollback()
        db.session.commit()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(NotificationLog)) == before
    assert rq_queues["notifications"].count == 0


def test_the_message_is_enqueued_after_the_commit(app, world, rq_queues):
    with channel(app, WORLD.employee1, "telegram"), booking(app, distinct_start(utcnow() + timedelta(days=400))) as pk:
        with app.app_context():
            log_id = db.session.scalar(sa.select(NotificationLog.id).where(NotificationLog.booking_id == pk))
        jobs = rq_queues["notifications"].get_jobs()
        assert [(job.func_name, job.args) for job in jobs] == [("app.jobs.notifications.send_notification", (log_id,))]


def test_the_employee_form_offers_the_channel_and_refuses_junk(app, world, owner):
    from tests.test_validation import form_values

    url = f"/employeeview/edit/{WORLD.employee2}"
    page = owner.get(url).get_data(as_text=True)
    assert re.search(r'<select[^>]*name="notify_channel"', page) and 'value="telegram"' in page
    data = form_values(page, "notify_channel")
    try:
        response = owner.post(url, data=data | {"notify_channel": "telegram", "telegram_chat_id": "123"})
        assert response.status_code == 302
        with app.app_context():
            assert db.session.get(Employee, WORLD.employee2).notify_channel == "telegram"
        response = owner.post(url, data=data | {"notify_channel": "fax"})
        assert response.status_code == 200 and "Keine gültige Auswahl" in unescape(response.get_data(as_text=True))
        with app.app_context():
            assert db.session.get(Employee, WORLD.employee2).notify_channel == "telegram"
    finally:
        with app.app_context(), acting_as():
            employee = db.session.get(Employee, WORLD.employee2)
            employee.notify_channel, employee.telegram_chat_id = "none", None
            db.session.commit()
