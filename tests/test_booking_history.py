"""Booking history list (app/views/booking_history.py): customer name, date range,
relation and comment-keyword filters, the default date window, sorting, employee
isolation, and the indexes that serve the keyword and the name (EXPLAIN)."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = date(2033, 5, 2)
WINDOW = {"_flt_1_start_at": "2033-05-01 00:00:00", "_flt_2_start_at": "2033-06-01 00:00:00"}
SHOW_LINK = re.compile(r'/bookingview/show/(\d+)"')
BOOKINGS = ("allergy", "dog", "colleague", "odd", "none", "new")
ODD_INPUTS = ['"', "%", "AND (", "*", "NEAR(a b)", "'", "_", "\\", "(((", "OR", "^", "-", 'x" OR "y']


def at(day: int, hour: int) -> datetime:
    return datetime.combine(MONDAY + timedelta(days=day), time(hour), tzinfo=BERLIN).astimezone(timezone.utc)


@pytest.fixture(scope="module")
def hist(app, world):
    """Bookings of May 2033 on two services, two locations, two statuses and two customers."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, BookingStatus, Customer, Location, Service

    with app.app_context(), acting_as():
        cancelled = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "cancellation"))
        north = Location(name="Filiale Nord Hist", city="Hamburg", postal_code="20095")
        colour = Service(name="Farbe Hist", category="kurs", duration_minutes=30, buffer_minutes=0,
                         price=Decimal("80.00"))
        juergen = Customer(first_name="Jürgen", last_name="Müller-Hist", email="juergen@example.org")
        hanna = Customer(first_name="Hanna", last_name="Abendroth", email="hanna@example.org")
        db.session.add_all([north, colour, juergen, hanna])
        db.session.flush()
        rows = {
            "allergy": (world.employee1, juergen, world.service, world.confirmed, world.location, "30.00",
                        "Bitte an die Allergie denken", at(0, 10)),
            "dog": (world.employee1, hanna, colour.id, world.confirmed, north.id, "80.00",
                    "Hund ist läufig – bitte Abstand", at(1, 10)),
            "colleague": (world.employee2, juergen, world.service, cancelled, world.location, "55.00",
                          "Allergie und Kopfmassage", at(2, 10)),
            "odd": (world.employee2, hanna, colour.id, world.confirmed, north.id, "5.00",
                    '100% sicher "Zitat" AND ( snake_case', at(3, 10)),
            "none": (world.employee1, hanna, world.service, world.confirmed, world.location, "45.00", None,
                     at(4, 10)),
        }
        ids = {}
        for key, (emp, customer, service, status, location, price, comment, start) in rows.items():
            booking = Booking(employee_id=emp, customer=customer, service_id=service, status_id=status,
                              location_id=location, price=Decimal(price), comment=comment, start_at=start,
                              cancel_reason="Krankheit" if status == cancelled else None)
            db.session.add(booking)
            db.session.flush()
            ids[key] = booking.id
        db.session.commit()
        ids.update(north=north.id, colour=colour.id, juergen=juergen.id, hanna=hanna.id, cancelled=cancelled)
    yield ids
    with app.app_context(), acting_as():
        for key in rows:
            db.session.delete(db.session.get(Booking, ids[key]))
        db.session.flush()
        for model, key in ((Customer, "juergen"), (Customer, "hanna"), (Service, "colour"), (Location, "north")):
            db.session.delete(db.session.get(model, ids[key]))
        db.session.commit()


def listed(client, hist, **args) -> list[str]:
    """Keys of the module's bookings on the list page, in page order."""
    query = urlencode({**WINDOW, "psize_BookingView": 100, **args})
    response = client.get(f"/bookingview/list/?{query}")
    assert response.status_code == 200, response.status_code
    by_id = {str(pk): key for key, pk in hist.items() if key in BOOKINGS}
    return [by_id[pk] for pk in SHOW_LINK.findall(response.get_data(as_text=True)) if pk in by_id]


def found(client, hist, **args) -> set[str]:
    return set(listed(client, hist, **args))


def dialect(app) -> str:
    from app.extensions import db

    with app.app_context():
        return db.engine.dialect.name


# --- filters ---------------------------------------------------------------------------
def test_the_window_alone_lists_every_booking_of_the_month(owner, hist):
    assert found(owner, hist) == {"allergy", "dog", "colleague", "odd", "none"}


@pytest.mark.parametrize("flt,value,expected", [
    ("_flt_0_customer_name", "müller", {"allergy", "colleague"}),      # contains, last name, umlaut
    ("_flt_0_customer_name", "MÜLLER-h", {"allergy", "colleague"}),    # case-insensitive
    ("_flt_0_customer_name", "anna", {"dog", "odd", "none"}),          # first name "Hanna" contains it
    ("_flt_0_customer_name", "jürgen hist", {"allergy", "colleague"}),  # every word, first or last name
    ("_flt_0_customer_name", "jürgen abendroth", set()),
    ("_flt_1_customer_name", "anna", set()),                           # starts with: not "Hanna"
    ("_flt_1_customer_name", "Han", {"dog", "odd", "none"}),
    ("_flt_1_customer_name", "abend", {"dog", "odd", "none"}),
    ("_flt_1_customer_name", "Mül", {"allergy", "colleague"}),
    ("_flt_1_customer_name", "%", set()),                              # a LIKE wildcard is a plain character
    ("_flt_0_customer_name", "_", set()),
])
def test_customer_name_filter(owner, hist, flt, value, expected):
    assert found(owner, hist, **{flt: value}) == expected


def test_date_range_is_business_local(owner, hist):
    # "dog" starts Tuesday 10:00 Berlin (08:00 UTC): a window 09:30–10:30 local holds it
    args = {"_flt_1_start_at": "2033-05-03 09:30:00", "_flt_2_start_at": "2033-05-03 10:30:00"}
    assert found(owner, hist, **args) == {"dog"}
    args = {"_flt_1_start_at": "2033-05-03 10:30:00", "_flt_2_start_at": "2033-05-03 23:00:00"}
    assert found(owner, hist, **args) == set()


def test_relation_filters(owner, hist, world):
    assert found(owner, hist, _flt_0_service=hist["colour"]) == {"dog", "odd"}
    assert found(owner, hist, _flt_0_employee=world.employee2) == {"colleague", "odd"}
    assert found(owner, hist, _flt_0_status=hist["cancelled"]) == {"colleague"}
    assert found(owner, hist, _flt_0_location=hist["north"]) == {"dog", "odd"}
    assert found(owner, hist, _flt_0_location=hist["north"], _flt_0_employee=world.employee1) == {"dog"}


def test_relation_filters_render_as_selects_and_customers_as_text(owner, hist):
    page = owner.get(f"/bookingview/list/?{urlencode(WINDOW)}").get_data(as_text=True)
    fields = re.search(r"new AdminFilters\((.*?)\);", page, re.S).group(1)
    for col in ("service", "employee", "status", "location"):
        assert re.search(rf'"{col}": "(<|\\u003c)select', fields), col
    assert re.search(r'"customer_name": "(<|\\u003c)input', fields)
    assert "Müller-Hist" not in fields  # no customer <option>s
    for label in ("Kund:in", "enthält", "beginnt mit", "enthält die Wörter"):
        assert json.dumps(label) in fields


@pytest.mark.parametrize("value,expected", [
    ("Allergie", {"allergy", "colleague"}),
    ("allergie", {"allergy", "colleague"}),         # case-insensitive
    ("Allerg", {"allergy", "colleague"}),           # a word's beginning
    ("Allergie Kopfmassage", {"colleague"}),        # every word
    ("läufig", {"dog"}),                            # umlaut
    ("LÄUFIG", {"dog"}),
    ("Zitat", {"odd"}),
    ('"Zitat"', {"odd"}),                           # quotes around a word are no FTS syntax
    ("snake_case", {"odd"}),
    ("Kopfmassage Hund", set()),
])
def test_comment_keyword(owner, hist, value, expected):
    assert found(owner, hist, _flt_0_comment=value) == expected


@pytest.mark.parametrize("value", ODD_INPUTS)
def test_odd_keyword_input_is_no_error(owner, hist, value):
    """No FTS5 syntax error, no LIKE wildcard: the input's words are searched, the rest is ignored."""
    rows = found(owner, hist, _flt_0_comment=value)
    words = re.findall(r"\w+", value)
    if words:
        assert rows == found(owner, hist, _flt_0_comment=" ".join(words)) != {"allergy", "dog", "colleague", "odd"}
    else:
        assert rows == set()  # no word in the input: nothing matches (not every booking)


@pytest.mark.parametrize("value", ODD_INPUTS)
def test_odd_customer_name_input_is_no_error(owner, hist, value):
    """Taken literally: only "-" occurs in a name ("Müller-Hist")."""
    assert found(owner, hist, _flt_0_customer_name=value) == ({"allergy", "colleague"} if value == "-" else set())
    assert found(owner, hist, _flt_1_customer_name=value) == set()


def test_a_nul_character_in_a_filter_is_no_500(owner, hist):
    for flt in ("_flt_0_customer_name", "_flt_1_customer_name", "_flt_0_comment"):
        query = urlencode({**WINDOW, flt: "An\x00na"})
        response = owner.get(f"/bookingview/list/?{query}")
        assert response.status_code in (200, 400), flt


def test_keyword_with_two_other_filters(owner, hist, world):
    args = {"_flt_0_comment": "Allergie", "_flt_0_employee": world.employee1}
    assert found(owner, hist, **args) == {"allergy"}
    assert found(owner, hist, _flt_0_comment="Allergie", _flt_1_customer_name="jür") == {"allergy", "colleague"}


# --- the index follows every write (SQLite: FTS5 triggers) -------------------------------------------
def test_keyword_index_follows_insert_update_delete(app, owner, hist, world):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        booking = Booking(employee_id=world.employee1, customer_id=hist["hanna"], service_id=world.service,
                          location_id=world.location, comment="Zebrastreifen", start_at=at(7, 10))
        db.session.add(booking)
        db.session.commit()
        pk = booking.id
    by_id = {**hist, "new": pk}
    try:
        assert found(owner, by_id, _flt_0_comment="Zebrastreifen") == {"new"}
        with app.app_context(), acting_as():
            db.session.get(Booking, pk).comment = "Giraffe"
            db.session.commit()
        assert found(owner, by_id, _flt_0_comment="Zebrastreifen") == set()
        assert found(owner, by_id, _flt_0_comment="Giraffe") == {"new"}
        if dialect(app) == "sqlite":
            with app.app_context():
                # FTS5 compares the index with the content table: raises when they differ
                db.session.execute(sa.text(
                    "INSERT INTO booking_comment_fts(booking_comment_fts, rank) VALUES ('integrity-check', 1)"))
    finally:
        with app.app_context(), acting_as():
            db.session.delete(db.session.get(Booking, pk))
            db.session.commit()
    assert found(owner, by_id, _flt_0_comment="Giraffe") == set()
    if dialect(app) == "sqlite":
        with app.app_context():
            hits = db.session.scalar(sa.text(
                "SELECT count(*) FROM booking_comment_fts WHERE booking_comment_fts MATCH 'Giraffe'"))
        assert hits == 0


# --- the default window ----------------------------------------------------------------------------
def test_list_without_a_date_filter_redirects_to_the_recent_window(app, owner, hist):
    from app.views.booking_history import default_window

    response = owner.get("/bookingview/list/?_flt_0_comment=Allergie&_oc_BookingView=price&_od_BookingView=asc")
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert location.path == "/bookingview/list/"
    args = parse_qs(location.query)
    today = datetime.now(BERLIN).date()
    assert args["_flt_1_start_at"] == [f"{today - timedelta(days=30)} 00:00:00"]
    assert args["_flt_2_start_at"] == [f"{today + timedelta(days=61)} 00:00:00"]
    assert args["_flt_0_comment"] == ["Allergie"] and args["_oc_BookingView"] == ["price"]  # the rest is kept
    with app.test_request_context():
        assert default_window(datetime(2033, 3, 26, 23, 30, tzinfo=timezone.utc)) == (  # already the 27th in Berlin
            "2033-02-25 00:00:00", "2033-05-27 00:00:00")
    page = owner.get(response.location)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Zeitraum" in html and 'id="tb-window-all"' in html
    assert not SHOW_LINK.search(html)  # the module's bookings (2033) lie outside the window


def test_the_window_links_widen_it_and_keep_the_other_filters(owner, hist):
    html = owner.get(f"/bookingview/list/?{urlencode({**WINDOW, '_flt_0_comment': 'Allergie'})}").get_data(
        as_text=True)
    links = dict(re.findall(r'href="([^"]+)" id="tb-window-(\w+)"', html))
    links = {name: url.replace("&amp;", "&") for url, name in links.items()}
    assert set(links) == {"recent", "year", "all"}
    every_year = owner.get(links["all"])
    assert every_year.status_code == 200
    shown = set(SHOW_LINK.findall(every_year.get_data(as_text=True)))
    assert shown == {str(hist["allergy"]), str(hist["colleague"])}  # the keyword kept, all years
    assert "_flt_0_comment=Allergie" in links["recent"] and "_flt_2_start_at" in links["recent"]


def test_an_explicit_date_filter_is_not_redirected(owner, hist):
    assert owner.get("/bookingview/list/?_flt_1_start_at=2033-05-01+00:00:00").status_code == 200
    assert owner.get("/bookingview/list/?_flt_2_start_at=2033-05-01+00:00:00").status_code == 200


def test_bad_arguments_answer_400_before_the_redirect(owner):
    assert owner.get("/bookingview/list/?_flt_9_comment=x").status_code == 400
    assert owner.get("/bookingview/list/?_flt_2_customer_name=x").status_code == 400
    assert owner.get("/bookingview/list/?_flt_0_employee=abc").status_code == 400


def test_anonymous_and_unpermitted_users_get_no_redirect_to_data(app, world):
    response = app.test_client().get("/bookingview/list/")
    assert response.status_code == 302 and "/login" in response.location


def test_related_list_and_api_have_no_window(app, owner, world):
    """The customer's bookings tab and the REST API still list the 2030 bookings."""
    show = owner.get(f"/customerview/show/{world.customer1}").get_data(as_text=True)
    assert f"/bookingview/show/{world.booking1}" in show
    from tests.helpers_perm import api_token, bearer

    response = app.test_client().get("/api/v1/booking/?q=(page_size:100)", headers=bearer(api_token(app, "owner")))
    assert response.status_code == 200
    assert world.booking1 in {row["id"] for row in response.json["result"]}


# --- sorting ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("column,direction,expected", [
    ("start_at", "asc", ["allergy", "dog", "colleague", "odd", "none"]),
    ("start_at", "desc", ["none", "odd", "colleague", "dog", "allergy"]),
    ("price", "asc", ["odd", "allergy", "none", "colleague", "dog"]),
    ("price", "desc", ["dog", "colleague", "none", "allergy", "odd"]),
])
def test_sorting(owner, hist, column, direction, expected):
    assert listed(owner, hist, _oc_BookingView=column, _od_BookingView=direction) == expected


def test_sorting_by_customer_last_name(owner, hist):
    ascending = listed(owner, hist, _oc_BookingView="customer", _od_BookingView="asc")
    assert set(ascending[:3]) == {"dog", "odd", "none"}  # Abendroth before Müller-Hist
    assert set(ascending[3:]) == {"allergy", "colleague"}
    descending = listed(owner, hist, _oc_BookingView="customer", _od_BookingView="desc")
    assert set(descending[:2]) == {"allergy", "colleague"}


def test_the_default_order_is_newest_first(owner, hist):
    assert listed(owner, hist) == ["none", "odd", "colleague", "dog", "allergy"]


# --- employees see their own only --------------------------------------------------------------------
def test_employee_sees_only_own_bookings_with_every_filter(client_for, hist, world):
    employee1, employee2 = client_for("Employee"), client_for("employee2")
    assert found(employee1, hist) == {"allergy", "dog", "none"}
    assert found(employee2, hist) == {"colleague", "odd"}
    # the keyword and the name match the colleague's booking too: still only the own
    assert found(employee1, hist, _flt_0_comment="Allergie") == {"allergy"}
    assert found(employee2, hist, _flt_0_comment="Allergie") == {"colleague"}
    assert found(employee1, hist, _flt_0_comment="Kopfmassage", _flt_0_customer_name="Jürgen") == set()
    assert found(employee1, hist, _flt_0_employee=world.employee2) == set()  # a colleague's id: nothing
    assert found(employee1, hist, _flt_0_location=hist["north"], _flt_0_comment="Zitat") == set()
    assert found(employee1, hist, _oc_BookingView="customer", _od_BookingView="asc") == {"allergy", "dog", "none"}
    assert employee1.get(f"/bookingview/list/?{urlencode({'_flt_1_start_at': '2000-01-01 00:00:00'})}"
                         ).status_code == 200


def test_employee_select_offers_an_employee_only_themself(client_for, owner, hist):
    def options(client) -> str:
        page = client.get(f"/bookingview/list/?{urlencode(WINDOW)}").get_data(as_text=True)
        return re.search(r'"employee": "((<|\\u003c)select.*?)/select', page, re.S).group(1)

    assert "Eva Eins" in options(owner) and "Zoe Zwei" in options(owner)
    assert "Eva Eins" in options(client_for("Employee")) and "Zoe Zwei" not in options(client_for("Employee"))


# --- the indexes serve the filters (EXPLAIN) -----------------------------------------------------------
def _plan(conn, stmt) -> str:
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        return "\n".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))


def test_keyword_search_is_served_by_the_index(app, hist):
    from app.extensions import db
    from app.models import Booking
    from app.views.booking_history import comment_keyword_clause

    with app.app_context(), db.engine.connect() as conn:
        name = conn.dialect.name
        plan = _plan(conn, sa.select(Booking.id).where(comment_keyword_clause("Allergie", name)))
    if name == "sqlite":
        assert "VIRTUAL TABLE INDEX" in plan and "booking_comment_fts" in plan, plan
        assert "SCAN booking\n" not in plan + "\n" and not re.search(r"SCAN booking$", plan, re.M), plan
    else:
        assert "Bitmap Index Scan on ix_booking_comment_trgm" in plan, plan


def test_customer_prefix_is_served_by_the_lower_index(app, hist):
    from app.extensions import db
    from app.models import Customer
    from app.views.booking_history import _name_matches

    with app.app_context(), db.engine.connect() as conn:
        plan = _plan(conn, sa.select(Customer.id).where(_name_matches(Customer.last_name, "mül", prefix=True)))
    assert "ix_customer_last_name_lower" in plan, plan


def test_the_drift_check_skips_only_the_named_search_objects():
    from app.views.booking_history import SEARCH_SCHEMA_OBJECTS, include_object

    assert not include_object(None, "booking_comment_fts_data", "table", True, None)
    assert not include_object(None, "ix_booking_comment_trgm", "index", True, None)
    assert include_object(None, "booking_comment_fts_extra", "table", True, None)
    assert include_object(None, "ix_booking_start", "index", True, None)
    assert include_object(None, "booking", "table", True, None)
    assert len(SEARCH_SCHEMA_OBJECTS["table"]) == 5
