"""Erinnerungsübersicht: the numbers match a hand count over the bookings, per role and row
rules; the "ohne Erinnerung" number leads to exactly those future bookings, whose reminder the
bulk action switches on."""
from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from app.extensions import db
from app.jobs.base import acting_as
from app.models import Booking, BookingStatus, Customer, NotificationLog, Service
from app.models.types import utcnow
from tests.conftest import WORLD
from tests.helpers_perm import pop_flashes, session_csrf

COUNT_RE = re.compile(r'data-window="(\w+)".*?(?=data-window=|\Z)', re.S)


def numbers(html: str) -> dict[str, dict[str, int]]:
    result = {}
    for match in COUNT_RE.finditer(html):
        block = match.group(0)
        result[match.group(1)] = {key: int(value) for key, value in
                                  re.findall(r'data-count="(\w+)">(\d+)<', block)}
    return result


def hand_count(app, employee_id: int | None = None) -> dict[str, dict[str, int]]:
    """Every booking read one by one, counted in Python (not by the SQL of the page)."""
    now = utcnow()
    result = {"past": {"with": 0, "without": 0, "sent": 0}, "future": {"with": 0, "without": 0}}
    with app.app_context():
        sent = set(db.session.scalars(sa.select(NotificationLog.booking_id).where(
            NotificationLog.kind == "reminder", NotificationLog.status == "sent")))
        for booking in db.session.scalars(sa.select(Booking)):
            if booking.cancelled or (employee_id is not None and booking.employee_id != employee_id):
                continue
            if now - timedelta(days=7) <= booking.start_at < now:
                key = "past"
            elif now <= booking.start_at < now + timedelta(days=7):
                key = "future"
            else:
                continue
            result[key]["with" if booking.reminder else "without"] += 1
            if key == "past" and booking.reminder and booking.id in sent:
                result["past"]["sent"] += 1
            elif key == "past" and booking.id in sent:
                result["past"]["sent"] += 1
    return result


def make_bookings(app):
    """A spread over both windows, both employees, cancelled and outside ones; returns ids by name."""
    now = utcnow()
    with app.app_context(), acting_as():
        cancelled = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "cancellation"))
        service = Service(name="Übersichtstest", category="einzelstunde", duration_minutes=20, price=5)
        customer = Customer(first_name="Uwe", last_name="Übersicht", email="uwe@example.org", consent_email=True)
        mute = Customer(first_name="Mia", last_name="Ohne", email="mia@example.org")
        specs = {
            "past_with_sent": (-30, True, WORLD.employee1, {}),
            "past_with": (-50, True, WORLD.employee2, {}),
            "past_without": (-70, False, WORLD.employee1, {}),
            "past_cancelled": (-90, False, WORLD.employee1, {"status_id": cancelled, "cancel_reason": "krank"}),
            "old": (-24 * 8, False, WORLD.employee1, {}),
            "future_with": (30, True, WORLD.employee1, {}),
            "future_without_1": (50, False, WORLD.employee1, {}),
            "future_without_2": (70, False, WORLD.employee2, {}),
            "future_without_mute": (80, False, WORLD.employee1, {"customer": mute}),
            "future_cancelled": (90, False, WORLD.employee2, {"status_id": cancelled, "cancel_reason": "krank"}),
            "far": (24 * 8, False, WORLD.employee1, {}),
        }
        rows = {}
        for n, (name, (minutes_or_hours, reminder, employee, extra)) in enumerate(specs.items()):
            offset = timedelta(hours=minutes_or_hours) if abs(minutes_or_hours) > 100 else \
                timedelta(hours=minutes_or_hours // 10, minutes=n)
            extra = {"customer": customer, **extra}
            rows[name] = Booking(service=service, employee_id=employee, start_at=now + offset, reminder=reminder,
                                 hours_override=True, **extra)
        db.session.add_all(rows.values())
        db.session.flush()
        db.session.add(NotificationLog(kind="reminder", channel="email", recipient="uwe@example.org",
                                       customer=customer, booking=rows["past_with_sent"], status="sent"))
        db.session.commit()
        return {name: booking.id for name, booking in rows.items()}, (service.id, customer.id, mute.id)


def remove(app, ids, others):
    with app.app_context(), acting_as():
        db.session.execute(sa.delete(NotificationLog).where(NotificationLog.booking_id.in_(ids.values())))
        for pk in ids.values():
            db.session.delete(db.session.get(Booking, pk))
        db.session.flush()
        service_id, *customers = others
        for pk in customers:
            db.session.delete(db.session.get(Customer, pk))
        db.session.delete(db.session.get(Service, service_id))
        db.session.commit()


def test_the_numbers_match_a_hand_count(app, world, manager, employee):
    ids, others = make_bookings(app)
    try:
        html = manager.get("/erinnerungen/").get_data(as_text=True)
        expected = hand_count(app)
        assert numbers(html) == expected
        # the spread itself counts: 2 with (1 sent) and 1 without in the past, 1 with and 3 without ahead
        assert expected["past"]["with"] >= 2 and expected["future"]["without"] >= 3
        assert html.count("<svg") == 2 and "http" not in re.sub(r'href="[^"]*"|xmlns="[^"]*"', "", html.split(
            "tb-coverage", 1)[1].split("</svg>", 1)[0])
        mine = employee.get("/erinnerungen/").get_data(as_text=True)
        assert numbers(mine) == hand_count(app, WORLD.employee1)
        assert numbers(mine) != numbers(html)
    finally:
        remove(app, ids, others)


def test_the_without_list_shows_exactly_the_future_bookings_without_reminder(app, world, manager, employee):
    ids, others = make_bookings(app)
    try:
        html = manager.get("/erinnerungen/ohne/").get_data(as_text=True)
        listed = {int(pk) for pk in re.findall(r'data-booking="(\d+)"', html)}
        mine = {ids[name] for name in ("future_without_1", "future_without_2", "future_without_mute")}
        assert mine <= listed
        assert not listed & {ids[name] for name in ("future_with", "future_cancelled", "far", "past_without")}
        assert "keine Einwilligung für E-Mail oder SMS" in html  # Mia gave none
        own = employee.get("/erinnerungen/ohne/").get_data(as_text=True)
        own_listed = {int(pk) for pk in re.findall(r'data-booking="(\d+)"', own)}
        assert ids["future_without_1"] in own_listed and ids["future_without_2"] not in own_listed
        with app.app_context():
            assert all(db.session.get(Booking, pk).employee_id == WORLD.employee1 for pk in own_listed)
    finally:
        remove(app, ids, others)


def test_the_bulk_action_switches_the_reminder_on_and_comes_back(app, world, manager):
    ids, others = make_bookings(app)
    try:
        chosen = [ids["future_without_1"], ids["future_without_2"]]
        response = manager.post("/bookingview/action_post", data={
            "action": "set_reminder", "rowid": chosen, "next": "/erinnerungen/ohne/",
            "csrf_token": session_csrf(manager)})
        assert response.status_code == 302 and response.headers["Location"].endswith("/erinnerungen/ohne/")
        assert any("Erinnerung für 2 Termin(e) aktiviert" in text for _cat, text in pop_flashes(manager))
        with app.app_context():
            assert [db.session.get(Booking, pk).reminder for pk in chosen] == [True, True]
            assert db.session.get(Booking, ids["future_without_mute"]).reminder is False
    finally:
        remove(app, ids, others)


def test_the_bulk_action_without_csrf_changes_nothing(app, world, manager):
    ids, others = make_bookings(app)
    try:
        response = manager.post("/bookingview/action_post", data={
            "action": "set_reminder", "rowid": [ids["future_without_1"]]})
        assert response.status_code in (302, 400)
        with app.app_context():
            assert db.session.get(Booking, ids["future_without_1"]).reminder is False
    finally:
        remove(app, ids, others)


def test_an_employee_cannot_switch_on_a_colleagues_reminder(app, world, employee):
    ids, others = make_bookings(app)
    try:
        employee.post("/bookingview/action_post", data={
            "action": "set_reminder", "rowid": [ids["future_without_2"]], "csrf_token": session_csrf(employee)})
        with app.app_context():
            assert db.session.get(Booking, ids["future_without_2"]).reminder is False
    finally:
        remove(app, ids, others)


def test_the_viewer_has_no_overview_and_bad_pages_are_400(world, viewer, manager):
    assert viewer.get("/erinnerungen/").status_code in (302, 403)
    assert manager.get("/erinnerungen/ohne/?page=x").status_code == 400


def test_the_overview_in_english(world, manager):
    assert manager.get("/lang/en").status_code == 302
    html = manager.get("/erinnerungen/").get_data(as_text=True)
    manager.get("/lang/de")
    assert "Last 7 days" in html and "with reminder" in html and "mit Erinnerung" not in html
