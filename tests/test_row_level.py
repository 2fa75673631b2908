"""Row-level access: an Employee (employee1) cannot reach the colleague's
(employee2's) booking2, customer2 or pet2 by any door — list, search and filter
URLs, show/edit/delete URLs, the REST API, the related lists of a customer's
page, the customer lookup, the forms (including FAB's `_flt_` pre-fill) — while
the own data works. Every "cannot" has a positive control: the Owner (or the
Manager/Viewer) gets the same URL answered, so the test cannot pass vacuously."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.conftest import ROLE_USERS, login
from tests.helpers_perm import api_token, bearer, html, pop_flashes, session_csrf

OWN_MESSAGE = "Sie können nur eigene Termine anlegen oder ändern."
NO_RIGHT_MESSAGE = "Keine Berechtigung für den gewählten Eintrag."
NOT_OFFERED = "Keine gültige Auswahl"  # a colleague is not among the employee select's options


@pytest.fixture(scope="module")
def clients(app, world):
    return {role: login(app.test_client(), username) for role, username in ROLE_USERS.items()}


@pytest.fixture(scope="module")
def tokens(app, world):
    return {role: api_token(app, username) for role, username in ROLE_USERS.items()}


@pytest.fixture(scope="module")
def shared(app, world):
    """A customer both employees serve: one booking with each, and a private lens of employee2."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, Customer, Lens

    with app.app_context(), acting_as():
        customer = Customer(first_name="Gerda", last_name="Gemeinsam", city="Berlin")
        start = datetime(2030, 6, 3, 9, tzinfo=timezone.utc)
        own = Booking(customer=customer, service_id=world.service, employee_id=world.employee1,
                      start_at=start, comment="Gemeinsam bei Eva")
        other = Booking(customer=customer, service_id=world.service, employee_id=world.employee2,
                        start_at=start + timedelta(hours=3), comment="Gemeinsam bei der Kollegin")
        lens = Lens(name="Zoes Linse", view_name="BookingView", query_string="", owner_id=world.user_employee2)
        db.session.add_all([customer, own, other, lens])
        db.session.commit()
        ids = {"customer": customer.id, "own": own.id, "other": other.id, "lens": lens.id}
    yield ids
    with app.app_context(), acting_as():
        for model, key in ((Lens, "lens"), (Booking, "own"), (Booking, "other"), (Customer, "customer")):
            row = db.session.get(model, ids[key])
            if row is not None:
                db.session.delete(row)
        db.session.commit()


def db_row(app, model_name: str, pk: int):
    """The row as stored (a fresh session), as a dict of its columns, or None."""
    from app import models
    from app.extensions import db

    model = getattr(models, model_name)
    with app.app_context():
        row = db.session.get(model, pk)
        return None if row is None else {c.key: getattr(row, c.key) for c in sa.inspect(model).columns}


@pytest.fixture()
def booking1_restored(app, world):
    """Tests that try to move booking1 put it back whatever happens (the world is shared)."""
    from app.extensions import db
    from app.models import Booking

    yield
    with app.app_context():
        db.session.execute(sa.update(Booking).where(Booking.id == world.booking1).values(
            customer_id=world.customer1, employee_id=world.employee1, comment="Erster Termin"))
        db.session.commit()


def count_bookings(app, **where) -> int:
    from app.extensions import db
    from app.models import Booking

    with app.app_context():
        stmt = sa.select(sa.func.count(Booking.id)).filter_by(**where)
        return db.session.scalar(stmt)


def shows(page: str, kind: str, pk: int) -> bool:
    """Whether the page links the row's show page (lists: `…/show/7"`, related lists: `…/show/7?_flt…`)."""
    return re.search(rf'/{kind}view/show/{pk}["?]', page) is not None


# --- lists and searches ------------------------------------------------------------
def test_lists_show_the_employee_only_own_rows(clients, world):
    page = html(clients["Employee"].get(f"/bookingview/list/?{ALL_YEARS}"))
    assert shows(page, "booking", world.booking1)
    assert not shows(page, "booking", world.booking2)
    assert "Colleague" not in page
    customers = html(clients["Employee"].get("/customerview/list/"))
    assert shows(customers, "customer", world.customer1)
    assert not shows(customers, "customer", world.customer2)
    assert not shows(html(clients["Employee"].get("/petview/list/")), "pet", world.pet2)


@pytest.mark.parametrize("role", ["Owner", "Manager", "Viewer"])
def test_other_roles_see_both_employees_bookings(clients, world, role):
    page = html(clients[role].get(f"/bookingview/list/?{WORLD_DAY}"))  # other modules add later bookings
    assert shows(page, "booking", world.booking1)
    assert shows(page, "booking", world.booking2)
    assert shows(html(clients[role].get("/petview/list/")), "pet", world.pet2)


ALL_YEARS = "_flt_1_start_at=2000-01-01+00:00:00"  # the booking list defaults to a window around today
WORLD_DAY = "_flt_1_start_at=2030-03-04+00:00:00&_flt_2_start_at=2030-03-05+00:00:00"  # the world's bookings
SEARCHES = [
    ("booking", "booking2", f"/bookingview/list/?_flt_0_comment=Kollegin&{ALL_YEARS}"),  # keyword
    ("booking", "booking2", f"/bookingview/list/?_flt_0_customer_name=Coll&{ALL_YEARS}"),  # customer name contains
    ("booking", "booking2", f"/bookingview/list/?_flt_1_customer_name=Bernd&{ALL_YEARS}"),  # customer name starts with
    ("booking", "booking2", f"/bookingview/list/?_flt_0_employee={{employee2}}&{ALL_YEARS}"),  # relation equal
    ("booking", "booking2", f"/bookingview/list/?_flt_1_employee={{employee1}}&{ALL_YEARS}"),  # relation not equal
    ("booking", "booking2",
     f"/bookingview/list/?_flt_0_comment=Kollegin&psize_BookingView=100&page_BookingView=0&{ALL_YEARS}"),
    ("booking", "booking2", f"/bookingview/list/?_oc_BookingView=start_at&_od_BookingView=asc&{ALL_YEARS}"),
    ("customer", "customer2", "/customerview/list/?_flt_0_last_name=Coll"),
    ("customer", "customer2", "/customerview/list/?_flt_2_email=bernd"),
    ("customer", "customer2", "/customerview/list/?_flt_0_city=Potsdam"),
    ("pet", "pet2", "/petview/list/?_flt_0_name=Bel"),
    ("pet", "pet2", "/petview/list/?_flt_0_breed=Dackel"),
]


@pytest.mark.parametrize("kind,target,url", SEARCHES)
def test_search_and_filter_urls_do_not_reveal_colleague_rows(clients, world, kind, target, url):
    url = url.format(**world.ids)
    pk = getattr(world, target)
    owner = clients["Owner"].get(url)
    assert owner.status_code == 200 and shows(html(owner), kind, pk), "control: the filter finds the row for the Owner"
    employee = clients["Employee"].get(url)
    assert employee.status_code == 200
    assert not shows(html(employee), kind, pk)


# --- show / edit / delete URLs -------------------------------------------------------------
COLLEAGUE_ROWS = [("booking", "booking2"), ("customer", "customer2"), ("pet", "pet2")]


@pytest.mark.parametrize("kind,target", COLLEAGUE_ROWS)
def test_show_and_edit_urls_of_colleague_rows_are_404(clients, world, kind, target):
    pk = getattr(world, target)
    for action in ("show", "edit"):
        assert clients["Owner"].get(f"/{kind}view/{action}/{pk}").status_code == 200, "control"
        assert clients["Employee"].get(f"/{kind}view/{action}/{pk}").status_code == 404, action


EDIT_POSTS = {
    "booking": ("Booking", {"comment": "gehackt", "start_at": "2030-03-04 12:00:00", "source": "phone"}),
    "customer": ("Customer", {"first_name": "Gehackt", "last_name": "Gehackt", "country": "DE"}),
    "pet": ("Pet", {"name": "Gehackt", "species": "Hund"}),
}


@pytest.mark.parametrize("kind,target", COLLEAGUE_ROWS)
def test_edit_post_to_colleague_rows_is_404_and_changes_nothing(app, clients, world, kind, target):
    model, data = EDIT_POSTS[kind]
    pk = getattr(world, target)
    before = db_row(app, model, pk)
    client = clients["Employee"]
    response = client.post(f"/{kind}view/edit/{pk}", data={**data, "csrf_token": session_csrf(client)})
    assert response.status_code == 404
    assert db_row(app, model, pk) == before


@pytest.mark.parametrize("kind,target", COLLEAGUE_ROWS)
def test_delete_urls_of_colleague_rows_delete_nothing(app, clients, world, kind, target):
    model = EDIT_POSTS[kind][0]
    pk = getattr(world, target)
    client = clients["Employee"]
    assert client.get(f"/{kind}view/delete/{pk}").status_code in (403, 404)
    response = client.post(f"/{kind}view/delete/{pk}", data={"csrf_token": session_csrf(client)})
    assert response.status_code in (403, 404)
    assert db_row(app, model, pk) is not None


def test_a_colleagues_private_lens_is_invisible_even_where_employees_may_delete(app, clients, shared):
    """LensView is the one view where an Employee has can_delete: the row rule must still hold."""
    client = clients["Employee"]
    pk = shared["lens"]
    assert client.get(f"/lensview/show/{pk}").status_code == 404
    assert client.get(f"/lensview/edit/{pk}").status_code == 404
    assert client.post(f"/lensview/delete/{pk}", data={"csrf_token": session_csrf(client)}).status_code == 404
    assert db_row(app, "Lens", pk) is not None
    assert f'/lensview/show/{pk}"' in html(login(app.test_client(), "employee2").get("/lensview/list/"))


# --- the customer page's related lists and the lookup ----------------------------------------
def test_related_lists_on_a_shared_customer_show_only_own_bookings(clients, shared):
    url = f"/customerview/show/{shared['customer']}"
    owner = html(clients["Owner"].get(url))
    assert shows(owner, "booking", shared["own"]) and shows(owner, "booking", shared["other"])
    response = clients["Employee"].get(url)
    assert response.status_code == 200
    page = html(response)
    assert shows(page, "booking", shared["own"])
    assert not shows(page, "booking", shared["other"])
    assert "Gemeinsam bei der Kollegin" not in page


def test_related_list_paging_and_ordering_args_do_not_widen_it(clients, shared):
    url = (f"/customerview/show/{shared['customer']}?psize_BookingView=100&page_BookingView=0"
           "&_oc_BookingView=start_at&_od_BookingView=desc")
    page = html(clients["Employee"].get(url))
    assert shows(page, "booking", shared["own"])
    assert not shows(page, "booking", shared["other"])


def test_customer_lookup_offers_only_served_customers(clients, world):
    owner = clients["Owner"].get("/customerview/lookup?q=Col").json["results"]
    assert world.customer2 in [row["id"] for row in owner], "control"
    for query in ("Col", "Colleague", "bernd", "Bernd Colleague", ""):
        results = clients["Employee"].get(f"/customerview/lookup?q={query}").json["results"]
        assert world.customer2 not in [row["id"] for row in results], query
    own = clients["Employee"].get("/customerview/lookup?q=Ber").json["results"]
    assert world.customer1 in [row["id"] for row in own]


# --- the forms ------------------------------------------------------------------------------
def booking_form(world, **overrides) -> dict:
    data = {
        "customer": world.customer1, "service": world.service, "employee": world.employee1,
        "start_at": "2030-04-01 10:00:00", "end_at": "", "source": "backoffice", "reminder": "y",
        "comment": "Formularprobe",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def post_booking(client, url: str, data: dict):
    response = client.post(url, data={**data, "csrf_token": session_csrf(client)})
    return response, [message for _, message in pop_flashes(client)]


@pytest.mark.parametrize("url,overrides,message", [
    ("/bookingview/add", {"employee": "{employee2}"}, NOT_OFFERED),
    ("/bookingview/add", {"employee": ""}, OWN_MESSAGE),
    ("/bookingview/add", {"customer": "{customer2}"}, "Bitte auswählen."),
    # FAB pre-fills a related column from a `_flt_` argument (the "add" button of a related list)
    # (FAB takes the employee from the URL and hides the field; the colleague is not among its
    # options, so the form is refused on that hidden field: nothing stored, no message to show)
    ("/bookingview/add?_flt_0_employee={employee2}", {}, None),
    ("/bookingview/add?_flt_0_customer={customer2}", {}, NO_RIGHT_MESSAGE),
])
def test_booking_form_refuses_colleague_data_and_stores_nothing(app, clients, world, url, overrides, message):
    comment = f"Verboten {url} {sorted(overrides.items())}"
    data = booking_form(world, comment=comment, **{k: v.format(**world.ids) for k, v in overrides.items()})
    response, flashed = post_booking(clients["Employee"], url.format(**world.ids), data)
    assert response.status_code in (200, 302)
    if message is not None:
        assert message in flashed or message in html(response), (flashed, response.status_code, re.findall(
            r'class="[^"]*(?:alert|help-block|error)[^"]*">([^<]+)<', html(response)))
    else:
        assert response.status_code == 200  # the form again, not a redirect to the stored row
    assert count_bookings(app, comment=comment) == 0


def test_own_booking_cannot_be_moved_to_colleague_or_colleagues_customer(app, clients, world, booking1_restored):
    before = db_row(app, "Booking", world.booking1)
    client = clients["Employee"]
    data = booking_form(world, comment="Umgehängt", start_at="2030-03-04 10:00:00", status=world.confirmed)
    for url, overrides, message in [
        (f"/bookingview/edit/{world.booking1}", {"employee": world.employee2}, NOT_OFFERED),
        (f"/bookingview/edit/{world.booking1}", {"customer": world.customer2}, "Bitte auswählen."),
        (f"/bookingview/edit/{world.booking1}?_flt_0_customer={world.customer2}", {}, NO_RIGHT_MESSAGE),
    ]:
        response, flashed = post_booking(client, url, {**data, **overrides})
        assert message in flashed or message in html(response), (url, flashed, re.findall(
            r'class="[^"]*(?:alert|help-block|error)[^"]*">([^<]+)<', html(response)))
        assert db_row(app, "Booking", world.booking1) == before, url
    # control: the same form with the own data goes through
    response, flashed = post_booking(client, f"/bookingview/edit/{world.booking1}", data)
    assert response.status_code == 302 and OWN_MESSAGE not in flashed, flashed
    assert db_row(app, "Booking", world.booking1)["comment"] == "Umgehängt"


def test_employee_adds_own_booking_with_derived_end(app, clients, world):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    client = clients["Employee"]
    assert client.get(f"/bookingview/show/{world.booking1}").status_code == 200
    assert client.get(f"/customerview/show/{world.customer1}").status_code == 200
    assert client.get("/bookingview/add").status_code == 200
    response, flashed = post_booking(client, "/bookingview/add", booking_form(world, comment="Eigener Neuer"))
    assert response.status_code == 302, flashed
    with app.app_context():
        booking = db.session.scalars(sa.select(Booking).where(Booking.comment == "Eigener Neuer")).one()
        assert booking.employee_id == world.employee1
        assert booking.customer_id == world.customer1
        assert booking.end_at - booking.start_at == timedelta(minutes=60)  # the service's duration
        # 10:00 in Berlin (summer time in April) is 08:00 UTC
        assert booking.start_at == datetime(2030, 4, 1, 8, 0, tzinfo=timezone.utc)
        pk = booking.id
    assert shows(html(client.get(f"/bookingview/list/?{ALL_YEARS}")), "booking", pk)
    with app.app_context(), acting_as():
        db.session.delete(db.session.get(Booking, pk))
        db.session.commit()


def test_viewer_reads_but_never_writes(app, clients, world):
    viewer = clients["Viewer"]
    assert viewer.get(f"/bookingview/show/{world.booking2}").status_code == 200
    for url in ("/bookingview/add", f"/bookingview/edit/{world.booking1}", f"/bookingview/delete/{world.booking1}",
                "/customerview/add", f"/customerview/edit/{world.customer1}", f"/petview/edit/{world.pet2}"):
        assert viewer.get(url).status_code == 403, url
    before = db_row(app, "Booking", world.booking1)
    response, _ = post_booking(viewer, "/bookingview/add", booking_form(world, comment="Viewer schreibt"))
    assert response.status_code == 403
    response, _ = post_booking(viewer, f"/bookingview/edit/{world.booking1}", booking_form(world, comment="x"))
    assert response.status_code == 403
    response, _ = post_booking(viewer, f"/bookingview/delete/{world.booking1}", {})
    assert response.status_code == 403
    assert count_bookings(app, comment="Viewer schreibt") == 0
    assert db_row(app, "Booking", world.booking1) == before


# --- the REST API ------------------------------------------------------------------------------
def api(app, tokens, role, method, url, json=None):
    return app.test_client().open(url, method=method, headers=bearer(tokens[role]), json=json)


def booking_json(world, **overrides) -> dict:
    data = {"customer": world.customer1, "service": world.service, "employee": world.employee1,
            "start_at": "2030-04-02T08:00:00+00:00", "end_at": "2030-04-02T09:00:00+00:00",
            "comment": "REST-Probe", "source": "phone", "reminder": False}
    data.update(overrides)
    return data


def test_rest_get_of_colleague_rows_is_404(app, tokens, world):
    for url in (f"/api/v1/booking/{world.booking2}", f"/api/v1/customer/{world.customer2}",
                f"/api/v1/pet/{world.pet2}"):
        assert api(app, tokens, "Owner", "GET", url).status_code == 200, "control"
        assert api(app, tokens, "Employee", "GET", url).status_code == 404, url
    assert api(app, tokens, "Employee", "GET", f"/api/v1/booking/{world.booking1}").status_code == 200


def test_rest_lists_and_filters_leave_colleague_rows_out(app, tokens, world):
    # one page of 100 holds every row of the test database, so `count` can be compared with the ids
    for url, colleague in [
        ("/api/v1/booking/?q=(page_size:100)", world.booking2),
        (f"/api/v1/booking/?q=(filters:!((col:employee,opr:rel_o_m,value:{world.employee2})),page_size:100)",
         world.booking2),
        ("/api/v1/booking/?q=(filters:!((col:comment,opr:ct,value:Kollegin)),page_size:100)", world.booking2),
        ("/api/v1/booking/?q=(page_size:100,page:0)", world.booking2),
        ("/api/v1/customer/?q=(page_size:100)", world.customer2),
        ("/api/v1/customer/?q=(filters:!((col:last_name,opr:sw,value:Coll)),page_size:100)", world.customer2),
        ("/api/v1/pet/?q=(page_size:100)", world.pet2),
    ]:
        owner = api(app, tokens, "Owner", "GET", url)
        assert owner.status_code == 200 and colleague in owner.json["ids"], f"control: {url}"
        response = api(app, tokens, "Employee", "GET", url)
        assert response.status_code == 200, url
        assert colleague not in response.json["ids"], url
        assert owner.json["count"] == len(owner.json["ids"]) <= 100, f"control: one page holds all: {url}"
        assert response.json["count"] == len(response.json["ids"]), "the count leaks no hidden rows"
    own = api(app, tokens, "Employee", "GET", "/api/v1/booking/?q=(page_size:100)").json
    assert world.booking1 in own["ids"] and world.booking2 not in own["ids"]


def test_rest_put_and_delete_of_colleague_rows_change_nothing(app, tokens, world):
    before = db_row(app, "Booking", world.booking2)
    response = api(app, tokens, "Employee", "PUT", f"/api/v1/booking/{world.booking2}", {"comment": "gehackt"})
    assert response.status_code == 404
    response = api(app, tokens, "Employee", "PUT", f"/api/v1/customer/{world.customer2}", {"last_name": "Gehackt"})
    assert response.status_code == 404
    assert api(app, tokens, "Employee", "DELETE", f"/api/v1/booking/{world.booking2}").status_code in (403, 404)
    assert api(app, tokens, "Employee", "DELETE", f"/api/v1/pet/{world.pet2}").status_code in (403, 404)
    assert db_row(app, "Booking", world.booking2) == before
    assert db_row(app, "Customer", world.customer2)["last_name"] == "Colleague"
    assert db_row(app, "Pet", world.pet2) is not None


@pytest.mark.parametrize("overrides", [
    {"employee": "employee2"},
    {"customer": "customer2"},
    {"employee": None},
])
def test_rest_post_of_a_colleague_booking_is_refused(app, tokens, world, overrides):
    comment = f"REST verboten {sorted(overrides)}"
    data = booking_json(world, comment=comment,
                        **{key: (world.ids[value] if value else None) for key, value in overrides.items()})
    response = api(app, tokens, "Employee", "POST", "/api/v1/booking/", data)
    assert response.status_code == 400, response.json
    assert count_bookings(app, comment=comment) == 0


def test_rest_put_cannot_move_own_booking_to_colleague(app, tokens, world, booking1_restored):
    before = db_row(app, "Booking", world.booking1)
    for change in ({"employee": world.employee2}, {"customer": world.customer2}):
        response = api(app, tokens, "Employee", "PUT", f"/api/v1/booking/{world.booking1}", change)
        assert response.status_code == 400, (change, response.json)
    assert db_row(app, "Booking", world.booking1) == before


def test_rest_post_of_own_booking_works(app, tokens, world):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    response = api(app, tokens, "Employee", "POST", "/api/v1/booking/", booking_json(world, comment="REST eigen"))
    assert response.status_code == 201, response.json
    pk = response.json["id"]
    assert api(app, tokens, "Employee", "GET", f"/api/v1/booking/{pk}").status_code == 200
    with app.app_context(), acting_as():
        db.session.delete(db.session.get(Booking, pk))
        db.session.commit()


def test_relation_selects_offer_only_visible_rows(client_for, world):
    """The booking form's employee select: an Employee is offered only themself (choosing
    a colleague was refused only on saving), a Manager everyone."""
    import re

    def offered(client) -> set[str]:
        html = client.get("/bookingview/add").get_data(as_text=True)
        select = re.search(r'<select[^>]*id="employee".*?</select>', html, re.S).group(0)
        return set(re.findall(r'<option[^>]*value="(\d+)"', select))

    assert offered(client_for("Employee")) == {str(world.employee1)}
    assert {str(world.employee1), str(world.employee2)} <= offered(client_for("Manager"))


def test_optional_relation_select_shows_a_dash_not_fabs_none(client_for):
    html = client_for("Manager").get("/bookingview/add").get_data(as_text=True)
    assert '<option selected value="__None">–</option>' in html
    assert ">__None<" not in html


def test_employee_booking_form_starts_with_themself(client_for, world):
    html = client_for("Employee").get("/bookingview/add").get_data(as_text=True)
    assert f'<option selected value="{world.employee1}">' in html
    assert '<option selected value="__None">' in client_for("Manager").get("/bookingview/add").get_data(as_text=True)
