"""Roles, the permission vocabulary and row-level rules — all in one place.

Roles (FAB roles; Owner is FAB's admin role and gets every permission):
  Viewer   looks at schedule and customers, changes nothing.
  Employee works on their own schedule: own bookings, the customers they serve.
  Manager  everything of the business except user/role admin, settings and erasure.
  Owner    everything.

Permissions are declared per view class name and synced into the database by
`flask init` (never on boot). Row rules say which rows of a model a user may
see; every list, show, edit, delete, action, API and related view applies them
through `row_filters()` / `visible_ids()`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, has_app_context, has_request_context, request
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.sqla.manager import SecurityManager
from sqlalchemy import false, or_, select, true
from sqlalchemy.sql import ColumnElement

from app.models import (
    Absence,
    Booking,
    BookingStatus,
    Customer,
    Document,
    Employee,
    ExportFile,
    Lens,
    Location,
    NotificationLog,
    Pet,
    Resource,
    Service,
    WorkingHours,
)

OWNER, MANAGER, EMPLOYEE, VIEWER = "Owner", "Manager", "Employee", "Viewer"
ROLES = (OWNER, MANAGER, EMPLOYEE, VIEWER)
SYSTEM_USERNAME = "system"

# --- permission vocabulary ---------------------------------------------------
READ = frozenset({"can_list", "can_show", "can_get", "can_info", "can_lookup"})
WRITE = frozenset({"can_add", "can_edit", "can_post", "can_put"})
DELETE = frozenset({"can_delete"})
ALL = READ | WRITE | DELETE

# Views on the data of the business (not FAB's security views).
SCHEDULE_VIEWS = (
    "BookingView", "BookingApi", "CustomerView", "CustomerApi", "PetView", "PetApi",
)
CATALOG_VIEWS = (
    "ServiceView", "ServiceApi", "ResourceView", "LocationView", "BookingStatusView",
    "EmployeeView", "WorkingHoursView", "AbsenceView",
)
CARD_VIEWS = (
    "PassCardTypeView", "PassCardView", "PassRedemptionView", "BonusProgramView",
    "BonusTransactionView", "InvoiceView", "InvoiceLineView", "InvoiceApi", "InvoiceLineApi",
)
OWNER_ONLY_WRITE = ("BookingStatusView", "SettingView")

# Every role may see its own profile and change its own password.
SELF_SERVICE = {
    "UserDBModelView": {"can_userinfo", "resetmypassword", "userinfoedit"},
    "ResetMyPasswordView": {"can_this_form_get", "can_this_form_post"},
    "UserInfoEditView": {"can_this_form_get", "can_this_form_post"},
    "MenuApi": {"can_get"},
    "HomeView": {"can_index"},
}


def _grant(views: tuple[str, ...], perms: frozenset[str]) -> dict[str, set[str]]:
    return {view: set(perms) for view in views}


def _merge(*parts: dict[str, set[str]]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for part in parts:
        for view, perms in part.items():
            merged.setdefault(view, set()).update(perms)
    return merged


VIEWER_PERMS = _merge(
    SELF_SERVICE,
    _grant(SCHEDULE_VIEWS + CATALOG_VIEWS, READ),
    _grant(("LensView",), READ),
    _grant(("OpenRequestsView",), READ),  # "Offene Anfragen": bookings by the row rules
    # Kalender (an Employee sees their own column only).
    {"CalendarView": {"can_index"}},
)
EMPLOYEE_PERMS = _merge(
    VIEWER_PERMS,
    _grant(("BookingView", "BookingApi", "CustomerView", "CustomerApi", "PetView", "PetApi"), WRITE),
    {"BookingView": {"set_reminder", "change_status"}},
    {"CustomerView": {"can_send_email"}},  # "E-Mail senden" from the customer file (row rules apply)
    {"CustomerView": {"send_recall"}},  # "Erinnerung senden" on the overdue lens (row rules apply)
    # Mein Kalender incl. the own feed link: for staff (a Viewer login has no employee record).
    {"MyCalendarView": {"can_index"}},
    # Erinnerungsübersicht: the numbers and the list without reminder, over the rows one may see.
    {"ReminderOverviewView": {"can_index", "can_without"}},
    # Karte: the customers' homes on a map (an Employee's own customers, row rules); not for the Viewer.
    {"CustomerMapView": {"can_index"}},
    _grant(("DocumentView", "NotificationLogView"), READ),
    # Customer file: upload and download for customers the employee may see (row rules via the customer).
    {"DocumentView": {"can_add", "can_download_file"}},
    _grant(("LensView",), ALL),
    # Exports take data out of the shop: not for the Viewer; an Employee's are limited by the row rules.
    _grant(("BookingView", "CustomerView"), frozenset({"can_export"})),
    {"ExportFileView": {"can_list", "can_show", "can_download"}},
)
MANAGER_PERMS = _merge(
    EMPLOYEE_PERMS,
    _grant(SCHEDULE_VIEWS + CATALOG_VIEWS + CARD_VIEWS + ("DocumentView",), ALL),
    _grant(("NotificationLogView", "SettingView"), READ),
    {"CalendarView": {"can_feeds"}},  # revoke an employee's calendar feed link
    # Dubletten: candidates, compare, merge, "Keine Dublette", the merges; undo: the Owner only.
    {"DuplicateView": {"can_list", "can_compare", "can_merge", "can_dismiss", "can_merges"}},
    {"CustomerImportView": {"can_index", "can_import"}},  # Kunden importieren (CSV/XLSX)
    {"CustomerView": {"geocode_addresses"}},  # "Adressen geokodieren" on the customer list (a job per 100)
    {"InvoiceView": {"can_issue", "can_cancel", "can_payment", "can_export"}},  # Ausstellen, Storno, Zahlung, Export
    # Bonusprämie einlösen / zurücknehmen on an invoice draft or a booking
    {"InvoiceView": {"can_reward"}, "BookingView": {"can_reward"}},
    {"CustomerMapView": {"can_geocode_missing"}},  # "Alle Adressen … geokodieren" on the map page
)
for _view in OWNER_ONLY_WRITE:
    MANAGER_PERMS[_view] = set(READ) & MANAGER_PERMS.get(_view, set(READ))
# Audit trail admin (revert a row, Gelöschte Einträge, restore, purge), Datenschutz
# (GdprView: Datenauskunft, Löschen auf Anfrage) and Aufträge (JobMonitorView: queues,
# workers, failed jobs with their tracebacks): the Owner only; no other role gets any
# permission of these views.
OWNER_ONLY_VIEWS = ("HistoryView", "GdprView", "JobMonitorView")
for _perms in (VIEWER_PERMS, EMPLOYEE_PERMS, MANAGER_PERMS):
    for _view in OWNER_ONLY_VIEWS:
        _perms.pop(_view, None)

# Owner gets everything through FAB's AUTH_ROLE_ADMIN.
ROLE_PERMISSIONS: dict[str, dict[str, set[str]]] = {
    VIEWER: VIEWER_PERMS,
    EMPLOYEE: EMPLOYEE_PERMS,
    MANAGER: MANAGER_PERMS,
}


# --- who is asking -----------------------------------------------------------
def current_user() -> Any | None:
    """The logged-in user, or the acting user a job/CLI put on `g.user`."""
    user = getattr(g, "user", None) if has_app_context() else None
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return None


def role_names(user: Any) -> set[str]:
    return {role.name for role in getattr(user, "roles", [])}


def employee_scope() -> int | None:
    """None when the current user sees every row; otherwise the id of the
    Employee row whose data they may see (0 when no Employee row is linked,
    which matches nothing). Anyone who is neither Owner, Manager, Viewer nor
    the system user is restricted — a missing role never widens access."""
    user = current_user()
    if user is None:
        return 0
    if user.username == SYSTEM_USERNAME or role_names(user) & {OWNER, MANAGER, VIEWER}:
        return None
    cached = getattr(g, "_employee_scope", None)
    if cached is not None and cached[0] == user.id:
        return cached[1]
    from app.extensions import db

    emp_id = db.session.scalar(select(Employee.id).where(Employee.user_id == user.id)) or 0
    g._employee_scope = (user.id, emp_id)
    return emp_id


def served_customer_ids(emp_id: int):
    """Ids of the customers with a booking with this employee (the customer rule adds
    those the employee created)."""
    return select(Booking.customer_id).where(Booking.employee_id == emp_id)


def _customer_rule(emp_id: int) -> ColumnElement[bool]:
    user = current_user()
    created = Customer.created_by_id == user.id if user is not None else false()
    return or_(Customer.id.in_(served_customer_ids(emp_id)), created)


def _customer_child_rule(column) -> Callable[[int], ColumnElement[bool]]:
    def rule(emp_id: int) -> ColumnElement[bool]:
        return column.in_(select(Customer.id).where(_customer_rule(emp_id)))

    return rule


# Model → predicate for a restricted (employee) scope.
ROW_RULES: dict[type, Callable[[int], ColumnElement[bool]]] = {
    Booking: lambda emp_id: Booking.employee_id == emp_id,
    Customer: _customer_rule,
    Pet: _customer_child_rule(Pet.customer_id),
    Document: _customer_child_rule(Document.customer_id),
    Employee: lambda emp_id: Employee.id == emp_id,
    WorkingHours: lambda emp_id: WorkingHours.employee_id == emp_id,
    Absence: lambda emp_id: Absence.employee_id == emp_id,
    NotificationLog: lambda emp_id: or_(
        NotificationLog.employee_id == emp_id,
        NotificationLog.booking_id.in_(select(Booking.id).where(Booking.employee_id == emp_id)),
    ),
}

# The catalog every user works with: all rows (the role table still decides
# whether they may see the view at all).
SHARED_MODELS = (Service, Resource, Location, BookingStatus)


def lens_visibility() -> ColumnElement[bool]:
    """A lens is visible to its owner, to the roles it is shared with, and built-ins to all."""
    user = current_user()
    if user is None:
        return false()
    if OWNER in role_names(user):
        return true()
    from app.models.settings import lens_role

    role_ids = [role.id for role in user.roles]
    shared = Lens.id.in_(select(lens_role.c.lens_id).where(lens_role.c.role_id.in_(role_ids)))
    return or_(Lens.owner_id == user.id, Lens.builtin.is_(True), (Lens.shared.is_(True) & shared))


def row_predicate(model: type) -> ColumnElement[bool] | None:
    """The WHERE clause the current user needs on `model`, or None for all rows."""
    if model is Lens:
        return lens_visibility()
    if model is ExportFile:  # a user's own exports only, whatever the role
        user = current_user()
        return ExportFile.user_id == user.id if user is not None else false()
    if model in SHARED_MODELS:
        return None
    emp_id = employee_scope()
    if emp_id is None:
        return None
    rule = ROW_RULES.get(model)
    return rule(emp_id) if rule is not None else false()


def restrict(query, model: type):
    """Apply the row rules to a Select/Query on `model`."""
    predicate = row_predicate(model)
    return query if predicate is None else query.filter(predicate)


class RowRuleFilter(BaseFilter):
    """FAB base filter that applies ROW_RULES for the view's model."""

    name = "Zeilenregel"

    def apply(self, query, value):
        return restrict(query, self.model)


def row_filters() -> list[list[Any]]:
    """`base_filters` for a ModelView/ModelRestApi: the row rules of its model."""
    return [["id", RowRuleFilter, lambda: None]]


class TerminbuchSecurityManager(SecurityManager):
    """FAB's security manager; roles are synced by `sync_roles` from `flask init`."""

    def _has_view_access(self, user: object, permission_name: str, view_name: str) -> bool:
        """The user's permissions are read once per request (one query per role) instead
        of one query per check — FAB's navbar alone checked ~25 menu entries per page."""
        if self.builtin_roles or not has_request_context():
            return super()._has_view_access(user, permission_name, view_name)
        current = request._get_current_object()
        cached = getattr(g, "_tb_permissions", None)
        if cached is None or cached[0] is not current or cached[1] != user.id:
            cached = (current, user.id, frozenset(self.get_user_permissions(user)))
            g._tb_permissions = cached
        return (permission_name, view_name) in cached[2]


def sync_roles(appbuilder) -> None:
    """Create/refresh every permission and give each role exactly its declared set,
    plus menu access to every menu entry whose view it may list."""
    sm = appbuilder.sm
    # The admin (Owner) and public roles must exist BEFORE FAB adds permissions:
    # FAB grants each new permission to the admin role as it creates it, and on a
    # missing admin role it aborts the view after its first permission (logged,
    # not raised) — a fresh database then had one permission per view and an
    # Owner without any.
    for name in (OWNER, sm.auth_role_public):
        if sm.find_role(name) is None:
            sm.add_role(name)
    appbuilder.add_permissions(update_perms=True)
    all_pvs = sm.session.scalars(select(sm.permissionview_model)).all()
    sm.find_role(OWNER).permissions = list(all_pvs)  # Owner: everything, always
    for role_name, declared in ROLE_PERMISSIONS.items():
        role = sm.find_role(role_name) or sm.add_role(role_name)
        wanted = declared_pairs(appbuilder, declared)
        role.permissions = [pv for pv in all_pvs if (pv.permission.name, pv.view_menu.name) in wanted]
    sm.session.commit()


def declared_pairs(appbuilder, declared: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(permission, view menu) pairs of a role, with `menu_access` derived from the menu."""
    wanted = {(perm, view) for view, perms in declared.items() for perm in perms}
    for item in appbuilder.menu.get_list():
        children = item.childs or [item]
        granted = [
            child.name for child in children
            if child.baseview is not None
            and declared.get(child.baseview.__class__.__name__, set()) & {"can_list", "can_index"}
        ]
        wanted.update(("menu_access", name) for name in granted)
        if granted and item.childs:
            wanted.add(("menu_access", item.name))
    return wanted
