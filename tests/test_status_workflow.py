"""Status workflow: start status per service, "Status ändern" (detail and list), the
cancellation-reason rule on every write path, customer notifications (NotificationLog +
a job on the real Redis queue), "Offene Anfragen" and the status history."""
from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.formatting import fmt_datetime, status_badge, to_local
from app.jobs.base import acting_as
from app.models import Booking, BookingStatus, NotificationLog, Service
from app.services.notifications import SEND_JOB
from app.services.status import change_status, status_history
from tests.helpers_perm import api_token, bearer, html, pop_flashes, session_csrf

REASON_MESSAGE = "Für eine Stornierung ist ein Grund erforderlich."
# Mondays to Fridays of 2033, 10:00–15:00 Berlin (winter: UTC+1): free for these tests only.
SLOTS = (
    datetime(2033, 1, 3, 9, tzinfo=timezone.utc) + timedelta(weeks=week, days=day, hours=hour)
    for week in itertools.count() for day in range(5) for hour in range(6)
)


# --- fixtures ------------------------------------------------------------------------
def status_id(app, kind: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == kind)
                                 .order_by(BookingStatus.position))


@pytest.fixture(scope="module")
def kinds(app, world) -> dict[str, int]:
    return {kind: status_id(app, kind) for kind in ("start", "confirmation", "cancellation", "completed")}


@pytest.fixture(scope="module")
def workflow_service(app, world):
    """A service with the status workflow switched on; its bookings are removed afterwards."""
    with app.app_context(), acting_as():
        service = Service(name="Workflow-Probe", category="einzelstunde", duration_minutes=30,
                          price=Decimal("30.00"), status_workflow=True)
        db.session.add(service)
        db.session.commit()
        pk = service.id
    yield pk
    with app.app_context(), acting_as():
        for booking in db.session.scalars(sa.select(Booking).where(Booking.service_id == pk)):
            db.session.delete(booking)
        db.session.flush()
        db.session.delete(db.session.get(Service, pk))
        db.session.commit()


@pytest.fixture()
def make_booking(app, world, workflow_service):
    """make_booking(employee="employee1") → id of a new booking of the workflow service
    (start status), at a slot of its own; removed with its notifications afterwards."""
    made = []

    def make(employee: str = "employee1", comment: str = "Statusprobe", start: datetime | None = None) -> int:
        with app.app_context(), acting_as():
            booking = Booking(customer_id=world.customer1, service_id=workflow_service,
                              employee_id=getattr(world, employee), start_at=start or next(SLOTS), comment=comment)
            db.session.add(booking)
            db.session.commit()
            made.append(booking.id)
            return booking.id

    yield make
    with app.app_context(), acting_as():
        db.session.execute(sa.delete(NotificationLog).where(NotificationLog.booking_id.in_(made)))
        for pk in made:
            row = db.session.get(Booking, pk)
            if row is not None:
                db.session.delete(row)
        db.session.commit()


@pytest.fixture()
def rq_queue(rq_queues):
    """The "notifications" queue on this worker's Redis database (tests/conftest.py)."""
    return rq_queues["notifications"]


def stored(app, pk: int) -> tuple[int, str | None]:
    with app.app_context():
        booking = db.session.get(Booking, pk)
        return booking.status_id, booking.cancel_reason


def notifications(app, pk: int) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.scalars(sa.select(NotificationLog).where(NotificationLog.booking_id == pk)
                                  .order_by(NotificationLog.id))
        return [(row.kind, row.status) for row in rows]


def notification_ids(app, pk: int) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(sa.select(NotificationLog.id).where(NotificationLog.booking_id == pk)
                                       .order_by(NotificationLog.id)))


def change_on_detail(client, pk: int, status: int, reason: str = ""):
    """The detail page's "Status ändern" form, as a browser submits it."""
    page = client.get(f"/bookingview/show/{pk}")
    assert page.status_code == 200
    return client.post(f"/bookingview/action/change_status/{pk}", data={
        "status_id": status, "reason": reason, "csrf_token": session_csrf(client)})


def bulk(client, pks, **form):
    data = {"action": "change_status", "rowid": [str(pk) for pk in pks], "csrf_token": session_csrf(client)}
    return client.post("/bookingview/action_post", data={**data, **form})


# --- start status per service ------------------------------------------------------------
def test_new_bookings_start_in_start_status_only_with_the_workflow(app, world, client_for, kinds,
                                                                   workflow_service):
    manager = client_for("Manager")
    created = []
    for service, comment in ((workflow_service, "Neu mit Workflow"), (world.service, "Neu ohne Workflow")):
        response = manager.post("/bookingview/add", data={
            "customer": world.customer1, "service": service, "employee": world.employee2,
            "start_at": next(SLOTS).astimezone(timezone(timedelta(hours=1))).strftime("%Y-%m-%d %H:%M:%S"),
            "end_at": "", "source": "backoffice", "reminder": "y", "comment": comment,
            "csrf_token": session_csrf(manager)})
        assert response.status_code == 302, pop_flashes(manager)
        created.append(comment)
    token = api_token(app, "employee1")
    for service, comment in ((workflow_service, "REST mit Workflow"), (world.service, "REST ohne Workflow")):
        start = next(SLOTS)
        response = app.test_client().post("/api/v1/booking/", headers=bearer(token), json={
            "customer": world.customer1, "service": service, "employee": world.employee1,
            "start_at": start.isoformat(), "end_at": (start + timedelta(minutes=30)).isoformat(), "comment": comment})
        assert response.status_code == 201, response.json
        created.append(comment)
    with app.app_context(), acting_as():
        rows = {b.comment: b for b in db.session.scalars(sa.select(Booking).where(Booking.comment.in_(created)))}
        assert {comment: b.status_id for comment, b in rows.items()} == {
            "Neu mit Workflow": kinds["start"], "Neu ohne Workflow": kinds["confirmation"],
            "REST mit Workflow": kinds["start"], "REST ohne Workflow": kinds["confirmation"],
        }
        # the customer hears where the new booking stands: a request arrived, or confirmed
        notes = db.session.execute(sa.select(NotificationLog.booking_id, NotificationLog.kind).where(
            NotificationLog.booking_id.in_([b.id for b in rows.values()]))).all()
        rows_by_id = {b.id: c for c, b in rows.items()}
        assert sorted(f"{rows_by_id[pk]}: {kind}" for pk, kind in notes) == [
            "Neu mit Workflow: booking_requested", "Neu ohne Workflow: booking_confirmed",
            "REST mit Workflow: booking_requested", "REST ohne Workflow: booking_confirmed"]
        db.session.execute(sa.delete(NotificationLog).where(NotificationLog.booking_id.in_(list(rows_by_id))))
        for booking in rows.values():
            db.session.delete(booking)
        db.session.commit()


# --- "Status ändern" on the detail page -----------------------------------------------------
def test_employee_confirms_own_booking_and_the_customer_notification_is_queued(
        app, client_for, kinds, make_booking, rq_queue):
    pk = make_booking()
    client = client_for("Employee")
    page = html(client.get(f"/bookingview/show/{pk}"))
    assert 'id="status-aendern"' in page and "/bookingview/action/change_status/" in page
    response = change_on_detail(client, pk, kinds["confirmation"])
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/bookingview/show/{pk}")
    assert ("success", "Status von 1 Termin(en) auf „bestätigt“ gesetzt.") in pop_flashes(client)
    assert stored(app, pk) == (kinds["confirmation"], None)
    assert notifications(app, pk) == [("booking_confirmed", "queued")]
    assert [(job.func_name, job.args) for job in rq_queue.get_jobs()] == [(SEND_JOB, tuple(notification_ids(app, pk)))]

    # the same status again changes nothing and queues nothing
    response = change_on_detail(client, pk, kinds["confirmation"])
    assert response.status_code == 302
    assert notifications(app, pk) == [("booking_confirmed", "queued")]
    assert rq_queue.count == 1


def test_employee_cannot_change_a_colleagues_booking(app, client_for, kinds, make_booking, rq_queue):
    pk = make_booking("employee2")
    before = stored(app, pk)
    client = client_for("Employee")
    assert client.get(f"/bookingview/show/{pk}").status_code == 404
    response = client.post(f"/bookingview/action/change_status/{pk}", data={
        "status_id": kinds["confirmation"], "csrf_token": session_csrf(client)})
    assert response.status_code == 404
    # a forged id in the list action: dropped by the row rules, nothing changes
    response = bulk(client, [pk], status_id=kinds["confirmation"])
    assert response.status_code == 302
    assert ("warning", "Keine gültigen Einträge ausgewählt.") in pop_flashes(client)
    assert stored(app, pk) == before and notifications(app, pk) == [] and rq_queue.count == 0
    # with an own booking beside it, only the own one changes
    own = make_booking()
    response = bulk(client, [pk, own], status_id=kinds["confirmation"])
    assert response.status_code == 302
    assert stored(app, pk) == before and stored(app, own)[0] == kinds["confirmation"]
    assert notifications(app, pk) == []


def test_viewer_may_not_change_a_status(app, client_for, kinds, make_booking):
    pk = make_booking()
    before = stored(app, pk)
    viewer = client_for("Viewer")
    page = html(viewer.get(f"/bookingview/show/{pk}"))
    assert 'id="status-aendern"' not in page and 'id="statusverlauf"' in page
    response = viewer.post(f"/bookingview/action/change_status/{pk}", data={
        "status_id": kinds["confirmation"], "csrf_token": session_csrf(viewer)})
    assert response.status_code == 403
    assert bulk(viewer, [pk], status_id=kinds["confirmation"]).status_code == 403
    assert stored(app, pk) == before and notifications(app, pk) == []


def test_status_change_needs_csrf(app, client_for, kinds, make_booking):
    pk = make_booking()
    before = stored(app, pk)
    client = client_for("Manager")
    response = client.post(f"/bookingview/action/change_status/{pk}", data={"status_id": kinds["confirmation"]})
    assert response.status_code == 400
    assert client.get(f"/bookingview/action/change_status/{pk}").status_code == 405
    assert stored(app, pk) == before


# --- cancellation needs a reason on every write path ------------------------------------------
def test_cancellation_without_reason_is_refused_everywhere(app, client_for, kinds, make_booking, rq_queue):
    pk = make_booking()
    before = stored(app, pk)
    manager = client_for("Manager")

    response = change_on_detail(manager, pk, kinds["cancellation"], reason="   ")
    assert response.status_code == 302
    assert ("danger", REASON_MESSAGE) in pop_flashes(manager)

    response = bulk(manager, [pk], status_id=kinds["cancellation"], reason="")
    assert response.status_code == 200 and REASON_MESSAGE in html(response)
    assert f'name="rowid" value="{pk}"' in html(response)  # the form again, with the selection

    response = manager.post(f"/bookingview/edit/{pk}", data={
        **edit_form(app, pk), "status": kinds["cancellation"], "cancel_reason": "",
        "csrf_token": session_csrf(manager)})
    assert REASON_MESSAGE in html(response) or ("danger", REASON_MESSAGE) in pop_flashes(manager)
    assert stored(app, pk) == before

    token = api_token(app, "manager")
    response = app.test_client().put(f"/api/v1/booking/{pk}", headers=bearer(token),
                                     json={"status": kinds["cancellation"]})
    assert response.status_code == 400 and REASON_MESSAGE in response.json["message"]
    response = app.test_client().put(f"/api/v1/booking/{pk}", headers=bearer(token),
                                     json={"status": kinds["cancellation"], "cancel_reason": " "})
    assert response.status_code == 400

    assert stored(app, pk) == before
    assert notifications(app, pk) == [] and rq_queue.count == 0

    # control: the edit form with a reason cancels, and the customer is notified like "Status ändern" does
    response = manager.post(f"/bookingview/edit/{pk}", data={
        **edit_form(app, pk), "status": kinds["cancellation"], "cancel_reason": "per Formular",
        "csrf_token": session_csrf(manager)})
    assert response.status_code == 302, pop_flashes(manager)
    assert stored(app, pk) == (kinds["cancellation"], "per Formular")
    assert notifications(app, pk) == [("booking_cancelled", "queued")] and rq_queue.count == 1


def edit_form(app, pk: int) -> dict:
    """The edit form's fields as stored (times business-local)."""
    with app.app_context():
        booking = db.session.get(Booking, pk)
        local = "%Y-%m-%d %H:%M:%S"
        return {
            "customer": booking.customer_id, "service": booking.service_id, "employee": booking.employee_id,
            "start_at": to_local(booking.start_at).strftime(local), "end_at": to_local(booking.end_at).strftime(local),
            "status": booking.status_id, "price": str(booking.price), "source": booking.source, "reminder": "y",
            "comment": booking.comment,
        }


def test_cancellation_with_reason_is_stored_and_notified(app, client_for, kinds, make_booking, rq_queue):
    pk = make_booking()
    employee = client_for("Employee")
    response = change_on_detail(employee, pk, kinds["cancellation"], reason="  Kundin ist krank  ")
    assert response.status_code == 302
    assert stored(app, pk) == (kinds["cancellation"], "Kundin ist krank")
    assert notifications(app, pk) == [("booking_cancelled", "queued")]
    assert [job.args for job in rq_queue.get_jobs()] == [tuple(notification_ids(app, pk))]
    with app.app_context():
        assert db.session.get(Booking, pk).cancelled is True

    # back to confirmed: the reason goes, the confirmation is notified
    response = change_on_detail(employee, pk, kinds["confirmation"])
    assert stored(app, pk) == (kinds["confirmation"], None)
    assert notifications(app, pk) == [("booking_cancelled", "queued"), ("booking_confirmed", "queued")]
    assert rq_queue.count == 2


def test_failed_change_stores_and_notifies_nothing(app, client_for, kinds, make_booking, rq_queue):
    """A cancelled booking whose slot was given away cannot come back (the overlap rule)."""
    pk = make_booking()
    employee = client_for("Employee")
    assert change_on_detail(employee, pk, kinds["cancellation"], reason="abgesagt").status_code == 302
    with app.app_context():
        start = db.session.get(Booking, pk).start_at
    make_booking(start=start)  # the freed slot, booked again
    before, queued = stored(app, pk), rq_queue.count
    pop_flashes(employee)
    for status in (kinds["confirmation"], kinds["start"]):
        response = change_on_detail(employee, pk, status)
        assert response.status_code == 302
        flashed = pop_flashes(employee)
        assert flashed and flashed[0][0] == "danger" and "überschneidet sich" in flashed[0][1], flashed
    assert stored(app, pk) == before
    assert notifications(app, pk) == [("booking_cancelled", "queued")] and rq_queue.count == queued


def test_rest_put_with_reason_cancels_and_notifies(app, kinds, make_booking, rq_queue):
    pk = make_booking()
    token = api_token(app, "employee1")
    response = app.test_client().put(f"/api/v1/booking/{pk}", headers=bearer(token),
                                     json={"status": kinds["cancellation"], "cancel_reason": "Telefonisch abgesagt"})
    assert response.status_code == 200, response.json
    assert stored(app, pk) == (kinds["cancellation"], "Telefonisch abgesagt")
    assert notifications(app, pk) == [("booking_cancelled", "queued")]
    assert rq_queue.count == 1
    # an edit that keeps the status queues nothing more
    response = app.test_client().put(f"/api/v1/booking/{pk}", headers=bearer(token), json={"comment": "nur Text"})
    assert response.status_code == 200, response.json
    assert len(notifications(app, pk)) == 1 and rq_queue.count == 1


def test_bulk_change_over_the_list(app, client_for, kinds, make_booking, rq_queue):
    pks = [make_booking(), make_booking()]
    manager = client_for("Manager")
    form = bulk(manager, pks)  # the list's action without a status: the form
    page = html(form)
    assert form.status_code == 200
    for pk in pks:
        assert f'name="rowid" value="{pk}"' in page
    assert 'name="reason"' in page and 'data-kind="cancellation"' in page
    response = bulk(manager, pks, status_id=kinds["cancellation"], reason="Filiale geschlossen",
                    next="/openrequests/list/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/openrequests/list/")
    assert ("success", "Status von 2 Termin(en) auf „storniert“ gesetzt.") in pop_flashes(manager)
    assert [stored(app, pk) for pk in pks] == [(kinds["cancellation"], "Filiale geschlossen")] * 2
    assert rq_queue.count == 2
    # an outside `next` is not followed
    response = bulk(manager, pks, status_id=kinds["confirmation"], next="https://example.com/")
    assert response.headers["Location"].endswith("/bookingview/list/")


def test_change_status_service_rules(app, world, kinds, make_booking):
    pk = make_booking()
    with app.app_context(), acting_as():
        booking = db.session.get(Booking, pk)
        cancelled = db.session.get(BookingStatus, kinds["cancellation"])
        with pytest.raises(ValueError, match=REASON_MESSAGE):
            change_status(db.session, booking, cancelled)
        assert booking.status_id == kinds["start"]
        assert change_status(db.session, booking, booking.status) is None  # no-op
        completed = db.session.get(BookingStatus, kinds["completed"])
        assert change_status(db.session, booking, completed) is None  # no notification for "completed"
        db.session.commit()
        entry = change_status(db.session, booking, db.session.get(BookingStatus, kinds["confirmation"]))
        assert entry is not None and entry.kind == "booking_confirmed"
        db.session.commit()


# --- Offene Anfragen ---------------------------------------------------------------------------
ROW = re.compile(r'<tr data-booking="(\d+)">')


def listed(client, url: str = "/openrequests/list/") -> set[int]:
    response = client.get(url)
    assert response.status_code == 200
    return {int(pk) for pk in ROW.findall(html(response))}


def test_open_requests_lists_start_and_neutral_with_switch_for_confirmed(app, world, client_for, kinds,
                                                                          make_booking):
    own_open, own_confirmed, colleague_open = make_booking(), make_booking(), make_booking("employee2")
    own_cancelled = make_booking()
    with app.app_context(), acting_as():
        change_status(db.session, db.session.get(Booking, own_confirmed),
                      db.session.get(BookingStatus, kinds["confirmation"]))
        change_status(db.session, db.session.get(Booking, own_cancelled),
                      db.session.get(BookingStatus, kinds["cancellation"]), "abgesagt")
        db.session.commit()
    manager = client_for("Manager")
    shown = listed(manager)
    assert {own_open, colleague_open} <= shown
    assert own_confirmed not in shown and own_cancelled not in shown
    assert world.booking1 not in shown  # confirmed at once (no workflow)
    with_confirmed = listed(manager, "/openrequests/list/?confirmed=1")
    assert {own_open, colleague_open, own_confirmed, world.booking1} <= with_confirmed
    assert own_cancelled not in with_confirmed

    employee = client_for("Employee")
    assert own_open in listed(employee) and colleague_open not in listed(employee)
    assert world.booking2 not in listed(employee, "/openrequests/list/?confirmed=1")
    page = html(employee.get("/openrequests/list/"))
    assert f'/bookingview/show/{own_open}#status-aendern' in page
    assert 'action="/bookingview/action_post"' in page

    viewer_page = html(client_for("Viewer").get("/openrequests/list/"))
    assert f'data-booking="{own_open}"' in viewer_page and "#status-aendern" not in viewer_page
    assert manager.get("/openrequests/list/?page=abc").status_code == 400


def test_open_requests_costs_the_same_statements_for_an_empty_and_a_full_page(app, client_for, statements,
                                                                               make_booking):
    for employee in ("employee1", "employee2", "employee1"):
        make_booking(employee)
    manager = client_for("Manager")
    manager.get("/openrequests/list/")
    counts = []
    for url in ("/openrequests/list/?page=999", "/openrequests/list/?confirmed=1"):
        with statements() as count:
            response = manager.get(url)
        assert response.status_code == 200
        counts.append((count.n, len(ROW.findall(html(response)))))
    (empty_n, empty_rows), (full_n, full_rows) = counts
    assert empty_rows == 0 and full_rows >= 5
    assert full_n == empty_n  # no statement per row


# --- status history --------------------------------------------------------------------------
HISTORY = re.compile(r'<table class="table table-condensed tb-status-history">(.*?)</table>', re.S)
CELLS = re.compile(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td[^>]*>(.*?)</td>\s*</tr>", re.S)


def history_rows(client, pk: int) -> list[tuple[str, str, str, str]]:
    """(status, when, who, reason) of the status history table, newest first."""
    page = html(client.get(f"/bookingview/show/{pk}"))
    table = HISTORY.search(page)
    assert table, "no status history on the detail page"
    return [(re.sub(r"<[^>]+>", "", status).strip(), when.strip(), who.strip(), reason.strip())
            for status, when, who, reason in CELLS.findall(table.group(1))]


def test_status_history_shows_each_status_with_who_and_when(app, client_for, kinds, make_booking, statements):
    pk = make_booking()
    manager, employee = client_for("Manager"), client_for("Employee")
    assert change_on_detail(manager, pk, kinds["confirmation"]).status_code == 302
    # an edit that leaves the status alone adds no line
    token = api_token(app, "employee1")
    assert app.test_client().put(f"/api/v1/booking/{pk}", headers=bearer(token),
                                 json={"comment": "geändert"}).status_code == 200
    assert change_on_detail(employee, pk, kinds["cancellation"], reason="verschoben").status_code == 302

    rows = history_rows(employee, pk)
    assert [(status, who, reason) for status, _when, who, reason in rows] == [
        ("storniert", "Employee1 Test", "verschoben"), ("bestätigt", "Manager Test", ""), ("angefragt", "System", ""),
    ], "a cancellation step shows its reason, the others none"
    with app.app_context():
        steps = status_history(db.session, pk)
        assert [fmt_datetime(step.at) for step in steps] == [when for _s, when, _w, _r in rows]
        assert [step.reason for step in steps] == ["verschoben", None, None]
        assert all(step.at.tzinfo is not None for step in steps)
        assert steps[0].at >= steps[1].at >= steps[2].at
        with statements() as count:
            status_history(db.session, pk)
        assert count.n == 1  # one query, however many versions
    assert manager.get("/bookingview/show/987654321").status_code == 404

    # confirmed again: the reason is gone from the booking, the old cancellation step keeps it
    assert change_on_detail(manager, pk, kinds["confirmation"]).status_code == 302
    rows = history_rows(manager, pk)
    assert [(status, reason) for status, _when, _who, reason in rows][:2] == [("bestätigt", ""),
                                                                            ("storniert", "verschoben")]


# --- the badge ---------------------------------------------------------------------------------
def test_status_badge_is_escaped_and_readable(app_ctx):
    light = status_badge(BookingStatus(name="<b>gelb</b>", color="#ffff00", kind="neutral"))
    assert "&lt;b&gt;gelb&lt;/b&gt;" in light and "<b>" not in light
    assert "background-color:#ffff00;color:#000000" in light
    dark = status_badge(BookingStatus(name="dunkel", color="#1f2d3d", kind="neutral"))
    assert "color:#ffffff" in dark
    cancelled = status_badge(BookingStatus(name="storniert", color="#d9534f", kind="cancellation"))
    assert "background-color:#d9534f;color:#ffffff" in cancelled
    forged = status_badge(BookingStatus(name="x", color='"><scr', kind="neutral"))
    assert "background-color:#777777" in forged and "<scr" not in forged
    assert status_badge(None) == ""

