"""Karte (issue 7, points 3 and 4): the customers on a folium map in an iframe of its own page.

The frame's marker rows are one JSON array; the tests read it back and check who is on it
(row rules, lens, category, location, "nur aktive"), that no script or stylesheet comes
from another host, that a name with HTML stays text, and that the count line is right."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import pytest
import sqlalchemy as sa

from tests.helpers_perm import is_login_redirect

FUTURE = datetime(2043, 3, 2, 8, 0, tzinfo=timezone.utc)  # after every world booking
PAST = datetime(2021, 3, 1, 8, 0, tzinfo=timezone.utc)
PREFIX = "Kartentest"  # every customer of this module: last name starts with it
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
DATA_RE = re.compile(r"var data = (\[.*?\]);\n")


@pytest.fixture(scope="module")
def mapdata(app, world):
    """Customers (last names `Kartentest…`) around two locations with coordinates:
    e1_kurs_nord  employee1, future Kurs at Nord, a pass card with 7 units left, 📞
    e1_past_sued  employee1, past Einzelstunde at Süd (inactive), position "approx"
    e1_cancelled  employee1, future Kurs cancelled (inactive), name with HTML
    e2_gruppe     employee2, future Gruppe at Süd
    e2_nocoords   employee2, future Gruppe, no coordinates
    e1_nocoords   employee1, future Kurs, no coordinates."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, BookingStatus, Customer, Location, PassCard, PassCardType, Service

    with app.app_context(), acting_as():
        nord = Location(name="Karte Nord", city="Berlin", lat=52.56, lon=13.40)
        sued = Location(name="Karte Süd", city="Berlin", lat=52.44, lon=13.39)
        services = {cat: Service(name=f"Karte {cat}", category=cat, duration_minutes=60, price=Decimal("10.00"))
                    for cat in ("kurs", "gruppe", "einzelstunde")}
        cancel = db.session.scalars(sa.select(BookingStatus).where(BookingStatus.kind == "cancellation")
                                    .order_by(BookingStatus.position)).first()
        spec = {
            "e1_kurs_nord": dict(first_name="Karla", emoji_marker="📞", lat=52.5601, lon=13.4012,
                                 geocode_status="ok", street="Nordweg 1", postal_code="13187", city="Berlin"),
            "e1_past_sued": dict(first_name="Paul", lat=52.441, lon=13.3912, geocode_status="approx",
                                 postal_code="12109", city="Berlin"),
            "e1_cancelled": dict(first_name=EVIL, lat=52.50, lon=13.45, geocode_status="ok"),
            "e2_gruppe": dict(first_name="Grete", lat=52.445, lon=13.385, geocode_status="ok"),
            "e2_nocoords": dict(first_name="Nora", geocode_status="not_found"),
            "e1_nocoords": dict(first_name="Nils"),
        }
        customers = {key: Customer(last_name=f"{PREFIX} {key}", **values) for key, values in spec.items()}
        e1, e2 = world.employee1, world.employee2
        bookings = [
            Booking(customer=customers["e1_kurs_nord"], service=services["kurs"], employee_id=e1, location=nord,
                    start_at=FUTURE),
            Booking(customer=customers["e1_past_sued"], service=services["einzelstunde"], employee_id=e1,
                    location=sued, start_at=PAST),
            Booking(customer=customers["e1_cancelled"], service=services["kurs"], employee_id=e1, location=nord,
                    start_at=FUTURE + timedelta(hours=2), status=cancel),
            Booking(customer=customers["e2_gruppe"], service=services["gruppe"], employee_id=e2, location=sued,
                    start_at=FUTURE),
            Booking(customer=customers["e2_nocoords"], service=services["gruppe"], employee_id=e2, location=sued,
                    start_at=FUTURE + timedelta(hours=2)),
            Booking(customer=customers["e1_nocoords"], service=services["kurs"], employee_id=e1, location=nord,
                    start_at=FUTURE + timedelta(hours=4)),
        ]
        card_type = PassCardType(name="Karte 10er", units=10, price=Decimal("90.00"))
        card = PassCard(type=card_type, customer=customers["e1_kurs_nord"], units_total=10, units_used=3,
                        price=Decimal("90.00"))
        db.session.add_all([nord, sued, *services.values(), *customers.values(), *bookings, card_type, card])
        db.session.commit()
        ids = {key: customer.id for key, customer in customers.items()}
        ids.update(nord=nord.id, sued=sued.id)
        cleanup = [(PassCard, card.id), (PassCardType, card_type.id), *((Booking, b.id) for b in bookings),
                   *((Customer, c.id) for c in customers.values()), *((Service, s.id) for s in services.values()),
                   (Location, nord.id), (Location, sued.id)]
    yield ids
    with app.app_context(), acting_as():
        for model, pk in cleanup:
            row = db.session.get(model, pk)
            if row is not None:
                db.session.delete(row)
            db.session.flush()
        db.session.commit()


@pytest.fixture(scope="module")
def test_lens(app, world):
    """A lens of the manager on the customer list: last name starts with `Kartentest`."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Lens

    with app.app_context(), acting_as():
        lens = Lens(name="Kartentest-Linse", view_name="CustomerView", query_string=f"_flt_0_last_name={PREFIX}",
                    owner_id=world.user_manager, shared=False, builtin=False)
        db.session.add(lens)
        db.session.commit()
        pk = lens.id
    yield pk
    with app.app_context(), acting_as():
        db.session.delete(db.session.get(Lens, pk))
        db.session.commit()


def builtin_lens(app, key: str) -> int:
    from app.extensions import db
    from app.models import Lens

    with app.app_context():
        return db.session.scalar(sa.select(Lens.id).where(Lens.builtin_key == key))


def frame_rows(client, query: str = "") -> list[list]:
    response = client.get(f"/karte/frame?{query}")
    assert response.status_code == 200
    match = DATA_RE.search(response.get_data(as_text=True))
    assert match, "no marker data in the frame"
    return json.loads(match.group(1))


def frame_ids(client, query: str = "") -> set[int]:
    return {row[4] for row in frame_rows(client, query)}


def ours(ids: dict, keys) -> set[int]:
    return {ids[key] for key in keys}


MAPPED = ("e1_kurs_nord", "e1_past_sued", "e1_cancelled", "e2_gruppe")


# --- row rules ------------------------------------------------------------------------------
def test_manager_and_owner_see_every_customer_with_coordinates(client_for, mapdata):
    for role in ("Manager", "Owner"):
        ids = frame_ids(client_for(role))
        assert ours(mapdata, MAPPED) <= ids
        assert not ours(mapdata, ("e2_nocoords", "e1_nocoords")) & ids


def test_employee_frame_holds_only_their_customers(app, client_for, mapdata, world):
    from app.extensions import db
    from app.models import Booking, Customer

    rows = frame_rows(client_for("Employee"))
    ids = {row[4] for row in rows}
    assert ours(mapdata, ("e1_kurs_nord", "e1_past_sued", "e1_cancelled")) <= ids
    assert mapdata["e2_gruppe"] not in ids
    with app.app_context():  # nothing beyond the employee's own: booked with them or created by them
        served = set(db.session.scalars(sa.select(Booking.customer_id).where(Booking.employee_id == world.employee1)))
        created = set(db.session.scalars(sa.select(Customer.id).where(
            Customer.created_by_id == world.user_employee1)))
    assert ids <= served | created
    names = {row[5] for row in rows}
    assert not any("Grete" in name for name in names)
    other = frame_ids(client_for("employee2"))
    assert mapdata["e2_gruppe"] in other and not ours(mapdata, ("e1_kurs_nord", "e1_past_sued")) & other


def test_popup_fields_next_appointment_in_local_time_units_and_approx(client_for, mapdata):
    rows = {row[4]: row for row in frame_rows(client_for("Manager"))}
    karla = rows[mapdata["e1_kurs_nord"]]
    assert karla[5] == f"📞 Karla {PREFIX} e1_kurs_nord"
    assert karla[6] == "Nordweg 1, 13187 Berlin"
    assert karla[7] == "02.03.2043 09:00"  # 08:00 UTC is 09:00 in Berlin (winter time)
    assert karla[8] == 7 and karla[3] == 0
    paul = rows[mapdata["e1_past_sued"]]
    assert paul[3] == 1 and paul[7] == "" and paul[8] == 0  # approx, no future appointment, no card
    # an employee may not see pass cards: no units column at all
    employee_row = next(row for row in frame_rows(client_for("Employee")) if row[4] == mapdata["e1_kurs_nord"])
    assert len(employee_row) == 8


def test_employee_next_appointment_is_only_their_own(client_for, mapdata, app, world):
    """A colleague's booking with the same customer is not the employee's business."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        booking = Booking(customer_id=mapdata["e1_kurs_nord"], service_id=world.service, employee_id=world.employee2,
                          start_at=FUTURE - timedelta(days=1))
        db.session.add(booking)
        db.session.commit()
        pk = booking.id
    try:
        employee = {row[4]: row for row in frame_rows(client_for("Employee"))}
        manager = {row[4]: row for row in frame_rows(client_for("Manager"))}
        assert employee[mapdata["e1_kurs_nord"]][7] == "02.03.2043 09:00"
        assert manager[mapdata["e1_kurs_nord"]][7] == "01.03.2043 09:00"
    finally:
        with app.app_context(), acting_as():
            db.session.delete(db.session.get(Booking, pk))
            db.session.commit()


# --- filters --------------------------------------------------------------------------------
def test_saved_lens_narrows_the_map(client_for, mapdata, test_lens):
    ids = frame_ids(client_for("Manager"), f"lens={test_lens}")
    assert ids == ours(mapdata, MAPPED)


def test_builtin_lens_narrows_the_map(app, client_for, mapdata):
    ids = frame_ids(client_for("Manager"), f"lens={builtin_lens(app, 'callback')}")
    assert mapdata["e1_kurs_nord"] in ids
    assert not ours(mapdata, ("e1_past_sued", "e1_cancelled", "e2_gruppe")) & ids


def test_another_users_private_lens_is_ignored_with_a_german_message(client_for, mapdata, test_lens):
    client = client_for("Employee")  # the lens is the manager's, not shared
    response = client.get(f"/karte/?lens={test_lens}")
    assert response.status_code == 200
    assert "Die gewählte Linse gibt es nicht oder Sie sehen sie nicht" in response.get_data(as_text=True)
    assert frame_ids(client, f"lens={test_lens}") == frame_ids(client)


def test_category_location_and_active_filters(client_for, mapdata):
    client = client_for("Manager")
    kurs = frame_ids(client, "category=kurs")
    assert ours(mapdata, ("e1_kurs_nord",)) <= kurs  # the cancelled Kurs booking does not count
    assert not ours(mapdata, ("e1_cancelled", "e1_past_sued", "e2_gruppe")) & kurs
    einzel = frame_ids(client, "category=einzelstunde")
    assert mapdata["e1_past_sued"] in einzel and mapdata["e1_kurs_nord"] not in einzel
    sued = frame_ids(client, f"location={mapdata['sued']}")
    assert ours(mapdata, ("e1_past_sued", "e2_gruppe")) <= sued
    assert not ours(mapdata, ("e1_kurs_nord", "e1_cancelled")) & sued
    active = frame_ids(client, "active=1")
    assert ours(mapdata, ("e1_kurs_nord", "e2_gruppe")) <= active
    assert not ours(mapdata, ("e1_past_sued", "e1_cancelled")) & active
    both = frame_ids(client, f"active=1&category=gruppe&location={mapdata['sued']}")
    assert mapdata["e2_gruppe"] in both and not ours(mapdata, ("e1_kurs_nord", "e1_past_sued")) & both


def test_colour_by_active_category_and_location(client_for, mapdata):
    from app.models.services import SERVICE_CATEGORIES

    client = client_for("Manager")
    active = {row[4]: row[2] for row in frame_rows(client)}
    assert active[mapdata["e1_kurs_nord"]] == 0 and active[mapdata["e1_past_sued"]] == 1
    assert active[mapdata["e1_cancelled"]] == 1  # a cancelled future booking is not "active"
    category = {row[4]: row[2] for row in frame_rows(client, "color=category")}
    keys = list(SERVICE_CATEGORIES)
    assert category[mapdata["e1_kurs_nord"]] == keys.index("kurs")
    assert category[mapdata["e2_gruppe"]] == keys.index("gruppe")
    assert category[mapdata["e1_past_sued"]] == keys.index("einzelstunde")
    html = client.get("/karte/frame?color=location").get_data(as_text=True)
    location = {row[4]: row[2] for row in json.loads(DATA_RE.search(html).group(1))}
    assert location[mapdata["e1_kurs_nord"]] != location[mapdata["e2_gruppe"]]
    assert location[mapdata["e2_gruppe"]] == location[mapdata["e1_past_sued"]]
    assert "Karte Süd" in html and "Karte Nord" in html  # the legend and the location markers


@pytest.mark.parametrize("query", [
    "lens=abc", "lens=99999999999999", "lens=-1", "category=KURS", "category=%27;--", "location=x",
    "location=987654321", "color=rainbow", "active=vielleicht", "heat=%00", "lens=%C2%B2",
])
def test_bad_filter_values_are_ignored_never_a_500(client_for, mapdata, query):
    client = client_for("Manager")
    page = client.get(f"/karte/?{query}")
    frame = client.get(f"/karte/frame?{query}")
    assert page.status_code in (200, 400) and frame.status_code in (200, 400)
    if "%00" not in query:
        assert page.status_code == 200 and frame.status_code == 200
    if query.split("=")[0] in ("lens", "category", "location", "color") and page.status_code == 200:
        assert "nicht angewendet" in page.get_data(as_text=True) or "eingefärbt" in page.get_data(as_text=True)


# --- access ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/karte/", "/karte/frame"])
def test_viewer_and_anonymous_are_refused(client_for, url):
    assert client_for("Viewer").get(url).status_code == 403
    assert is_login_redirect(client_for(None).get(url))


def test_menu_entry_for_staff_not_for_the_viewer(client_for):
    assert 'href="/karte/"' in client_for("Employee").get("/karte/").get_data(as_text=True)
    assert 'href="/karte/"' not in client_for("Viewer").get("/").get_data(as_text=True)


# --- offline assets and escaping ------------------------------------------------------------
class AssetLinks(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(values["src"])
            else:
                self.inline_scripts += 1
        elif tag == "link" and values.get("href"):
            self.urls.append(values["href"])
        elif tag == "iframe":
            self.urls.append(values.get("src") or "")


def asset_urls(html: str) -> list[str]:
    parser = AssetLinks()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("query", ["", "heat=1&color=category"])
def test_page_and_frame_load_nothing_from_another_host(client_for, mapdata, query):
    client = client_for("Manager")
    for url in (f"/karte/?{query}", f"/karte/frame?{query}"):
        html = client.get(url).get_data(as_text=True)
        urls = asset_urls(html)
        assert urls, url
        for src in urls:
            parts = urlsplit(src)
            assert not parts.scheme and not parts.netloc, f"{url}: {src}"
            assert src.startswith(("/static/", "/karte/frame")), f"{url}: {src}"
        for host in ("jsdelivr.net", "cdnjs.cloudflare.com", "code.jquery.com", "bootstrapcdn.com",
                     "use.fontawesome.com", "unpkg.com"):
            assert host not in html
    frame = client.get(f"/karte/frame?{query}").get_data(as_text=True)
    assert "/static/vendor/leaflet-1.9.4/leaflet.js" in frame
    assert "/static/vendor/leaflet.markercluster-1.5.3/leaflet.markercluster.js" in frame
    assert ("/static/vendor/leaflet.heat-0.2.0/leaflet-heat.js" in frame) == ("heat=1" in query)
    # the tile URL template is the only other host, from the config
    assert "tile.openstreetmap.org/{z}/{x}/{y}.png" in frame


def test_vendored_assets_are_served(client_for):
    client = client_for("Manager")
    for path in ("vendor/leaflet-1.9.4/leaflet.js", "vendor/leaflet-1.9.4/leaflet.css",
                 "vendor/leaflet.markercluster-1.5.3/leaflet.markercluster.js",
                 "vendor/leaflet.markercluster-1.5.3/MarkerCluster.Default.css",
                 "vendor/leaflet.heat-0.2.0/leaflet-heat.js", "js/customer_map.js", "css/customer_map.css"):
        response = client.get(f"/static/{path}")
        assert response.status_code == 200, path
        response.close()


def test_tile_url_and_attribution_come_from_the_config(app, client_for, mapdata):
    url, attribution = app.config["MAP_TILES_URL"], app.config["MAP_TILES_ATTRIBUTION"]
    app.config.update(MAP_TILES_URL="https://tiles.example.invalid/{z}/{x}/{y}.png",
                      MAP_TILES_ATTRIBUTION="Beispielkacheln")
    try:
        html = client_for("Manager").get("/karte/frame").get_data(as_text=True)
    finally:
        app.config.update(MAP_TILES_URL=url, MAP_TILES_ATTRIBUTION=attribution)
    assert "tiles.example.invalid/{z}/{x}/{y}.png" in html and "Beispielkacheln" in html
    assert "tile.openstreetmap.org" not in html
    assert "tilesOffline" in html  # the note shown by the tileerror handler


def test_name_with_html_stays_text(client_for, mapdata):
    client = client_for("Manager")
    html = client.get("/karte/frame").get_data(as_text=True)
    assert EVIL not in html and "<script>alert" not in html and "<img src=x" not in html
    assert "\\u003cscript\\u003ealert" in html  # inside the JSON, escaped for the <script> element
    row = next(row for row in frame_rows(client) if row[4] == mapdata["e1_cancelled"])
    assert row[5] == f"{EVIL} {PREFIX} e1_cancelled"  # the data itself is unchanged: JS sets it as text
    page = client.get("/karte/").get_data(as_text=True)
    assert "<script>alert" not in page
    script = client.get("/static/js/customer_map.js").get_data(as_text=True)
    assert "innerHTML" not in script and "textContent" in script


def test_heat_layer_only_when_asked(client_for, mapdata):
    client = client_for("Manager")
    assert "L.heatLayer" not in client.get("/karte/frame").get_data(as_text=True)
    assert "L.heatLayer" in client.get("/karte/frame?heat=1").get_data(as_text=True)


# --- the count line -------------------------------------------------------------------------
def count_line(html: str) -> tuple[int, int, int, str | None]:
    match = re.search(r'data-shown="(\d+)" data-total="(\d+)" data-without="(\d+)"', html)
    assert match
    link = re.search(r'class="tb-map-count".*?<a href="([^"]+)"', html, re.S)
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), \
        link.group(1).replace("&amp;", "&") if link else None


def test_count_line_matches_a_hand_count(app, client_for, mapdata, test_lens):
    from app.extensions import db
    from app.models import Customer

    client = client_for("Manager")
    html = client.get(f"/karte/?lens={test_lens}").get_data(as_text=True)
    shown, total, without, link = count_line(html)
    assert (shown, total, without) == (4, 6, 2)
    assert "4 von 6 Kund:innen angezeigt" in html and "2 ohne Koordinaten" in html
    assert len(frame_rows(client, f"lens={test_lens}")) == shown
    # the link lists exactly those without coordinates (lens + "Ohne Koordinaten")
    parts = urlsplit(link)
    assert parts.path == "/customerview/list/"
    assert ("_flt_0_lens", "no_coordinates") in parse_qsl(parts.query)
    listed = client.get(f"{link}&psize_CustomerView=100").get_data(as_text=True)
    ids = {int(pk) for pk in re.findall(r'href="/customerview/show/(\d+)', listed)}
    assert ids == ours(mapdata, ("e2_nocoords", "e1_nocoords"))
    # without a filter: every customer not erased, counted by hand
    with app.app_context():
        customers = db.session.execute(sa.select(Customer.lat, Customer.lon).where(Customer.erased_at.is_(None))).all()
    shown, total, without, _link = count_line(client.get("/karte/").get_data(as_text=True))
    assert total == len(customers)
    assert shown == sum(1 for lat, lon in customers if lat is not None and lon is not None)
    assert without == total - shown
    assert len(frame_rows(client)) == shown


def test_employee_count_line_follows_the_row_rules(client_for, mapdata):
    client = client_for("Employee")
    shown, total, without, link = count_line(client.get("/karte/?active=1").get_data(as_text=True))
    rows = frame_rows(client, "active=1")
    assert shown == len(rows) and total == shown + without
    listed = client.get(f"{link}&psize_CustomerView=100").get_data(as_text=True)
    ids = {int(pk) for pk in re.findall(r'href="/customerview/show/(\d+)', listed)}
    assert mapdata["e1_nocoords"] in ids and mapdata["e2_nocoords"] not in ids
    assert len(ids) == without


# --- cost -----------------------------------------------------------------------------------
def test_frame_statements_do_not_grow_with_the_customers(app, client_for, mapdata, statements):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    client = client_for("Manager")
    client.get("/karte/frame")  # warm: permissions, lenses
    with statements() as before:
        rows_before = len(frame_rows(client, "color=category"))
    with app.app_context(), acting_as():
        extra = [Customer(first_name="Mehr", last_name=f"{PREFIX} mehr {n}", lat=52.5 + n / 1000, lon=13.4,
                          geocode_status="ok") for n in range(30)]
        db.session.add_all(extra)
        db.session.commit()
        extra_ids = [customer.id for customer in extra]
    try:
        with statements() as after:
            rows_after = len(frame_rows(client, "color=category"))
    finally:
        with app.app_context(), acting_as():
            db.session.execute(sa.delete(Customer).where(Customer.id.in_(extra_ids)))
            db.session.commit()
    assert rows_after == rows_before + 30
    assert after.n == before.n


def test_geocode_all_missing_from_the_map_page(app, world, client_for, rq_queues):
    """Manager: one button queues every customer without an exact position (POST + CSRF);
    an Employee has neither the button nor the route; GET changes nothing."""
    from rq import Queue
    from rq.job import Job

    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer
    from tests.helpers_perm import session_csrf

    connection = rq_queues["default"].connection
    geocoding = Queue("geocoding", connection=connection)

    def clean() -> None:
        geocoding.empty()
        for key in connection.scan_iter("rq:rl:geocoder*"):
            connection.delete(key)

    def queued_ids() -> set[int]:
        held = [job_id.decode() for job_id in connection.zrange("rq:rl:geocoder:rate_limited", 0, -1)]
        return {pk for job_id in geocoding.job_ids + held for pk in Job.fetch(job_id, connection=connection).args[0]}

    with app.app_context(), acting_as():
        customer = Customer(first_name="Gerda", last_name="Ohneort", street="Torstraße 1", postal_code="10119",
                            city="Berlin")
        db.session.add(customer)
        db.session.commit()
        pk = customer.id
    clean()
    try:
        manager, employee = client_for("Manager"), client_for("Employee")
        assert "/karte/geocode_missing" in manager.get("/karte/").get_data(as_text=True)
        assert "/karte/geocode_missing" not in employee.get("/karte/").get_data(as_text=True)
        assert manager.get("/karte/geocode_missing").status_code == 405
        assert manager.post("/karte/geocode_missing").status_code == 400  # no CSRF token
        assert employee.post("/karte/geocode_missing", data={"csrf_token": session_csrf(employee)}
                             ).status_code in (302, 403)
        assert manager.post("/karte/geocode_missing", data={"csrf_token": session_csrf(manager)}
                            ).status_code == 200  # not from the button: the page again, nothing queued
        assert queued_ids() == set()
        response = manager.post("/karte/geocode_missing", data={"csrf_token": session_csrf(manager), "confirm": "1"})
        assert response.status_code == 302
        assert pk in queued_ids()
    finally:
        clean()
        with app.app_context(), acting_as():
            db.session.delete(db.session.get(Customer, pk))
            db.session.commit()
