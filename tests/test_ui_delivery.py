"""Done-when of the jobs issue: a booking confirmed in the UI is delivered over real SMTP to a
local server — inline without Redis, and through Redis and a real RQ worker."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from app.extensions import db
from app.jobs.base import acting_as
from app.models import Booking, BookingStatus, NotificationLog, Service
from tests.helpers_perm import session_csrf
from tests.servers import configured

START = datetime(2031, 1, 14, 8, 0, tzinfo=timezone.utc)  # 09:00 in Berlin (winter)


def workflow_booking(app, world, start: datetime) -> tuple[int, int]:
    with app.app_context(), acting_as():
        service = Service(name="Schnuppertraining", category="einzelstunde", duration_minutes=45, price=30,
                          status_workflow=True)
        booking = Booking(customer_id=world.customer1, service=service, employee_id=world.employee1,
                          start_at=start, hours_override=True)
        db.session.add(booking)
        db.session.commit()
        return booking.id, service.id


def remove(app, pk: int, service_id: int) -> None:
    with app.app_context(), acting_as():
        db.session.execute(sa.delete(NotificationLog).where(NotificationLog.booking_id == pk))
        db.session.delete(db.session.get(Booking, pk))
        db.session.flush()
        db.session.delete(db.session.get(Service, service_id))
        db.session.commit()


def confirm_in_the_ui(app, client, pk: int) -> None:
    with app.app_context():
        confirmed = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "confirmation"))
    assert client.get(f"/bookingview/show/{pk}").status_code == 200
    response = client.post(f"/bookingview/action/change_status/{pk}", data={
        "status_id": confirmed, "reason": "", "csrf_token": session_csrf(client)})
    assert response.status_code == 302


def assert_delivered(app, smtp_server, pk: int) -> None:
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.rcpt_tos == ["anna@example.org"]
    assert received.message["Subject"].startswith("Buchungsbestätigung: Schnuppertraining am ")
    assert "09:00" in received.text and "Schnuppertraining" in received.text
    with app.app_context():
        entry = db.session.scalar(sa.select(NotificationLog).where(NotificationLog.booking_id == pk))
        assert (entry.kind, entry.channel, entry.status, entry.error) == ("booking_confirmed", "email", "sent", None)


def test_confirming_in_the_ui_sends_the_mail_inline_without_redis(app, world, manager, smtp_server):
    pk, service_id = workflow_booking(app, world, START)
    try:
        with configured(app, **smtp_server.config()):
            assert app.config.get("REDIS_URL") is None
            confirm_in_the_ui(app, manager, pk)
        assert_delivered(app, smtp_server, pk)
    finally:
        remove(app, pk, service_id)


def test_confirming_in_the_ui_sends_the_mail_through_a_real_worker(app, world, manager, smtp_server, rq_queues):
    from app.jobs.worker import make_worker

    pk, service_id = workflow_booking(app, world, START.replace(hour=10))
    try:
        with configured(app, **smtp_server.config()):
            confirm_in_the_ui(app, manager, pk)
            assert smtp_server.messages == []  # queued on Redis, not sent by the web request
            assert rq_queues["notifications"].count == 1
            make_worker(app, ["notifications"], simple=True).work(burst=True)
        assert rq_queues["notifications"].count == 0
        assert len(smtp_server.messages) == 1
        assert "11:00" in smtp_server.messages[0].text  # 10:00 UTC, in Berlin's winter time
        with app.app_context():
            entry = db.session.scalar(sa.select(NotificationLog).where(NotificationLog.booking_id == pk))
            assert entry.status == "sent"
    finally:
        remove(app, pk, service_id)


def test_a_request_booked_in_the_form_tells_the_customer_it_arrived(app, world, manager, smtp_server):
    pk, service_id = workflow_booking(app, world, START.replace(hour=12))  # makes the workflow service
    try:
        with configured(app, **smtp_server.config()):
            response = manager.post("/bookingview/add", data={
                "customer": world.customer1, "service": service_id, "employee": world.employee2,
                "start_at": "2031-01-15 09:00:00", "end_at": "", "source": "phone", "reminder": "auto",
                "comment": "Anfrage-Probe", "hours_override": "y", "csrf_token": session_csrf(manager)})
            assert response.status_code == 302
        with app.app_context():
            new = db.session.scalar(sa.select(Booking).where(Booking.comment == "Anfrage-Probe"))
            entry = db.session.scalar(sa.select(NotificationLog).where(NotificationLog.booking_id == new.id))
            assert (entry.kind, entry.status) == ("booking_requested", "sent")
            assert new.reminder is False  # "automatisch": customer1 gave no consent
            new_id = new.id
        assert [m.message["Subject"] for m in smtp_server.messages] == [
            "Anfrage eingegangen: Schnuppertraining am 15.01.2031 um 09:00 Uhr"]
        remove_booking(app, new_id)
    finally:
        remove(app, pk, service_id)


def remove_booking(app, pk: int) -> None:
    with app.app_context(), acting_as():
        db.session.execute(sa.delete(NotificationLog).where(NotificationLog.booking_id == pk))
        db.session.delete(db.session.get(Booking, pk))
        db.session.commit()


def test_the_customer_form_sets_the_language_of_the_mails(app, world, manager):
    import re
    from html import unescape

    from app.models import Customer
    from tests.test_validation import form_values

    url = f"/customerview/edit/{world.customer2}"
    page = manager.get(url).get_data(as_text=True)
    assert re.search(r'<select[^>]*name="language"', page) and 'value="en"' in page
    data = form_values(page, "language")
    try:
        assert manager.post(url, data=data | {"language": "en"}).status_code == 302
        with app.app_context():
            assert db.session.get(Customer, world.customer2).language == "en"
        response = manager.post(url, data=data | {"language": "fr"})
        assert "Keine gültige Auswahl" in unescape(response.get_data(as_text=True))
        with app.app_context():
            assert db.session.get(Customer, world.customer2).language == "en"
    finally:
        with app.app_context(), acting_as():
            db.session.get(Customer, world.customer2).language = "de"
            db.session.commit()
