"""The permission matrix, built from the app itself.

EXPECTED below is the specification (written independently of app/security.py):
for every registered view/API class and every permission it exposes, which
roles may use it. The tests fail when
- the app registers a view or a permission the table does not decide
  (a new view without a role decision fails CI), or the table names one the
  app no longer has;
- a route is guarded by no permission and is not declared public here;
- a role's permissions in the database differ from the table;
- a real HTTP request of a role (or an anonymous visitor) gets anything else
  than the table says: allowed → 200 (a refused GET delete: 302 back, nothing
  deleted), denied → 403, anonymous → 302 to the login page (REST: 401).
Plus: every menu link of a role answers 200 for that role; every role opens
its profile and changes its own password through FAB's forms.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from flask_appbuilder.api import BaseApi
from flask_appbuilder.const import PERMISSION_PREFIX

from app.services.documents import document_path
from tests.conftest import PASSWORD, ROLE_USERS, login
from tests.helpers_perm import (
    api_token,
    bearer,
    html,
    is_login_redirect,
    pop_flashes,
    session_csrf,
    visible_pks,
)

ROLES = ("Owner", "Manager", "Employee", "Viewer")
ANONYMOUS = "anonymous"
LETTERS = {"O": "Owner", "M": "Manager", "E": "Employee", "V": "Viewer"}

# Who may use each permission of each registered view class.
# O = Owner, M = Manager, E = Employee, V = Viewer. Anonymous visitors: nothing
# (only the PUBLIC_ENDPOINTS below answer them). Row rules (an Employee sees
# only their own bookings …) are tested in test_row_level.py.
CRUD = ("can_list", "can_show", "can_add", "can_edit", "can_delete")
EXPECTED: dict[str, dict[str, str]] = {
    # FAB's views without permissions: login, language switch, "back", the REST login.
    "HomeView": {},
    "UtilView": {},
    "LocaleView": {},
    "AuthDBView": {},
    "SecurityApi": {},
    # Self service: every role sees its profile, edits it, changes its own password.
    "UserInfoEditView": {"can_this_form_get": "OMEV", "can_this_form_post": "OMEV"},
    "ResetMyPasswordView": {"can_this_form_get": "OMEV", "can_this_form_post": "OMEV"},
    "MenuApi": {"can_get": "OMEV"},
    "UserDBModelView": {
        "can_userinfo": "OMEV", "resetmypassword": "OMEV", "userinfoedit": "OMEV",
        "can_list": "O", "can_show": "O", "can_add": "O", "can_edit": "O", "can_delete": "O",
        "can_download": "O", "resetpasswords": "O",
    },
    # User and role admin: the Owner only.
    "ResetPasswordView": {"can_this_form_get": "O", "can_this_form_post": "O"},
    "RoleModelView": {**dict.fromkeys(CRUD, "O"), "can_download": "O", "copyrole": "O"},
    "UserGroupModelView": {**dict.fromkeys(CRUD, "O"), "can_download": "O"},
    "UserStatsChartView": {"can_chart": "O"},
    "PermissionModelView": {"can_list": "O"},
    "ViewMenuModelView": {"can_list": "O"},
    "PermissionViewModelView": {"can_list": "O"},
    # FAB's user/role REST API (registered only with FAB_ADD_SECURITY_API): the Owner only.
    "PermissionApi": {"can_get": "O", "can_info": "O"},
    "RoleApi": {
        "can_get": "O", "can_info": "O", "can_post": "O", "can_put": "O", "can_delete": "O",
        "can_add_role_permissions": "O", "can_list_role_permissions": "O",
        "can_update_role_groups": "O", "can_update_role_users": "O",
    },
    "UserApi": {"can_get": "O", "can_info": "O", "can_post": "O", "can_put": "O", "can_delete": "O"},
    "GroupApi": {"can_get": "O", "can_info": "O", "can_post": "O", "can_put": "O", "can_delete": "O"},
    "ViewMenuApi": {"can_get": "O", "can_info": "O", "can_post": "O", "can_put": "O", "can_delete": "O"},
    "PermissionViewMenuApi": {
        "can_get": "O", "can_info": "O", "can_post": "O", "can_put": "O", "can_delete": "O",
    },
    # Kunden
    "CustomerView": {
        "can_list": "OMEV", "can_show": "OMEV", "can_lookup": "OMEV",
        "can_add": "OME", "can_edit": "OME", "can_delete": "OM",
        "can_export": "OME",  # exports take data out of the shop: not the Viewer
        "can_send_email": "OME",  # "E-Mail senden" from the customer file
        "send_recall": "OME",  # "Erinnerung senden" on the overdue lens (app/views/lenses.py)
        "geocode_addresses": "OM",  # "Adressen geokodieren" on the list (app/views/geocoding.py)
    },
    "CustomerApi": {"can_get": "OMEV", "can_info": "OMEV", "can_post": "OME", "can_put": "OME", "can_delete": "OM"},
    "PetView": {"can_list": "OMEV", "can_show": "OMEV", "can_add": "OME", "can_edit": "OME", "can_delete": "OM"},
    "PetApi": {"can_get": "OMEV", "can_info": "OMEV", "can_post": "OME", "can_put": "OME", "can_delete": "OM"},
    "DocumentView": {"can_list": "OME", "can_show": "OME", "can_add": "OME", "can_delete": "OM",
                     "can_download_file": "OME"},
    "NotificationLogView": {"can_list": "OME", "can_show": "OME"},
    "LensView": {"can_list": "OMEV", "can_show": "OMEV", "can_add": "OME", "can_edit": "OME", "can_delete": "OME"},
    # Karte: every customer's home on a map — Manager and Owner all, an Employee their own (test_map.py);
    # not the Viewer (a read-only login gets no map of personal addresses).
    "CustomerMapView": {"can_index": "OME", "can_geocode_missing": "OM"},
    # Termine
    "BookingView": {
        "can_list": "OMEV", "can_show": "OMEV", "can_add": "OME", "can_edit": "OME", "can_delete": "OM",
        "set_reminder": "OME", "change_status": "OME", "can_export": "OME",
        "can_reward": "OM",  # Bonusprämie on a booking: the bonus programme is Manager business
    },
    "OpenRequestsView": {"can_list": "OMEV"},
    "ReminderOverviewView": {"can_index": "OME", "can_without": "OME"},
    "BookingApi": {"can_get": "OMEV", "can_info": "OMEV", "can_post": "OME", "can_put": "OME", "can_delete": "OM"},
    "ServiceView": {"can_list": "OMEV", "can_show": "OMEV", "can_add": "OM", "can_edit": "OM", "can_delete": "OM"},
    "ServiceApi": {"can_get": "OMEV", "can_info": "OMEV", "can_post": "OM", "can_put": "OM", "can_delete": "OM"},
    # "Meine Exporte": every role that may export sees (and downloads) only its own files.
    "ExportFileView": {"can_list": "OME", "can_show": "OME", "can_download": "OME"},
    "ResourceView": {"can_list": "OMEV", "can_show": "OMEV", "can_add": "OM", "can_edit": "OM", "can_delete": "OM"},
    # Kalender: everyone sees the schedule (an Employee only their own column, test_calendar.py);
    # Mein Kalender with the own ICS link for whoever has an employee record; revoking others' links: OM.
    "CalendarView": {"can_index": "OMEV", "can_feeds": "OM"},
    "MyCalendarView": {"can_index": "OME"},
    # Karten & Bonus, Rechnungen: Manager and Owner
    "PassCardView": dict.fromkeys(CRUD, "OM"),
    "PassCardTypeView": dict.fromkeys(CRUD, "OM"),
    "PassRedemptionView": {"can_list": "OM", "can_show": "OM"},
    "BonusProgramView": dict.fromkeys(CRUD, "OM"),
    "BonusTransactionView": {"can_list": "OM", "can_show": "OM", "can_add": "OM"},
    "InvoiceView": {**dict.fromkeys(CRUD, "OM"), "can_issue": "OM", "can_cancel": "OM", "can_payment": "OM",
                    "can_export": "OM", "can_reward": "OM"},
    "InvoiceLineView": dict.fromkeys(CRUD, "OM"),
    # the invoice REST API: as the screens (issuing, Storno and payment only on the screens)
    "InvoiceApi": dict.fromkeys(("can_get", "can_info", "can_post", "can_put", "can_delete"), "OM"),
    "InvoiceLineApi": dict.fromkeys(("can_get", "can_info", "can_post", "can_put", "can_delete"), "OM"),
    # Team
    "EmployeeView": {"can_list": "OMEV", "can_show": "OMEV", "can_add": "OM", "can_edit": "OM", "can_delete": "OM"},
    "WorkingHoursView": {
        "can_list": "OMEV", "can_show": "OMEV", "can_add": "OM", "can_edit": "OM", "can_delete": "OM",
    },
    "AbsenceView": {"can_list": "OMEV", "can_show": "OMEV", "can_add": "OM", "can_edit": "OM", "can_delete": "OM"},
    "LocationView": {"can_list": "OMEV", "can_show": "OMEV", "can_add": "OM", "can_edit": "OM", "can_delete": "OM"},
    # Einstellungen: everyone reads the statuses, the Manager the settings; only the Owner changes them.
    "BookingStatusView": {"can_list": "OMEV", "can_show": "OMEV", "can_add": "O", "can_edit": "O", "can_delete": "O"},
    "SettingView": {"can_list": "OM", "can_show": "OM", "can_add": "O", "can_edit": "O", "can_delete": "O"},
    # Audit trail: Gelöschte Einträge, restore, revert to a version, purge old history — the Owner only.
    "HistoryView": {"can_list": "O", "can_restore": "O", "can_revert": "O", "can_purge": "O"},
    # Dubletten: Manager and Owner find, compare, merge and dismiss; only the Owner undoes a merge.
    "DuplicateView": {"can_list": "OM", "can_compare": "OM", "can_merge": "OM", "can_dismiss": "OM",
                      "can_merges": "OM", "can_undo": "O"},
    # Kunden importieren (CSV/XLSX): upload page, then mapping, preview, import, cancel.
    "CustomerImportView": {"can_index": "OM", "can_import": "OM"},
    # Datenschutz: Datenauskunft (JSON/XLSX) and Löschen auf Anfrage — the Owner only.
    "GdprView": {"can_export_data": "O", "can_erase": "O"},
    # Aufträge (job monitor): queues, workers, failed jobs with tracebacks; retry, delete — the Owner only.
    "JobMonitorView": {"can_index": "O", "can_retry": "O", "can_retry_all": "O", "can_delete": "O"},
}
# Registered only when FAB_ADD_SECURITY_API is on; decided above, may be absent.
OPTIONAL_VIEWS = {"PermissionApi", "RoleApi", "UserApi", "GroupApi", "ViewMenuApi", "PermissionViewMenuApi"}

# Routes guarded by no permission decorator, and why that is right.
PUBLIC_ENDPOINTS = {
    "static": "static files",
    "appbuilder.static": "FAB's static files",
    "AuthDBView.login": "the login form",
    "AuthDBView.logout": "logging out",
    "SecurityApi.login": "REST login (returns a token)",
    "SecurityApi.refresh": "REST token refresh (needs a refresh token)",
    "LocaleView.index": "language switch",
    "UtilView.back": "FAB's back link (redirect only)",
    "HomeView.index": "start page: redirects anonymous visitors to the login itself (tested below)",
    "CalendarView.ics": "an employee's read-only ICS feed, opened by its secret token alone (test_calendar.py)",
}
# Methods that check the permission of the requested @action themselves (probed per action).
ACTION_METHODS = {"action", "action_post"}
# Permissions whose allowed side cannot be requested harmlessly (FAB's download of a
# file in UPLOAD_FOLDER): their denied side is probed, the grant checked in the database.
UNPROBED_ALLOWED = {"can_download"}
MISSING_PK = 987654321
PK_ARG = re.compile(r"<(?:int:)?pk>")
ARG = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
ARG_VALUES = {"filename": "probe.txt", "role_id": str(MISSING_PK)}


def allowed_roles(view_name: str, permission: str) -> set[str]:
    """Roles the table lets use the permission. A route whose permission the view
    does not expose (e.g. /documentview/add without can_add) is closed to everyone."""
    return {LETTERS[letter] for letter in EXPECTED[view_name].get(permission, "")}


# --- fixtures ----------------------------------------------------------------
@pytest.fixture(scope="module")
def probe_rows(app, world):
    """One row of every model whose show/edit page a role may open, visible to
    that role (the world has bookings, customers, … but no cards or invoices)."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import (
        Absence,
        BonusProgram,
        BonusTransaction,
        Booking,
        Document,
        ExportFile,
        Invoice,
        InvoiceLine,
        Lens,
        NotificationLog,
        PassCard,
        PassCardType,
        PassRedemption,
        Pet,
        Resource,
    )

    with app.app_context(), acting_as():
        start = datetime(2031, 1, 6, 9, tzinfo=timezone.utc)
        booking = Booking(customer_id=world.customer1, service_id=world.service, employee_id=world.employee1,
                          start_at=start, comment="Probe der Rechtematrix")
        card_type = PassCardType(name="Probe-Karte 10er", units=10, price=Decimal("100.00"))
        card = PassCard(type=card_type, customer_id=world.customer1, units_total=10, units_used=1,
                        price=Decimal("100.00"))
        program = BonusProgram(name="Probe-Bonus", points_per_euro=Decimal("1"), threshold=100,
                               reward_name="Probe", reward_kind="fixed", reward_value=Decimal("5"))
        invoice = Invoice(customer_id=world.customer1, note="Probe")
        rows = [
            booking, card_type, card, program, invoice,
            Resource(name="Probe-Raum", location_id=world.location),
            Pet(customer_id=world.customer1, name="Probe-Hund", breed="Pudel"),
            PassRedemption(card=card, booking=booking, units=1),
            BonusTransaction(customer_id=world.customer1, program=program, kind="earn", points=10, reason="Probe"),
            InvoiceLine(invoice=invoice, description="Probe", unit_price=Decimal("10.00")),
            Document(customer_id=world.customer1, title="Probe", filename="probe.pdf", stored_name=uuid4().hex,
                     content_type="application/pdf", size_bytes=1),
            NotificationLog(kind="reminder", channel="email", recipient="anna@example.org",
                            customer_id=world.customer1, employee_id=world.employee1, booking=booking),
            Absence(employee_id=world.employee1, kind="vacation", start_at=start, end_at=start + timedelta(days=2)),
            Lens(name="Probe-Linse", view_name="CustomerView", query_string="", builtin=True),
            *(ExportFile(user_id=user_id, view_name="BookingView", format="csv", filename="probe.csv")
              for user_id in (world.user_owner, world.user_manager, world.user_employee1)),
        ]
        db.session.add_all(rows)
        db.session.commit()
        for row in rows:  # the download route serves the stored file: give the probe document one
            if isinstance(row, Document):
                document_path(row.stored_name).write_bytes(b"%PDF-1.4 probe")
        group = app.appbuilder.sm.add_group("probe-group", "Probe", "Probe")
        ids = [(type(row), row.id) for row in rows]
    yield
    with app.app_context(), acting_as():
        for model, pk in reversed(ids):
            row = db.session.get(model, pk)
            if row is not None:
                db.session.delete(row)
        db.session.commit()
        group = db.session.get(type(group), group.id)
        if group is not None:
            db.session.delete(group)
            db.session.commit()


@pytest.fixture(scope="module")
def clients(app, world, probe_rows):
    """One logged-in test client per role (through the login form) and an anonymous one."""
    made = {role: login(app.test_client(), ROLE_USERS[role]) for role in ROLES}
    made[ANONYMOUS] = app.test_client()
    return made


@pytest.fixture(scope="module")
def tokens(app, world):
    """A REST token per role; anonymous has none."""
    made: dict[str, str | None] = {role: api_token(app, ROLE_USERS[role]) for role in ROLES}
    made[ANONYMOUS] = None
    return made


# --- the app's own views, routes and permissions ------------------------------
def registered_views(app) -> dict[str, object]:
    return {type(view).__name__: view for view in app.appbuilder.baseviews}


@dataclass(frozen=True)
class Route:
    view_name: str
    permission: str
    method: str
    rule: str
    endpoint: str
    api: bool


def guarded_routes(app) -> tuple[list[Route], list[str]]:
    """Every (route, HTTP method) with the permission that guards it; and the
    endpoints that no permission guards."""
    by_endpoint = {view.endpoint: view for view in app.appbuilder.baseviews}
    routes, unguarded = [], []
    for rule in app.url_map.iter_rules():
        blueprint, _, method_name = rule.endpoint.rpartition(".")
        view = by_endpoint.get(blueprint)
        func = getattr(view, method_name, None) if view is not None else None
        name = getattr(func, "_permission_name", None)
        if name is None:
            if method_name not in ACTION_METHODS:
                unguarded.append(rule.endpoint)
            continue
        permission = PERMISSION_PREFIX + (view.method_permission_name.get(method_name) or name)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append(Route(type(view).__name__, permission, method, rule.rule, rule.endpoint,
                                isinstance(view, BaseApi)))
    return routes, unguarded


def probe_routes(app) -> list[Route]:
    """The routes to request: GET of every MVC page (a form page carries the write
    permission), POST only where there is no GET, every REST method; routes with
    arguments we cannot fill are left out when another route covers the permission."""
    routes, _ = guarded_routes(app)
    chosen = []
    for route in routes:
        if not route.api and route.method != "GET" and any(
            r.endpoint == route.endpoint and r.method == "GET" for r in routes
        ):
            continue
        if any(arg not in ARG_VALUES and arg != "pk" for arg in ARG.findall(route.rule)):
            continue
        chosen.append(route)
    return chosen


def test_every_view_and_permission_has_a_role_decision(app):
    views = registered_views(app)
    undecided = sorted(
        f"{name}.{perm}" for name, view in views.items()
        for perm in (view.base_permissions or []) if perm not in EXPECTED.get(name, {})
    )
    unknown_views = sorted(set(views) - set(EXPECTED))
    assert not unknown_views, f"views without a role decision in EXPECTED: {unknown_views}"
    assert not undecided, f"permissions without a role decision in EXPECTED: {undecided}"
    stale = sorted(
        f"{name}.{perm}" for name, perms in EXPECTED.items() if name in views
        for perm in perms if perm not in (views[name].base_permissions or [])
    )
    gone = sorted(set(EXPECTED) - set(views) - OPTIONAL_VIEWS)
    assert not stale and not gone, f"EXPECTED names what the app no longer has: {stale + gone}"


def test_the_table_gives_the_owner_everything():
    for name, perms in EXPECTED.items():
        for perm, letters in perms.items():
            assert "O" in letters, f"{name}.{perm}: the Owner may do everything"
            assert set(letters) <= set(LETTERS), f"{name}.{perm}: unknown role letter in {letters!r}"


def test_every_route_is_guarded_or_declared_public(app):
    _, unguarded = guarded_routes(app)
    undeclared = sorted(set(unguarded) - set(PUBLIC_ENDPOINTS))
    assert not undeclared, f"routes without a permission check: {undeclared}"


def test_every_permission_is_probed_over_http(app):
    probed = {(r.view_name, r.permission) for r in probe_routes(app)}
    probed |= {(type(view).__name__, name) for view in app.appbuilder.baseviews
               for name in (getattr(view, "actions", None) or {})}
    exposed = {(name, perm) for name, view in registered_views(app).items()
               for perm in (view.base_permissions or [])}
    assert exposed - probed == set()


def test_role_permissions_in_the_database_match_the_table(app, world):
    views = registered_views(app)
    sm = app.appbuilder.sm
    expected_by_role: dict[str, set[tuple[str, str]]] = {role: set() for role in ROLES}
    for name, view in views.items():
        for perm in view.base_permissions or []:
            for role in allowed_roles(name, perm):
                expected_by_role[role].add((perm, view.class_permission_name))
    with app.app_context():
        for role in ROLES:
            granted = {
                (pv.permission.name, pv.view_menu.name)
                for pv in sm.find_role(role).permissions if pv.permission.name != "menu_access"
            }
            extra, missing = granted - expected_by_role[role], expected_by_role[role] - granted
            if role == "Owner":
                extra = set()  # the Owner may also keep permissions of views no longer registered
            assert not extra and not missing, (
                f"{role}: granted beyond the table {sorted(extra)}, missing {sorted(missing)}")


# --- the matrix over HTTP -------------------------------------------------------
def expected_outcome(route_or_view: str, permission: str, role: str) -> str:
    if role == ANONYMOUS:
        return "anonymous"
    return "allowed" if role in allowed_roles(route_or_view, permission) else "denied"


def mvc_outcome(response, permission: str) -> str:
    if response.status_code == 200:
        return "allowed"
    if response.status_code == 403:
        return "denied"
    if is_login_redirect(response):
        return "anonymous"
    if response.status_code == 302 and permission == "can_delete":
        return "allowed"  # FAB refuses a GET delete with a redirect back (nothing deleted, see test_traps)
    if response.status_code == 302 and permission == "can_reward":
        return "allowed"  # "Prämie einlösen" answers an empty form back on the detail page with the reason

    if response.status_code == 302 and permission == "can_list" and "_flt_1_start_at=" in response.location:
        return "allowed"  # the booking list adds its default date window (app/views/booking_history.py)
    return f"unexpected {response.status_code}"


def api_outcome(response, method: str) -> str:
    allowed = {"GET": {200}, "POST": {400, 422}, "PUT": {404}, "DELETE": {404}}[method]
    if response.status_code in allowed:
        return "allowed"
    return {401: "anonymous", 403: "denied"}.get(response.status_code, f"unexpected {response.status_code}")


_VISIBLE: dict[tuple[str, str], list] = {}  # (view, username) → visible pks; the matrix changes no rows


def pk_for(app, views, route: Route, role: str):
    """A row the role may see when it may use the route, else the Owner's first row."""
    view = views[route.view_name]
    for username in (ROLE_USERS.get(role), ROLE_USERS["Owner"]):
        if username is None or (username != ROLE_USERS["Owner"] and role not in allowed_roles(
                route.view_name, route.permission)):
            continue
        key = (route.view_name, username)
        if key not in _VISIBLE:
            _VISIBLE[key] = visible_pks(app, view, username)
        pks = _VISIBLE[key]
        if pks:
            return pks[0]
        if username == ROLE_USERS.get(role):
            pytest.fail(f"probe_rows must give {role} a visible row of {route.view_name}")
    pytest.fail(f"no row of {route.view_name} at all")


def build_url(app, views, route: Route, role: str) -> str:
    url = route.rule
    if PK_ARG.search(url):
        missing = route.api and route.method in ("PUT", "DELETE")
        url = PK_ARG.sub(str(MISSING_PK if missing else pk_for(app, views, route, role)), url)
    return ARG.sub(lambda m: ARG_VALUES[m.group(1)], url)


def request_route(app, views, route: Route, role: str, clients, tokens) -> str:
    url = build_url(app, views, route, role)
    if route.api:
        client = app.test_client()  # no session cookie: the REST API takes tokens only
        response = client.open(url, method=route.method, headers=bearer(tokens[role]),
                               json={} if route.method in ("POST", "PUT") else None)
        return api_outcome(response, route.method)
    client = clients[role]
    if route.method == "GET":
        return mvc_outcome(client.get(url), route.permission)
    # POST-only form routes: an empty form with a valid CSRF token is re-rendered with errors.
    return mvc_outcome(client.post(url, data={"csrf_token": session_csrf(client)}), route.permission)


def request_action(app, view, action, role: str, clients) -> str:
    """POST an @action like the list's or show page's buttons do (CSRF token included)."""
    client = clients[role]
    base = view.route_base
    data = {"csrf_token": session_csrf(client)}
    if action.multiple:  # list action without selected rows: checks the permission, changes nothing
        response = client.post(f"{base}/action_post", data={**data, "action": action.name})
    else:
        pk = visible_pks(app, view, ROLE_USERS.get(role, "owner"))[0]
        response = client.post(f"{base}/action/{action.name}/{pk}", data=data)
    flashed = pop_flashes(client)
    if is_login_redirect(response):
        return "anonymous"
    if response.status_code == 403:
        return "denied"
    if response.status_code == 302:
        # FAB's own views answer a missing action permission with a redirect and a flash.
        if any(category == "danger" for category, _ in flashed):
            return "anonymous" if role == ANONYMOUS else "denied"
        return "allowed"
    return f"unexpected {response.status_code}"


@pytest.mark.parametrize("role", ROLES + (ANONYMOUS,))
def test_permission_matrix_over_http(app, clients, tokens, role):
    views = registered_views(app)
    wrong = []
    for route in probe_routes(app):
        expected = expected_outcome(route.view_name, route.permission, role)
        if expected == "allowed" and route.permission in UNPROBED_ALLOWED:
            continue
        try:
            got = request_route(app, views, route, role, clients, tokens)
        except Exception as exc:  # TESTING propagates a view's exception: report it with the rest
            got = f"error {type(exc).__name__}: {exc}"
        if got != expected:
            wrong.append(f"{route.method} {route.rule} ({route.view_name}.{route.permission}): "
                         f"expected {expected}, got {got}")
    for name, view in views.items():
        for action in (getattr(view, "actions", None) or {}).values():
            permission = view.get_action_permission_name(action.name)
            expected = expected_outcome(name, permission, role)
            got = request_action(app, view, action, role, clients)
            if got != expected:
                wrong.append(f"action {name}.{action.name}: expected {expected}, got {got}")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def test_anonymous_start_page_goes_to_login(clients):
    assert is_login_redirect(clients[ANONYMOUS].get("/"))


def test_manager_has_no_user_or_role_admin(clients):
    manager = clients["Manager"]
    for url in ("/users/list/", "/roles/list/", "/users/add", "/roles/add", "/permissions/list/",
                "/resetpassword/form"):
        assert manager.get(url).status_code == 403, url


def test_rest_api_takes_no_session_cookie(clients):
    """The REST API is CSRF-exempt, so it must not accept the browser session;
    FAB's menu API (GET only) does."""
    owner = clients["Owner"]
    for url in ("/api/v1/booking/", "/api/v1/customer/", "/api/v1/pet/", "/api/v1/service/", "/api/v1/invoice/",
                "/api/v1/invoice_line/"):
        assert owner.get(url).status_code == 401, url
    assert owner.get("/api/v1/menu/").status_code == 200


# --- menus -------------------------------------------------------------------------
NAVBAR = re.compile(r"<header.*?</header>", re.S)
HREF = re.compile(r'href="(/[^"#]*)"')
NOT_PAGES = ("/static/", "/lang/", "/logout/")


def menu_urls(client) -> set[str]:
    response = client.get("/api/v1/menu/")
    assert response.status_code == 200
    urls = set()
    for item in response.json["result"]:
        for child in item.get("childs") or [item]:
            if isinstance(child, dict) and child.get("url"):  # "-" is a separator
                urls.add(child["url"])
    return urls


def navbar_urls(client) -> set[str]:
    page = html(client.get("/"))
    navbar = NAVBAR.search(page)
    assert navbar, "no navbar on the start page"
    return {url for url in HREF.findall(navbar.group(0)) if not url.startswith(NOT_PAGES) and url != "/"}


@pytest.mark.parametrize("role", ROLES)
def test_every_menu_link_answers_200(clients, role):
    client = clients[role]
    urls = menu_urls(client) | navbar_urls(client)
    assert "/users/userinfo/" in urls, "the profile link is missing from the navbar"
    broken = {}
    for url in sorted(urls):
        try:
            broken[url] = client.get(url, follow_redirects=True).status_code  # the booking list adds a window
        except Exception as exc:  # TESTING propagates a view's exception
            broken[url] = f"{type(exc).__name__}: {exc}"
    broken = {url: status for url, status in broken.items() if status != 200}
    assert not broken, (
        f"{role}: menu links not answering 200: {broken} (FAB shows a menu entry by `menu_access` on its "
        "name: an entry named like its category is shown to everyone who sees the category)"
    )


def test_menu_shows_each_role_what_the_table_grants(clients, app):
    """A list is in a role's menu exactly when the table lets the role list it."""
    entries = [(type(item.baseview).__name__, f"{item.baseview.route_base}/list/")
               for item in _menu_items(app) if item.baseview is not None]
    assert entries
    wrong = []
    for role in ROLES:
        shown = menu_urls(clients[role])
        for name, url in entries:
            if (url in shown) != (role in allowed_roles(name, "can_list")):
                wrong.append(f"{role}: {name} {'shown' if url in shown else 'missing'}")
    assert not wrong, wrong


def _menu_items(app):
    for item in app.appbuilder.menu.get_list():
        yield from (item.childs or [item])


# --- self service: profile and own password -------------------------------------------
@pytest.fixture(scope="module")
def self_service_users(app, world):
    """One extra user per role, so changing passwords leaves the world's logins alone."""
    sm = app.appbuilder.sm
    made = {}
    with app.app_context():
        for role in ROLES:
            username = f"selfservice_{role.lower()}"
            user = sm.find_user(username=username) or sm.add_user(
                username, "Selbst", role, f"{username}@example.org", sm.find_role(role), password=PASSWORD,
            )
            made[role] = (username, user.id)
    return made


FORM_ACTION = re.compile(r'action="(/users/action/resetmypassword/\d+)"')


@pytest.mark.parametrize("role", ROLES)
def test_every_role_opens_its_profile_and_changes_its_password(app, self_service_users, role):
    username, user_id = self_service_users[role]
    client = login(app.test_client(), username)
    profile = client.get("/users/userinfo/")
    assert profile.status_code == 200
    assert username in html(profile)
    assert client.get("/userinfoeditview/form").status_code == 200

    # the profile's "reset my password" button (a CSRF-protected POST) leads to the form
    button = FORM_ACTION.search(html(profile))
    assert button and button.group(1).endswith(f"/{user_id}")
    response = client.post(button.group(1), data={"csrf_token": session_csrf(client)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/resetmypassword/form")
    assert client.get("/resetmypassword/form").status_code == 200

    new_password = f"Neu-{role}-Passwort-456"
    response = client.post("/resetmypassword/form", data={
        "password": new_password, "conf_password": new_password, "csrf_token": session_csrf(client),
    })
    assert response.status_code == 302

    assert is_login_redirect(app.test_client().get("/users/userinfo/"))
    fresh = login(app.test_client(), username, new_password)
    assert fresh.get("/users/userinfo/").status_code == 200
    old = app.test_client()
    token = session_csrf(old)
    old.post("/login/", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert is_login_redirect(old.get("/users/userinfo/")), "the old password still works"


def test_own_password_forms_cannot_change_another_user(app, world):
    """The own-password and own-profile forms act on the logged-in user only, whatever
    the URL says (FAB's admin form /resetpassword/form?pk= is 403, see the matrix)."""
    sm = app.appbuilder.sm
    with app.app_context():
        attacker = sm.add_user("selfservice_attacker", "Angreifer", "Test", "attacker@example.org",
                               sm.find_role("Viewer"), password=PASSWORD)
        victim = sm.add_user("selfservice_victim", "Opfer", "Test", "victim@example.org",
                             sm.find_role("Manager"), password=PASSWORD)
        attacker_id, victim_id = attacker.id, victim.id
    client = login(app.test_client(), "selfservice_attacker")
    response = client.post(f"/resetmypassword/form?pk={victim_id}", data={
        "password": "Gekapert-789", "conf_password": "Gekapert-789", "csrf_token": session_csrf(client),
    })
    assert response.status_code == 302
    response = client.post(f"/userinfoeditview/form?pk={victim_id}", data={
        "first_name": "Gekapert", "last_name": "Gekapert", "csrf_token": session_csrf(client),
    })
    assert response.status_code == 302
    assert client.get(f"/resetpassword/form?pk={victim_id}").status_code == 403

    victim_client = login(app.test_client(), "selfservice_victim")  # the old password still works
    assert victim_client.get("/users/userinfo/").status_code == 200
    with app.app_context():
        assert sm.get_user_by_id(victim_id).first_name == "Opfer"
        assert sm.get_user_by_id(attacker_id).first_name == "Gekapert"
    login(app.test_client(), "selfservice_attacker", "Gekapert-789")
