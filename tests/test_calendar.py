"""Kalender: day and week views per location, "Mein Kalender", the ICS feed.

The world: employee1 (Eva Eins) with booking1 (⭐ Anna Berg) on Monday 2030-03-04
09:00 UTC = 10:00 in Berlin, employee2 (Zoe Zwei) with booking2 (Bernd Colleague)
at 12:00 local. The grid is 1 px per minute from 07:00 local, so 10:00 sits at 180."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.conftest import post_form
from tests.helpers_perm import html, is_login_redirect, session_csrf

DAY = "/kalender/?datum=2030-03-04"
WEEK = "/kalender/woche?datum=2030-03-06"
MINE = "/mein-kalender/?datum=2030-03-04"
COLUMN_RE = re.compile(r'class="tb-cal-col[^"]*"[^>]*data-day="([\d-]+)" data-employee="(\d*)">(.*?)</div>', re.S)
BLOCK_RE = re.compile(r'<a class="(tb-cal-block[^"]*)" id="tb-booking-(\d+)"\s+href="([^"]+)"\s+data-top="(-?\d+)"'
                      r'\s+style="([^"]*)"')
FEED_URL_RE = re.compile(r'id="tb-feed-url" readonly value="([^"]+)"')
SHADE_RE = re.compile(r'class="tb-cal-shade tb-cal-(absence|off)" style="top: (\d+)px; height: (\d+)px;" '
                      r'title="([^"]*)">(?:<span>([^<]*)</span>)?')
TITLE_RE = re.compile(r'id="tb-booking-(\d+)"[^>]*?title="([^"]*)"', re.S)


def blocks(page: str) -> dict[int, dict]:
    """Booking id → where the grid shows it: day, employee column, top (px = minutes after 07:00)."""
    found = {}
    for day, employee, body in COLUMN_RE.findall(page):
        for classes, pk, href, top, style in BLOCK_RE.findall(body):
            found[int(pk)] = {"day": day, "employee": int(employee) if employee else None, "top": int(top),
                              "href": href, "style": style, "cancelled": "tb-cal-cancelled" in classes}
    return found


def shades(page: str, kind: str = "absence") -> dict[tuple[str, int | None], list[dict]]:
    """(day, employee) → the shades of that kind in the column: top, height, title, label."""
    found: dict[tuple[str, int | None], list[dict]] = {}
    for chunk in page.split('class="tb-cal-col')[1:]:
        day, employee = re.search(r'data-day="([\d-]+)" data-employee="(\d*)"', chunk).groups()
        column = chunk.split('class="tb-cal-col', 1)[0]
        for found_kind, top, height, title, label in SHADE_RE.findall(column):
            if found_kind == kind:
                found.setdefault((day, int(employee) if employee else None), []).append(
                    {"top": int(top), "height": int(height), "title": title, "label": label})
    return found


def absence(world, employee: str, start: datetime, end: datetime, kind: str = "sick"):
    from app.models import Absence

    return Absence(employee_id=getattr(world, employee), kind=kind, start_at=start, end_at=end, note="Privat")


@pytest.fixture()
def db_rows(app):
    """Add rows for one test (as the system user) and remove them afterwards."""
    from app.extensions import db
    from app.jobs.base import acting_as

    made = []

    def add(*rows):
        with app.app_context(), acting_as():
            db.session.add_all(rows)
            db.session.commit()
            made.extend((type(row), row.id) for row in rows)
            return [row.id for row in rows]

    yield add
    with app.app_context(), acting_as():
        for model, pk in reversed(made):
            row = db.session.get(model, pk)
            if row is not None:
                db.session.delete(row)
        db.session.commit()


@pytest.fixture()
def no_feeds(app):
    from app.extensions import db
    from app.models.staff import CalendarFeed

    def clear():
        with app.app_context():
            db.session.execute(sa.delete(CalendarFeed))
            db.session.commit()

    clear()
    yield
    clear()


def booking(world, employee: str, start: datetime, customer: str | int = "customer1", **extra):
    from app.models import Booking

    customer_id = customer if isinstance(customer, int) else getattr(world, customer)
    return Booking(customer_id=customer_id, service_id=world.service,
                   employee_id=getattr(world, employee), start_at=start, **extra)


def status_id(app, kind: str) -> int:
    from app.extensions import db
    from app.models import BookingStatus

    with app.app_context():
        return db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == kind))


# --- day and week views -------------------------------------------------------------
def test_day_view_shows_every_employee_column_for_a_manager(manager, world):
    page = html(manager.get(DAY))
    found = blocks(page)
    assert found[world.booking1]["employee"] == world.employee1
    assert found[world.booking2]["employee"] == world.employee2
    assert found[world.booking1]["top"] == 180  # 09:00 UTC = 10:00 in Berlin (CET)
    assert found[world.booking2]["top"] == 300
    assert found[world.booking1]["href"] == f"/bookingview/show/{world.booking1}"
    assert "background-color: #5cb85c" in found[world.booking1]["style"]  # the "bestätigt" colour
    assert "; color: #000000;" in found[world.booking1]["style"]  # as the badge in the lists (formatting.status_colors)
    for text in ("Eva Eins", "Zoe Zwei", "⭐ Anna Berg", "Bernd Colleague", "Einzelstunde 60", "Montag 04.03.2030"):
        assert text in page


def test_the_block_opens_the_booking(manager, world):
    href = blocks(html(manager.get(DAY)))[world.booking1]["href"]
    assert "Anna Berg" in html(manager.get(href))


def test_week_view_shows_seven_days_and_both_columns(manager, world):
    page = html(manager.get(WEEK))
    assert "Montag 04.03.2030" in page and "Sonntag 10.03.2030" in page
    assert len(COLUMN_RE.findall(page)) == 14  # 7 days × 2 employees
    found = blocks(page)
    assert found[world.booking1]["day"] == "2030-03-04" and found[world.booking1]["employee"] == world.employee1
    assert found[world.booking2]["employee"] == world.employee2


def test_viewer_sees_the_schedule_read_only(viewer, world):
    found = blocks(html(viewer.get(DAY)))
    assert {world.booking1, world.booking2} <= set(found)
    assert viewer.get("/kalender/links").status_code == 403


@pytest.mark.parametrize("url", [DAY, WEEK, MINE, "/mein-kalender/?datum=2030-03-04&ansicht=tag"])
def test_employee_sees_only_own_bookings(employee, world, url):
    page = html(employee.get(url))
    found = blocks(page)
    assert world.booking1 in found
    assert world.booking2 not in found
    for colleague in ("Bernd Colleague", "Zoe Zwei", f"/bookingview/show/{world.booking2}"):
        assert colleague not in page
    assert {block["employee"] for block in found.values()} == {world.employee1}


def test_the_colleague_sees_the_mirror_image(client_for, world):
    page = html(client_for("employee2").get(DAY))
    assert set(blocks(page)) == {world.booking2}
    assert "Anna Berg" not in page and "Eva Eins" not in page


def test_employee_sees_no_colleague_booking_held_at_the_location_without_employee(app, employee, manager, world,
                                                                                   db_rows):
    from app.models import Booking

    start = datetime(2030, 3, 4, 14, tzinfo=timezone.utc)
    (pk,) = db_rows(Booking(customer_id=world.customer2, service_id=world.service, location_id=world.location,
                            start_at=start))
    assert blocks(html(manager.get(DAY)))[pk]["employee"] is None  # the manager sees it in its own column
    assert pk not in blocks(html(employee.get(DAY)))


def test_navigation_links_and_date_picker(manager):
    page = html(manager.get("/kalender/?datum=2030-03-04&filiale=1"))
    assert 'href="/kalender/?datum=2030-03-03&amp;filiale=1"' in page
    assert 'href="/kalender/?datum=2030-03-05&amp;filiale=1"' in page
    assert 'id="tb-cal-today" href="/kalender/?filiale=1"' in page
    assert 'name="datum" value="2030-03-04"' in page
    week = html(manager.get(WEEK))
    assert "datum=2030-02-27" in week and "datum=2030-03-13" in week
    assert "Woche Montag 04.03.2030 – Sonntag 10.03.2030" in week


def test_following_the_next_link_moves_one_day(manager, world):
    page = html(manager.get("/kalender/?datum=2030-03-03"))
    assert not blocks(page)
    next_url = re.search(r'id="tb-cal-next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert world.booking1 in blocks(html(manager.get(next_url)))


def test_bad_arguments_are_refused_not_a_500(manager):
    assert manager.get("/kalender/?datum=2030-02-30").status_code == 400
    assert manager.get("/kalender/woche?datum=gestern").status_code == 400
    assert manager.get("/kalender/woche?datum=9999-12-31").status_code == 400
    assert manager.get("/kalender/?datum=0001-01-01").status_code == 400
    assert manager.get("/kalender/?filiale=abc").status_code == 400
    assert manager.get("/kalender/?filiale=987654").status_code == 404
    assert manager.get("/mein-kalender/?datum=x").status_code == 400


def test_cancelled_bookings_are_hidden_unless_asked_for(app, manager, world, db_rows):
    start = datetime(2030, 3, 4, 15, tzinfo=timezone.utc)
    (pk,) = db_rows(booking(world, "employee1", start, status_id=status_id(app, "cancellation"),
                            cancel_reason="krank"))
    assert pk not in blocks(html(manager.get(DAY)))
    shown = blocks(html(manager.get(DAY + "&storniert=1")))
    assert shown[pk]["cancelled"] and not shown[world.booking1]["cancelled"]


def test_the_tooltip_holds_time_customer_service_and_status(manager, world):
    titles = dict(TITLE_RE.findall(html(manager.get(DAY))))
    assert titles[str(world.booking1)] == "10:00–11:00 ⭐ Anna Berg · Einzelstunde 60 · bestätigt"
    assert "Bernd Colleague · Einzelstunde 60" in titles[str(world.booking2)]


def test_a_30_minute_block_is_a_short_one_line_block(manager, world, db_rows):
    start = datetime(2030, 3, 4, 14, tzinfo=timezone.utc)
    (short,) = db_rows(booking(world, "employee1", start, end_at=start + timedelta(minutes=30)))
    found = blocks(html(manager.get(DAY)))
    assert "height: 30px;" in found[short]["style"]  # no taller than its time: it does not cover the next block
    page = html(manager.get(DAY))
    assert re.search(rf'class="tb-cal-block tb-cal-short" id="tb-booking-{short}"', page)
    assert re.search(rf'class="tb-cal-block" id="tb-booking-{world.booking1}"', page)  # 60 minutes: the long form


# --- absences and working hours ---------------------------------------------------------
# employee1 is ill on Tuesday 2030-03-05 (local midnight to midnight = 23:00 to 23:00 UTC).
SICK_DAY = (datetime(2030, 3, 4, 23, tzinfo=timezone.utc), datetime(2030, 3, 5, 23, tzinfo=timezone.utc))


def test_an_absence_is_shaded_in_the_absent_employees_column_on_that_day_only(manager, world, db_rows):
    db_rows(absence(world, "employee1", *SICK_DAY))
    week = shades(html(manager.get(WEEK)))
    assert set(week) == {("2030-03-05", world.employee1)}
    (shade,) = week[("2030-03-05", world.employee1)]
    assert shade["label"] == "Krankheit" and shade["top"] == 0 and shade["height"] == (21 - 7) * 60
    assert "Privat" not in shade["title"]  # the note stays in the absence record
    day = html(manager.get("/kalender/?datum=2030-03-05"))
    assert set(shades(day)) == {("2030-03-05", world.employee1)}
    assert "tb-cal-emphead-absent" in day
    monday = html(manager.get(DAY))
    assert not shades(monday) and "tb-cal-emphead-absent" not in monday


def test_a_part_day_absence_is_shaded_for_its_hours(manager, world, db_rows):
    db_rows(absence(world, "employee2", datetime(2030, 3, 6, 11, tzinfo=timezone.utc),
                    datetime(2030, 3, 6, 13, tzinfo=timezone.utc), kind="training"))
    (shade,) = shades(html(manager.get("/kalender/?datum=2030-03-06")))[("2030-03-06", world.employee2)]
    assert (shade["top"], shade["height"], shade["label"]) == (300, 120, "Fortbildung")  # 12:00–14:00 local


def test_time_outside_the_working_hours_is_shaded(manager, world):
    monday = shades(html(manager.get(DAY)), "off")
    assert [(s["top"], s["height"]) for s in monday[("2030-03-04", world.employee1)]] == [(0, 120), (660, 180)]
    assert monday[("2030-03-04", world.employee1)][0]["title"] == "außerhalb der Arbeitszeit"
    saturday = shades(html(manager.get("/kalender/?datum=2030-03-09")), "off")
    assert [(s["top"], s["height"]) for s in saturday[("2030-03-09", world.employee2)]] == [(0, 14 * 60)]


@pytest.mark.parametrize("url", [WEEK, "/kalender/?datum=2030-03-05", "/mein-kalender/?datum=2030-03-05",
                                 "/mein-kalender/?datum=2030-03-05&ansicht=tag"])
def test_an_employee_sees_only_their_own_absence(client_for, world, db_rows, url):
    db_rows(absence(world, "employee2", *SICK_DAY, kind="vacation"))
    own = shades(html(client_for("employee2").get(url)))
    assert [shade["label"] for shade in own[("2030-03-05", world.employee2)]] == ["Urlaub"]
    page = html(client_for("employee1").get(url))
    assert not shades(page) and "Urlaub" not in page


# --- time zone ----------------------------------------------------------------------
@pytest.mark.parametrize("day, start_utc", [
    ("2031-03-29", datetime(2031, 3, 29, 9, tzinfo=timezone.utc)),   # the Saturday before: CET
    ("2031-03-30", datetime(2031, 3, 30, 8, tzinfo=timezone.utc)),   # spring forward: a 23-hour day, CEST
    ("2031-10-26", datetime(2031, 10, 26, 9, tzinfo=timezone.utc)),  # fall back: a 25-hour day, CET
])
def test_a_10_oclock_booking_sits_at_10_on_dst_days(manager, world, db_rows, day, start_utc):
    (pk,) = db_rows(booking(world, "employee1", start_utc))
    page = html(manager.get(f"/kalender/?datum={day}"))
    assert blocks(page)[pk]["top"] == 180
    assert "10:00–11:00" in page


def test_a_booking_late_on_the_dst_day_stays_on_that_day(manager, world, db_rows):
    """23:30 local on the 23-hour day is 21:30 UTC; the next day starts at 22:00 UTC."""
    (pk,) = db_rows(booking(world, "employee2", datetime(2031, 3, 30, 21, 30, tzinfo=timezone.utc)))
    page = html(manager.get("/kalender/?datum=2031-03-30"))
    assert blocks(page)[pk]["top"] == (23 * 60 + 30) - 7 * 60
    next_day = html(manager.get("/kalender/?datum=2031-03-31"))  # it runs past midnight:
    assert blocks(next_day)[pk]["top"] == 0  # the grid of the next day starts at 00:00
    assert 'style="top: 0px;">00:00<' in next_day


# --- statements -----------------------------------------------------------------------
def test_day_view_statement_count_does_not_grow_with_bookings(manager, world, db_rows, statements):
    from app.models import Customer

    customers = db_rows(*(Customer(first_name=f"Viel{i}", last_name="Kundschaft") for i in range(6)))
    made = db_rows(*(
        booking(world, "employee1" if i % 2 else "employee2",
                datetime(2030, 3, 11, 7 + 2 * (i // 2), tzinfo=timezone.utc), customer=customer_id)
        for i, customer_id in enumerate(customers)
    ))
    db_rows(absence(world, "employee1", datetime(2030, 3, 11, 12, tzinfo=timezone.utc),
                    datetime(2030, 3, 11, 14, tzinfo=timezone.utc)),
            absence(world, "employee2", datetime(2030, 3, 12, 8, tzinfo=timezone.utc),
                    datetime(2030, 3, 13, 17, tzinfo=timezone.utc), kind="vacation"))
    for view in ("/kalender/", "/kalender/woche"):
        manager.get(f"{view}?datum=2030-03-04")  # warm caches
        with statements() as few:
            page_few = html(manager.get(f"{view}?datum=2030-03-04"))
        with statements() as many:
            page_many = html(manager.get(f"{view}?datum=2030-03-11"))
        assert len(blocks(page_many)) >= len(blocks(page_few)) + 4 and set(made) <= set(blocks(page_many))
        assert shades(page_many) and not shades(page_few)
        assert many.n == few.n, view


# --- Mein Kalender ----------------------------------------------------------------------
def test_mein_kalender_for_a_user_without_employee_record(manager, viewer):
    page = html(manager.get("/mein-kalender/"))
    assert 'id="tb-no-employee"' in page
    assert "keine Mitarbeiter:in zugeordnet" in page
    assert viewer.get("/mein-kalender/").status_code == 403  # the read-only login has no own calendar
    assert 'href="/mein-kalender/"' not in html(viewer.get("/"))


def test_anonymous_visitors_go_to_the_login(client_for):
    anonymous = client_for(None)
    for url in (DAY, WEEK, MINE, "/kalender/links"):
        assert is_login_redirect(anonymous.get(url)), url


def test_menu_has_both_calendar_entries(employee):
    page = html(employee.get("/"))
    assert 'href="/kalender/"' in page and 'href="/mein-kalender/"' in page


# --- the ICS feed ------------------------------------------------------------------------
def create_feed(client) -> str:
    response = post_form(client, "/mein-kalender/", {"aktion": "erstellen"})
    assert response.status_code == 200
    url = FEED_URL_RE.search(html(response)).group(1)
    match = re.fullmatch(r"http://[^/]+/kalender/ics/([A-Za-z0-9_-]{40,})\.ics", url)
    assert match, url
    return match.group(1)


def uid(booking_id: int) -> str:
    return f"UID:booking-{booking_id}@terminbuch"


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


@pytest.fixture()
def feed_world(app, world, db_rows):
    """Bookings around now: own ones inside the window, a colleague's, a cancelled one,
    and own ones just outside the window (20 days ago, 100 days ahead)."""
    from app.models import Customer

    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    soon = now + timedelta(days=2)
    (tricky,) = db_rows(Customer(first_name="Jo, Jr.", last_name="Semi;Colon\\Back", emoji_marker="📞",
                                 phone="+4930999999", email="tricky@example.org", notes="geheime Notiz"))
    ids = db_rows(
        booking(world, "employee1", soon, customer="customer1"),
        booking(world, "employee1", soon + timedelta(hours=3), customer=tricky, comment="Kommentar, intern"),
        booking(world, "employee2", soon, customer="customer2"),
        booking(world, "employee1", soon + timedelta(hours=6), status_id=status_id(app, "cancellation"),
                cancel_reason="abgesagt"),
        booking(world, "employee1", now - timedelta(days=20)),
        booking(world, "employee1", now + timedelta(days=100)),
    )
    return {"soon": soon, "own": ids[0], "tricky": ids[1], "colleague": ids[2], "cancelled": ids[3],
            "past": ids[4], "far": ids[5]}


def test_ics_feed_contains_own_bookings_in_utc_escaped(app, employee, client_for, feed_world, no_feeds):
    token = create_feed(employee)
    response = client_for(None).get(f"/kalender/ics/{token}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    body = response.get_data(as_text=True)
    assert body.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n") and body.endswith("END:VCALENDAR\r\n")
    assert "\n" not in body.replace("\r\n", "")  # CRLF only
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    lines = unfold(body)
    soon = feed_world["soon"]
    uids = {line for line in lines if line.startswith("UID:")}
    assert {uid(feed_world["own"]), uid(feed_world["tricky"])} <= uids
    assert not {uid(feed_world[key]) for key in ("colleague", "cancelled", "past", "far")} & uids
    assert f"DTSTART:{soon:%Y%m%dT%H%M%SZ}" in lines
    assert f"DTEND:{soon + timedelta(hours=1):%Y%m%dT%H%M%SZ}" in lines
    assert "SUMMARY:Einzelstunde 60 – ⭐ Anna Berg" in lines
    assert "SUMMARY:Einzelstunde 60 – 📞 Jo\\, Jr. Semi\\;Colon\\\\Back" in lines
    for secret in ("+4930999999", "tricky@example.org", "geheime Notiz", "Kommentar", "+49301234567",
                   "anna@example.org", "Bernd", "abgesagt"):
        assert secret not in body


def test_ics_uid_is_stable_across_renewals(employee, client_for, feed_world, no_feeds):
    first = client_for(None).get(f"/kalender/ics/{create_feed(employee)}.ics").get_data(as_text=True)
    second = client_for(None).get(f"/kalender/ics/{create_feed(employee)}.ics").get_data(as_text=True)
    uid = [line for line in unfold(first) if line.startswith("UID:")]
    assert uid and uid == [line for line in unfold(second) if line.startswith("UID:")]


def test_only_the_hash_of_the_token_is_stored(app, employee, world, no_feeds):
    from app.extensions import db
    from app.models.staff import CalendarFeed

    token = create_feed(employee)
    with app.app_context():
        feed = db.session.get(CalendarFeed, world.employee1)
        assert feed.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in feed.token_hash
    page = html(employee.get("/mein-kalender/"))
    assert token not in page and 'id="tb-feed-active"' in page  # shown once, never again


def test_unknown_token_is_a_plain_404(employee, client_for, no_feeds):
    token = create_feed(employee)
    anonymous = client_for(None)
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "a" * 500,
                  hashlib.sha256(token.encode()).hexdigest()):
        response = anonymous.get(f"/kalender/ics/{wrong}.ics")
        assert response.status_code == 404
        assert "token" not in html(response).lower() and "Eva" not in html(response)


def test_an_inactive_employees_feed_is_closed(app, client_for, world, no_feeds):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Employee

    token = create_feed(client_for("employee2"))

    def set_active(value: bool) -> None:
        with app.app_context(), acting_as():
            db.session.get(Employee, world.employee2).active = value
            db.session.commit()

    set_active(False)
    try:
        assert client_for(None).get(f"/kalender/ics/{token}.ics").status_code == 404
    finally:
        set_active(True)
    assert client_for(None).get(f"/kalender/ics/{token}.ics").status_code == 200


def test_renewing_invalidates_the_old_token(employee, client_for, no_feeds):
    old = create_feed(employee)
    new = create_feed(employee)
    anonymous = client_for(None)
    assert old != new
    assert anonymous.get(f"/kalender/ics/{old}.ics").status_code == 404
    assert anonymous.get(f"/kalender/ics/{new}.ics").status_code == 200


def test_employee_deletes_own_link(employee, client_for, no_feeds):
    token = create_feed(employee)
    response = post_form(employee, "/mein-kalender/", {"aktion": "loeschen"})
    assert response.status_code == 302
    assert client_for(None).get(f"/kalender/ics/{token}.ics").status_code == 404
    assert 'id="tb-feed-none"' in html(employee.get("/mein-kalender/"))


def test_no_get_and_no_forged_post_creates_a_token(app, employee, no_feeds):
    from app.extensions import db
    from app.models.staff import CalendarFeed

    def feeds() -> int:
        with app.app_context():
            return db.session.scalar(sa.select(sa.func.count()).select_from(CalendarFeed))

    assert employee.get("/mein-kalender/?aktion=erstellen").status_code == 200
    assert employee.post("/mein-kalender/", data={"aktion": "erstellen"}).status_code == 400  # no CSRF token
    assert employee.post("/mein-kalender/", data={"aktion": "unsinn", "csrf_token": session_csrf(employee)}
                         ).status_code == 400
    assert feeds() == 0
    assert 'id="tb-feed-none"' in html(employee.get("/mein-kalender/"))


def test_a_user_without_employee_record_gets_no_token(app, manager, no_feeds):
    from app.extensions import db
    from app.models.staff import CalendarFeed

    response = manager.post("/mein-kalender/", data={"aktion": "erstellen", "csrf_token": session_csrf(manager)})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CalendarFeed)) == 0


def test_feed_of_one_employee_never_shows_a_colleagues_booking(client_for, feed_world, no_feeds):
    token = create_feed(client_for("employee2"))
    body = client_for(None).get(f"/kalender/ics/{token}.ics").get_data(as_text=True)
    uids = {line for line in unfold(body) if line.startswith("UID:")}
    assert uid(feed_world["colleague"]) in uids
    assert not {uid(feed_world[key]) for key in ("own", "tricky", "cancelled")} & uids
    assert "Anna" not in body


def test_manager_sees_and_revokes_an_employees_link(manager, employee, client_for, world, no_feeds):
    token = create_feed(employee)
    page = html(manager.get("/kalender/links"))
    assert f'id="tb-feed-{world.employee1}"' in page and "aktiv seit" in page
    assert token not in page
    response = post_form(manager, "/kalender/links", {"employee_id": world.employee1})
    assert response.status_code == 302
    assert client_for(None).get(f"/kalender/ics/{token}.ics").status_code == 404


def test_employee_cannot_revoke_or_list_links(employee, client_for, world, no_feeds):
    token = create_feed(client_for("employee2"))
    assert employee.get("/kalender/links").status_code == 403
    response = employee.post("/kalender/links", data={"employee_id": world.employee2,
                                                      "csrf_token": session_csrf(employee)})
    assert response.status_code == 403
    assert client_for(None).get(f"/kalender/ics/{token}.ics").status_code == 200


def test_revoke_needs_csrf_and_a_valid_employee(manager, employee, client_for, world, no_feeds):
    token = create_feed(employee)
    assert manager.post("/kalender/links", data={"employee_id": world.employee1}).status_code == 400
    assert manager.post("/kalender/links", data={"employee_id": "x", "csrf_token": session_csrf(manager)}
                        ).status_code == 400
    assert client_for(None).get(f"/kalender/ics/{token}.ics").status_code == 200


# --- RFC 5545 text helpers -----------------------------------------------------------------
def test_fold_line_splits_at_75_octets_without_breaking_characters():
    from app.services.ics import fold_line

    line = "SUMMARY:" + "Grüße 🐕 " * 30
    folded = fold_line(line)
    physical = folded.split("\r\n")
    assert len(physical) > 1
    assert all(len(part.encode("utf-8")) <= 75 for part in physical)
    assert all(part.startswith(" ") for part in physical[1:])
    assert folded.replace("\r\n ", "") == line
    assert fold_line("kurz") == "kurz"


def test_escape_text():
    from app.services.ics import escape_text

    assert escape_text("a,b;c\\d\ne\r\nf") == "a\\,b\\;c\\\\d\\ne\\nf"
