"""Linsen (issue 4, point 2): the built-in customer lenses select exactly their customers
(overdue: the median gap rule), "Als Linse speichern" keeps only the list's own arguments,
sharing with roles, the tabs above the lists, the recall action of the overdue lens, and
the row rules: a lens is only list arguments, so every user sees only their own rows."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode

import pytest
import sqlalchemy as sa

from tests.helpers_perm import pop_flashes, session_csrf

NOW = datetime.now(timezone.utc)
NOON = NOW.replace(hour=12, minute=0, second=0, microsecond=0)


def days_ago(days: int, hour_offset: int = 0) -> datetime:
    return NOON - timedelta(days=days) + timedelta(hours=hour_offset)


# customer → (employee key or None, [days ago of visits], extra)
VISITS = {
    "overdue": ("employee1", [150, 120, 90, 60]),  # gaps 30/30/30, last visit 60 days ago: overdue
    "recent": ("employee1", [110, 80, 50, 20]),  # last visit 20 days ago: not yet
    "booked": ("employee1", [150, 120, 90, 60]),  # overdue by its visits, but has a future booking
    "two": ("employee1", [90, 60]),  # only 2 visits: no usual interval
    "colleague": ("employee2", [150, 120, 90, 60]),  # overdue, served by employee2, no e-mail consent
    "skipped": ("employee1", [150, 120, 60]),  # gaps 30/60 (median 45 × 1.5 = 67.5 > 60): not overdue
}


@pytest.fixture(scope="module")
def data(app, world):
    """Customers for every built-in lens; bookings at distinct hours (no overlaps)."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, BookingStatus, Customer, PassCard, PassCardType

    old = NOW - timedelta(days=400)
    with app.app_context(), acting_as():
        status = {kind: db.session.scalars(sa.select(BookingStatus).where(BookingStatus.kind == kind)
                                           .order_by(BookingStatus.position)).first()
                  for kind in ("completed", "no_show", "cancellation", "confirmation")}
        names = [*VISITS, "no_show", "one_no_show", "callback", "new", "card", "used_up", "expired", "active",
                 "cancelled", "dup_a", "dup_b"]
        customers = {name: Customer(first_name=f"Linse{i:02d}", last_name=f"Probe {name}", created_at=old)
                     for i, name in enumerate(names)}
        customers["overdue"].email, customers["overdue"].consent_email = "overdue@example.org", True
        customers["colleague"].email = "colleague@example.org"  # no consent: the recall is refused
        customers["recent"].email, customers["recent"].consent_email = "recent@example.org", True
        customers["callback"].emoji_marker = "📞"
        customers["new"].created_at = NOW - timedelta(days=3)
        for key in ("dup_a", "dup_b"):  # the same person twice: same name and phone
            customers[key].first_name, customers[key].last_name = "Doris", "Doppelgängerin"
            customers[key].phone = "+49301112233"
        db.session.add_all(customers.values())
        employees = {"employee1": world.employee1, "employee2": world.employee2}
        bookings = []
        hour = 0
        for name, (employee, visits) in VISITS.items():
            hour += 1
            for day in visits:
                bookings.append(Booking(customer=customers[name], service_id=world.service,
                                        employee_id=employees[employee], start_at=days_ago(day, hour - 8),
                                        status=status["completed"]))
        # a no-show inside the "skipped" customer's visits does not count as a visit
        bookings.append(Booking(customer=customers["skipped"], service_id=world.service, employee_id=None,
                                start_at=days_ago(90, 5), status=status["no_show"]))
        bookings.append(Booking(customer=customers["booked"], service_id=world.service, employee_id=world.employee1,
                                start_at=NOON + timedelta(days=10), status=status["confirmation"]))
        for day in (40, 41):
            bookings.append(Booking(customer=customers["no_show"], service_id=world.service, employee_id=None,
                                    start_at=days_ago(day, 6), status=status["no_show"]))
        bookings.append(Booking(customer=customers["one_no_show"], service_id=world.service, employee_id=None,
                                start_at=days_ago(42, 6), status=status["no_show"]))
        bookings.append(Booking(customer=customers["active"], service_id=world.service, employee_id=None,
                                start_at=NOON + timedelta(days=12, hours=6), status=status["confirmation"]))
        bookings.append(Booking(customer=customers["cancelled"], service_id=world.service, employee_id=None,
                                start_at=NOON + timedelta(days=13, hours=6), status=status["cancellation"]))
        card_type = PassCardType(name="Linsen-Probe 10er", units=10, price=Decimal("90.00"))
        cards = [
            PassCard(type=card_type, customer=customers["card"], units_total=10, units_used=3, price=Decimal("90")),
            PassCard(type=card_type, customer=customers["used_up"], units_total=10, units_used=10,
                     price=Decimal("90")),
            PassCard(type=card_type, customer=customers["expired"], units_total=10, units_used=1,
                     price=Decimal("90"), purchased_at=NOW - timedelta(days=100), expires_at=NOW - timedelta(days=1)),
        ]
        db.session.add_all([*bookings, card_type, *cards])
        db.session.commit()
        ids = {name: customer.id for name, customer in customers.items()}
        booking_ids = [booking.id for booking in bookings]
        card_type_id = card_type.id
    yield ids
    from app.models import Lens, NotificationLog

    with app.app_context(), acting_as():
        db.session.execute(sa.delete(NotificationLog).where(NotificationLog.customer_id.in_(ids.values())))
        for pk in booking_ids:
            db.session.delete(db.session.get(Booking, pk))
        db.session.flush()
        for pk in ids.values():
            db.session.delete(db.session.get(Customer, pk))
        db.session.flush()
        db.session.delete(db.session.get(PassCardType, card_type_id))
        for lens in db.session.scalars(sa.select(Lens).where(Lens.name.like("Probe-%"))):
            db.session.delete(lens)
        db.session.commit()


def listed_customers(client, query: str) -> set[int]:
    response = client.get(f"/customerview/list/?{query}&psize_CustomerView=100")
    assert response.status_code == 200
    return {int(pk) for pk in re.findall(r'href="/customerview/show/(\d+)', response.get_data(as_text=True))}


def known(data, world) -> set[int]:
    return set(data.values()) | {world.customer1, world.customer2}


def lens_url(key: str) -> str:
    from app.services.lenses import BUILTIN_LENSES

    return BUILTIN_LENSES[key][2]


# --- the overdue rule --------------------------------------------------------------------
def test_is_overdue_follows_the_median_gap():
    from app.services.lenses import is_overdue

    today = date(2026, 6, 1)
    regular = [today - timedelta(days=d) for d in (150, 120, 90, 60)]
    assert is_overdue(regular, today)
    assert not is_overdue([today - timedelta(days=d) for d in (110, 80, 50, 20)], today)
    assert not is_overdue([today - timedelta(days=d) for d in (90, 60)], today)  # two visits
    # exactly at the margin (30 × 1.5 = 45 days) is not yet overdue, one day later it is
    assert not is_overdue([today - timedelta(days=d) for d in (135, 105, 75, 45)], today)
    assert is_overdue([today - timedelta(days=d) for d in (136, 106, 76, 46)], today)
    # the median, not the mean: one long pause does not stretch the usual interval
    assert is_overdue([today - timedelta(days=d) for d in (400, 110, 80, 50)], today)


def test_overdue_lens_lists_exactly_the_overdue_regulars(owner, data, world):
    shown = listed_customers(owner, lens_url("overdue")) & known(data, world)
    assert shown == {data["overdue"], data["colleague"]}


def test_overdue_lens_says_why_each_customer_is_listed(owner, data):
    html = owner.get(f"/customerview/list/?{lens_url('overdue')}&psize_CustomerView=100").get_data(as_text=True)
    assert "Letzter Besuch" in html and "Üblicher Abstand" in html
    row = html.split(f'href="/customerview/show/{data["overdue"]}"', 1)[1].split("</tr>", 1)[0]
    assert "30 Tage" in row  # the median of the gaps 30/30/30
    assert "Letzter Besuch" not in owner.get("/customerview/list/").get_data(as_text=True)


def test_overdue_service_applies_the_row_rules(app, data, world):
    from flask import g

    from app.extensions import db
    from app.services.lenses import overdue_customer_ids

    with app.test_request_context():
        g.user = app.appbuilder.sm.find_user(username="employee1")
        assert set(overdue_customer_ids(db.session)) & set(data.values()) == {data["overdue"]}
        g.user = app.appbuilder.sm.find_user(username="owner")
        assert set(overdue_customer_ids(db.session)) & set(data.values()) == {data["overdue"], data["colleague"]}


def test_employee_sees_only_own_overdue_customers(employee, data, world):
    assert listed_customers(employee, lens_url("overdue")) & known(data, world) == {data["overdue"]}


# --- the other built-in lenses ---------------------------------------------------------
def test_no_show_lens_needs_two_no_shows(owner, data, world):
    assert listed_customers(owner, lens_url("no_show")) & known(data, world) == {data["no_show"]}


def test_callback_lens(owner, data, world):
    assert listed_customers(owner, lens_url("callback")) & known(data, world) == {data["callback"]}


def test_new_lens_is_the_last_30_days(owner, data, world):
    # the world's customers were created when the test session started
    assert listed_customers(owner, lens_url("new")) & known(data, world) == {
        data["new"], world.customer1, world.customer2}


def test_active_lens_is_a_future_not_cancelled_booking(owner, data, world):
    shown = listed_customers(owner, lens_url("active")) & known(data, world)
    assert shown == {data["active"], data["booked"], world.customer1, world.customer2}


def test_with_card_lens_and_remaining_units_column(owner, manager, employee, data, world):
    assert listed_customers(owner, lens_url("with_card")) & known(data, world) == {data["card"]}
    html = manager.get(f"/customerview/list/?{lens_url('with_card')}").get_data(as_text=True)
    assert "Resteinheiten" in html
    row = re.search(rf'href="/customerview/show/{data["card"]}".*?</tr>', html, re.S)
    assert row and re.search(r"<td>\s*7\s*</td>", row.group(0)), "7 units left on the card"
    assert "Resteinheiten" not in manager.get("/customerview/list/").get_data(as_text=True)
    # pass cards are not the Employee's (no card views): the lens shows them nothing
    assert listed_customers(employee, lens_url("with_card")) & known(data, world) == set()


def test_duplicates_lens(app, owner, employee, data, world):
    from flask import g

    from app.extensions import db
    from app.services.duplicates import duplicate_customer_ids

    with app.test_request_context():
        g.user = app.appbuilder.sm.find_user(username="owner")
        duplicates = set(duplicate_customer_ids(db.session))
    assert {data["dup_a"], data["dup_b"]} <= duplicates
    shown = listed_customers(owner, lens_url("duplicates"))
    assert shown & known(data, world) == duplicates & known(data, world)
    # the employee served neither Doris: the lens shows only customers the employee may see
    assert listed_customers(employee, lens_url("duplicates")) & {data["dup_a"], data["dup_b"]} == set()


def test_unknown_lens_key_matches_nothing(owner):
    assert listed_customers(owner, "_flt_0_lens=gibt-es-nicht") == set()


# --- seeding and the built-in rows ---------------------------------------------------------
def test_builtin_lenses_are_seeded_once(app):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Lens
    from app.services.lenses import BUILTIN_LENSES, seed_builtin_lenses

    with app.app_context(), acting_as():
        seed_builtin_lenses(db.session)
        db.session.commit()
        rows = db.session.scalars(sa.select(Lens).where(Lens.builtin_key.isnot(None))).all()
        assert {row.builtin_key for row in rows} == set(BUILTIN_LENSES)
        assert len(rows) == len(BUILTIN_LENSES)
        assert all(row.builtin and row.view_name == BUILTIN_LENSES[row.builtin_key].view and row.owner_id is None
                   for row in rows)
        assert {row.builtin_key for row in rows if row.view_name == "CustomerView"} == \
            set(BUILTIN_LENSES) - {"open_items"}  # the customer lenses stay on the customer list
        overdue = next(row for row in rows if row.builtin_key == "overdue")
        assert overdue.name == "Überfällig" and overdue.query_string == "_flt_0_lens=overdue"


def builtin_id(app, key: str) -> int:
    from app.extensions import db
    from app.models import Lens

    with app.app_context():
        return db.session.scalar(sa.select(Lens.id).where(Lens.builtin_key == key))


def test_builtin_lens_cannot_be_edited_or_deleted(app, owner):
    from app.extensions import db
    from app.models import Lens

    pk = builtin_id(app, "overdue")
    token = session_csrf(owner)
    owner.post(f"/lensview/edit/{pk}", data={"name": "Umbenannt", "view_name": "CustomerView",
                                             "query_string": "", "csrf_token": token})
    assert any("Eingebaute Linsen können nicht geändert werden." in text for _c, text in pop_flashes(owner))
    owner.post(f"/lensview/delete/{pk}", data={"csrf_token": token})
    assert any("Eingebaute Linsen können nicht gelöscht werden." in text for _c, text in pop_flashes(owner))
    with app.app_context():
        lens = db.session.get(Lens, pk)
        assert lens is not None and lens.name == "Überfällig" and lens.query_string == "_flt_0_lens=overdue"


# --- saving a lens ----------------------------------------------------------------------------
def lens_rows(app, name: str):
    from app.extensions import db
    from app.models import Lens

    with app.app_context():
        return [(lens.id, lens.owner_id, lens.view_name, lens.query_string, lens.shared,
                 sorted(role.name for role in lens.roles))
                for lens in db.session.scalars(sa.select(Lens).where(Lens.name == name))]


def save(client, name: str, query: str, view: str = "CustomerView", roles=()):
    data = {"view": view, "query": query, "name": name, "roles": [str(r) for r in roles],
            "csrf_token": session_csrf(client)}
    return client.post("/lensview/save", data=data)


def role_id(app, name: str) -> int:
    with app.app_context():
        return app.appbuilder.sm.find_role(name).id


def test_save_keeps_only_the_lists_own_arguments(app, manager, data, world):
    query = urlencode([
        ("_flt_0_city", "Berlin"), ("_flt_0_lens", "overdue"), ("_oc_CustomerView", "city"),
        ("_od_CustomerView", "desc"), ("psize_CustomerView", "50"),
        ("page_CustomerView", "2"), ("foo", "bar"), ("_flt_0_nosuch", "1"), ("_flt_9_lens", "x"),
        ("_oc_CustomerView", "notes"), ("_od_BookingView", "asc"), ("psize_CustomerView", "99999"),
        ("_flt_0_created_by", "1"), ("next", "https://evil.example"),
    ])
    response = save(manager, "Probe-Berlin", query)
    assert response.status_code == 302
    expected = "_flt_0_city=Berlin&_flt_0_lens=overdue&_oc_CustomerView=city&_od_CustomerView=desc" \
               "&psize_CustomerView=50"
    assert response.location.endswith(f"/customerview/list/?{expected}")
    [(_pk, owner_id, view, stored, shared, roles)] = lens_rows(app, "Probe-Berlin")
    assert owner_id == world.user_manager and view == "CustomerView" and not shared and roles == []
    assert stored == expected


def test_save_refuses_empty_name_duplicates_and_empty_filters(app, manager, data):
    response = save(manager, "  ", "_flt_0_city=Potsdam")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Bitte einen Namen für die Linse angeben." in html
    assert save(manager, "Probe-Doppelt", "_flt_0_city=Potsdam").status_code == 302
    response = save(manager, "probe-doppelt", "_flt_0_city=Bonn")
    assert response.status_code == 200
    assert "Sie haben schon eine Linse mit diesem Namen für diese Liste." in response.get_data(as_text=True)
    assert [row[3] for row in lens_rows(app, "Probe-Doppelt")] == ["_flt_0_city=Potsdam"]
    assert lens_rows(app, "probe-doppelt") == []
    # the same name as a built-in of the list, and a query without anything to keep
    response = save(manager, "Überfällig", "_flt_0_city=Bonn")
    assert "Sie haben schon eine Linse mit diesem Namen für diese Liste." in response.get_data(as_text=True)
    response = save(manager, "Probe-Leer", "foo=bar&page_CustomerView=3")
    assert response.status_code == 200
    assert "Die Liste hat keine Filter oder Sortierung" in response.get_data(as_text=True)
    assert lens_rows(app, "Probe-Leer") == []
    # a list the user may not see (an Employee and the pass cards), an unknown list
    assert "Bitte eine Liste wählen" in save(manager, "Probe-X", "_flt_0_city=Bonn", view="SettingView") \
        .get_data(as_text=True)
    assert lens_rows(app, "Probe-X") == []


def test_save_with_only_csrf_re_renders_the_form(manager):
    response = manager.post("/lensview/save", data={"csrf_token": session_csrf(manager)})
    assert response.status_code == 200 and 'id="lens-error"' in response.get_data(as_text=True)
    response = manager.post("/lensview/save", data={"view": "CustomerView", "name": "Probe-ohne-Token"})
    assert response.status_code == 400  # CSRF


def test_save_form_page_shows_what_would_be_kept(manager):
    response = manager.get("/lensview/save?view=BookingView&_flt_0_customer_name=Berg&evil=1")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "_flt_0_customer_name=Berg" in html and "evil" not in html.split(
        'id="lens-kept"')[1].split("</ul>")[0]


def test_viewer_cannot_save_a_lens(app, viewer):
    assert viewer.get("/lensview/save").status_code == 403
    response = save(viewer, "Probe-Viewer", "_flt_0_city=Berlin")
    assert response.status_code == 403 and lens_rows(app, "Probe-Viewer") == []
    assert 'id="tb-lens-save-form"' not in viewer.get("/customerview/list/").get_data(as_text=True)


def test_employee_cannot_save_for_the_pass_card_list(app, employee):
    response = save(employee, "Probe-Karten", "_oc_PassCardView=units_total&_od_PassCardView=asc",
                    view="PassCardView")
    assert response.status_code == 200 and lens_rows(app, "Probe-Karten") == []


def test_unknown_role_is_refused(app, manager):
    response = save(manager, "Probe-Rolle", "_flt_0_city=Berlin", roles=[987654])
    assert response.status_code == 200 and "Unbekannte Rolle gewählt." in response.get_data(as_text=True)
    assert lens_rows(app, "Probe-Rolle") == []


def test_lens_admin_form_cleans_the_filter_and_shares_by_roles(app, client_for, data):
    from app.extensions import db
    from app.models import Lens

    eva = client_for("employee1")
    form = {"name": "Probe-Formular", "view_name": "BookingView", "roles": [str(role_id(app, "Viewer"))],
            "query_string": "foo=1&_flt_0_customer_name=Berg&_oc_BookingView=price&_od_BookingView=up"}
    response = eva.post("/lensview/add", data={**form, "csrf_token": session_csrf(eva)})
    assert response.status_code == 302
    [(pk, _owner_id, view, query, shared, roles)] = lens_rows(app, "Probe-Formular")
    assert (view, query, shared, roles) == ("BookingView", "_flt_0_customer_name=Berg&_oc_BookingView=price",
                                            True, ["Viewer"])
    with app.app_context():
        assert db.session.get(Lens, pk).owner.username == "employee1"
    # the same name again for the same list: refused, nothing stored
    eva.post("/lensview/add", data={**form, "csrf_token": session_csrf(eva)})
    assert any("schon eine Linse mit diesem Namen" in text for _c, text in pop_flashes(eva))
    assert len(lens_rows(app, "Probe-Formular")) == 1
    # the Viewer it is shared with sees it as a tab of the booking list
    viewer = client_for("Viewer")
    html = viewer.get("/bookingview/list/?_flt_1_start_at=2020-01-01%2000:00:00").get_data(as_text=True)
    assert "Probe-Formular" in tab_links(html)


# --- sharing and tabs -------------------------------------------------------------------------
def tab_links(html: str) -> dict[str, str]:
    """{label: href} of the lens tabs on a list page."""
    block = html.split('id="tb-lens-tabs"', 1)[1].split('id="tb-lens-save"', 1)[0] if 'id="tb-lens-tabs"' in html \
        else ""
    return {label.strip(): href.replace("&amp;", "&")
            for href, label in re.findall(r'<a href="([^"]+)" id="tb-lens-[^"]+"[^>]*>\s*([^<]+?)\s*</a>', block)}


def active_tab(html: str) -> str | None:
    match = re.search(r'<li role="presentation" class="active">\s*<a href="[^"]*"[^>]*>\s*([^<]+?)\s*</a>', html)
    return match.group(1) if match else None


def test_shared_with_manager_visible_to_manager_private_not(app, client_for, data):
    employee = client_for("employee1")
    assert save(employee, "Probe-Privat", "_flt_0_city=Berlin").status_code == 302
    assert save(employee, "Probe-Geteilt", "_flt_0_city=Potsdam", roles=[role_id(app, "Manager")]).status_code == 302
    [(_pk, _o, _v, _q, shared, roles)] = lens_rows(app, "Probe-Geteilt")
    assert shared and roles == ["Manager"]
    manager = client_for("Manager")
    tabs = tab_links(manager.get("/customerview/list/").get_data(as_text=True))
    assert tabs.get("Probe-Geteilt") == "/customerview/list/?_flt_0_city=Potsdam"
    assert "Probe-Privat" not in tabs
    lens_list = manager.get("/lensview/list/?psize_LensView=100").get_data(as_text=True)
    assert "Probe-Geteilt" in lens_list and "Probe-Privat" not in lens_list
    # the other employee: neither (shared with the Manager role only)
    other = tab_links(client_for("employee2").get("/customerview/list/").get_data(as_text=True))
    assert "Probe-Geteilt" not in other and "Probe-Privat" not in other
    # the owner's tabs hold no private lens of another user either
    assert "Probe-Privat" not in tab_links(client_for("Owner").get("/customerview/list/").get_data(as_text=True))
    # the Manager may not change the employee's lens
    [(pk, *_rest)] = lens_rows(app, "Probe-Geteilt")
    manager.post(f"/lensview/edit/{pk}", data={"name": "Probe-Gekapert", "view_name": "CustomerView",
                                               "query_string": "", "csrf_token": session_csrf(manager)})
    assert lens_rows(app, "Probe-Gekapert") == []


def test_tabs_render_with_links_and_the_active_one(owner, data):
    html = owner.get("/customerview/list/").get_data(as_text=True)
    tabs = tab_links(html)
    for label, query in (("Alle", None), ("Überfällig", "_flt_0_lens=overdue"), ("Dubletten", "_flt_0_lens=duplicates"),
                         ("Rückruf 📞", "_flt_0_lens=callback"), ("Mit Mehrfachkarte", "_flt_0_lens=with_card"),
                         ("Aktiv (zukünftiger Termin)", "_flt_0_active_category=alle"),
                         ("Neu (letzte 30 Tage)", "_flt_0_lens=new"),
                         ("Mehrfach nicht erschienen", "_flt_0_lens=no_show")):
        assert tabs[label] == ("/customerview/list/" if query is None else f"/customerview/list/?{query}")
    assert active_tab(html) == "Alle"
    html = owner.get("/customerview/list/?_flt_0_lens=overdue&_oc_CustomerView=city&_od_CustomerView=asc") \
        .get_data(as_text=True)
    assert active_tab(html) == "Überfällig"
    html = owner.get("/customerview/list/?_flt_0_city=Berlin").get_data(as_text=True)
    assert active_tab(html) is None  # a filter of no lens: neither "Alle" nor a lens

def test_card_lens_tab_only_for_users_who_see_pass_cards(employee, manager):
    assert "Mit Mehrfachkarte" not in tab_links(employee.get("/customerview/list/").get_data(as_text=True))
    assert "Mit Mehrfachkarte" in tab_links(manager.get("/customerview/list/").get_data(as_text=True))


def test_tabs_on_booking_and_pass_card_lists(app, manager, data):
    assert save(manager, "Probe-Termine", "_flt_0_customer_name=Berg&_flt_1_start_at=1970-01-01 00:00:00",
                view="BookingView").status_code == 302
    html = manager.get("/bookingview/list/?_flt_1_start_at=2020-01-01%2000:00:00").get_data(as_text=True)
    tabs = tab_links(html)
    assert "Alle" in tabs and tabs["Probe-Termine"].startswith("/bookingview/list/?_flt_0_customer_name=Berg")
    assert active_tab(html) == "Alle"  # the date window alone is not a filter of its own
    html = manager.get(tabs["Probe-Termine"]).get_data(as_text=True)
    assert active_tab(html) == "Probe-Termine"
    assert 'id="tb-window"' in html and 'id="tb-export-csv"' in html  # the booking list keeps its extras
    assert save(manager, "Probe-Karten-M", "_oc_PassCardView=units_total&_od_PassCardView=asc",
                view="PassCardView").status_code == 302
    html = manager.get("/passcardview/list/").get_data(as_text=True)
    assert tab_links(html)["Probe-Karten-M"] == "/passcardview/list/?_oc_PassCardView=units_total&_od_PassCardView=asc"
    assert "Überfällig" not in tab_links(html)  # customer lenses stay on the customer list


def test_customer_list_keeps_metrics_and_export(owner):
    html = owner.get("/customerview/list/").get_data(as_text=True)
    assert 'id="tb-active-metrics"' in html and 'id="tb-export-csv"' in html
    assert html.index('id="tb-lens-tabs"') < html.index('id="tb-active-metrics"')
    assert html.count('id="tb-lens-tabs"') == 1


# --- row rules ----------------------------------------------------------------------------------
def test_employee_lens_shared_with_employees_shows_each_only_their_rows(app, client_for, world, data):
    eva, zoe = client_for("employee1"), client_for("employee2")
    employee_role = role_id(app, "Employee")
    booking_query = f"_flt_0_service={world.service}&_flt_1_start_at=1970-01-01 00:00:00"
    assert save(eva, "Probe-Evas-Termine", booking_query, view="BookingView", roles=[employee_role]) \
        .status_code == 302
    assert save(eva, "Probe-Evas-Kunden", "_oc_CustomerView=city&_od_CustomerView=asc",
                roles=[employee_role]).status_code == 302
    booking_tab = tab_links(zoe.get(f"/bookingview/list/?{booking_query}").get_data(as_text=True))["Probe-Evas-Termine"]
    html = zoe.get(booking_tab).get_data(as_text=True)
    shown = {int(pk) for pk in re.findall(r'href="/bookingview/show/(\d+)', html)}
    assert world.booking2 in shown and world.booking1 not in shown
    customer_tab = tab_links(zoe.get("/customerview/list/").get_data(as_text=True))["Probe-Evas-Kunden"]
    shown = listed_customers(zoe, customer_tab.split("?", 1)[1])
    assert world.customer2 in shown and world.customer1 not in shown
    assert data["overdue"] not in shown and data["colleague"] in shown
    # Zoe sees the shared lens but cannot change it
    [(pk, *_rest)] = lens_rows(app, "Probe-Evas-Kunden")
    zoe.post(f"/lensview/delete/{pk}", data={"csrf_token": session_csrf(zoe)})
    assert any("Nur die Besitzer:in" in text for _c, text in pop_flashes(zoe))
    assert lens_rows(app, "Probe-Evas-Kunden") != []


# --- the recall action ------------------------------------------------------------------------
def recall_rows(app, customer_ids) -> list[tuple[int, str, str]]:
    from app.extensions import db
    from app.models import NotificationLog

    with app.app_context():
        return [(row.customer_id, row.kind, row.recipient) for row in db.session.scalars(
            sa.select(NotificationLog).where(NotificationLog.customer_id.in_(customer_ids)))]


def test_recall_action_only_on_the_overdue_lens(owner, data):
    assert "send_recall" in owner.get(f"/customerview/list/?{lens_url('overdue')}").get_data(as_text=True)
    assert "send_recall" not in owner.get("/customerview/list/").get_data(as_text=True)
    assert "send_recall" not in owner.get(f"/customerview/list/?{lens_url('no_show')}").get_data(as_text=True)


def test_recall_queues_e_mails_and_refuses_without_consent(app, owner, data, rq_queues):
    ids = [data["overdue"], data["colleague"], data["recent"], data["two"]]
    owner.get("/customerview/list/")  # whatever came before: the action returns to the overdue list
    response = owner.post("/customerview/action_post", data={
        "action": "send_recall", "rowid": [str(pk) for pk in ids], "csrf_token": session_csrf(owner)})
    assert response.status_code == 302
    assert response.location.endswith(f"/customerview/list/?{lens_url('overdue')}")
    flashes = [text for _c, text in pop_flashes(owner)]
    assert any("Erinnerung an 1 Kund:in(nen) in den Versand gegeben." in text for text in flashes)
    assert any("keine Einwilligung für E-Mails" in text and "Probe colleague" in text for text in flashes)
    assert any("nicht überfällig" in text and "Probe recent" in text and "Probe two" in text for text in flashes)
    assert recall_rows(app, ids) == [(data["overdue"], "recall", "overdue@example.org")]
    jobs = rq_queues["notifications"].jobs
    assert len(jobs) == 1 and "Linse00" in jobs[0].args[2] and jobs[0].args[1].startswith("Zeit für")


def test_recall_by_employee_drops_customers_they_may_not_see(app, employee, data, rq_queues):
    before = recall_rows(app, [data["colleague"]])
    response = employee.post("/customerview/action_post", data={
        "action": "send_recall", "rowid": [str(data["colleague"])], "csrf_token": session_csrf(employee)})
    assert response.status_code == 302
    assert any("Keine gültigen Einträge ausgewählt." in text for _c, text in pop_flashes(employee))
    assert recall_rows(app, [data["colleague"]]) == before
    assert rq_queues["notifications"].count == 0


def test_viewer_may_not_send_recalls(viewer, data):
    response = viewer.post("/customerview/action_post", data={
        "action": "send_recall", "rowid": [str(data["overdue"])], "csrf_token": session_csrf(viewer)})
    assert response.status_code == 403


def test_query_matches_ignores_the_implicit_window():
    from app.services.lenses import query_matches

    window = re.compile(r"^_flt_\d_start_at$")
    current = parse_qsl("_flt_0_service=1&_flt_1_start_at=2020-01-01&_oc_BookingView=price&_od_BookingView=asc")
    assert query_matches("_flt_0_service=1", current, window)
    assert not query_matches("_flt_0_service=1&_flt_1_start_at=1970-01-01", current, window)
    assert not query_matches("_flt_0_service=2", current, window)
    assert query_matches("_flt_0_service=1&_od_BookingView=asc", current, window)
    assert not query_matches("_flt_0_service=1&_od_BookingView=desc", current, window)
