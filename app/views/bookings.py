"""Termine und Terminstatus."""
from __future__ import annotations

from flask import flash, redirect, request
from flask_appbuilder import expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import DateTimePickerWidget, Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect as sa_inspect
from wtforms import DateTimeField, SelectField
from wtforms.validators import Optional, Regexp

from app.extensions import db
from app.formatting import fmt_datetime, fmt_money, status_badge
from app.models import Booking, BookingStatus, Customer, Employee
from app.models.bookings import BOOKING_SOURCES, STATUS_KINDS
from app.security import employee_scope
from app.services.bookings import BookingOverlap, flush_booking
from app.services.status import (
    check_cancel_reason,
    notify_new_booking,
    status_to_store,
    stored_status,
    write_edit,
)
from app.services.working_time import check_booking_working_time, may_override_hours
from app.views.base import SecureApi, SecureModelView, ajax_field
from app.views.bonus import BookingBonusMixin
from app.views.booking_history import BookingHistoryInterface, BookingHistoryMixin
from app.views.booking_slots import slots_response
from app.views.export import ExportMixin
from app.views.status import StatusChangeMixin, local_path
from app.views.validators import HEX_COLOR, HEX_COLOR_MESSAGE, UniqueValue, checkbox, not_negative

BOOKING_LABELS = {
    "start_at": _l("Beginn"),
    "end_at": _l("Ende"),
    "customer": _l("Kund:in"),
    "service": _l("Dienstleistung"),
    "employee": _l("Mitarbeiter:in"),
    "resource": _l("Raum/Ressource"),
    "location": _l("Filiale"),
    "status": _l("Status"),
    "price": _l("Preis"),
    "comment": _l("Kommentar"),
    "cancel_reason": _l("Absagegrund"),
    "source": _l("Quelle"),
    "reminder": _l("Erinnerung"),
    "created_at": _l("Angelegt am"),
    "hours_override": _l("Außerhalb der Arbeitszeit/Abwesenheit trotzdem buchen"),
}


def source_label(code: str) -> str:
    return str(BOOKING_SOURCES.get(code, code))


def check_booking(item: Booking) -> None:
    """Rules every booking write must pass, whichever screen or API it comes from."""
    if item.start_at and item.end_at and item.end_at <= item.start_at:
        raise ValueError(_("Das Ende muss nach dem Beginn liegen."))
    scope = employee_scope()
    if scope is not None and _assigned_employee_id(item) != scope:
        raise ValueError(_("Sie können nur eigene Termine anlegen oder ändern."))
    check_cancel_reason(status_to_store(db.session, item), item.cancel_reason)
    check_booking_working_time(db.session, item)


def update_booking(item: Booking, checked_update) -> None:
    """Write an edited booking (form or API) after the view's checks; a status changed
    in the edit goes through `change_status` (reason rule, customer notification)."""
    previous = stored_status(db.session, item)
    checked_update(item)
    write_edit(db.session, item, previous)


def _assigned_employee_id(item: Booking) -> int | None:
    """The employee the booking will have once stored. A form or the API assigns
    the relation; until the flush the foreign key still holds the old employee."""
    added = sa_inspect(item).attrs.employee.history.added
    if added:
        return added[0].id if added[0] is not None else None
    return item.employee_id


class BookingView(BookingBonusMixin, BookingHistoryMixin, ExportMixin, StatusChangeMixin, SecureModelView):
    datamodel = BookingHistoryInterface(
        Booking, eager=("customer", "service", "employee", "status", "location")
    )
    list_title = _l("Termine")
    show_title = _l("Termin")
    show_template = "terminbuch/booking_show.html"  # status form and status history
    add_title = _l("Termin anlegen")
    edit_title = _l("Termin bearbeiten")
    list_columns = ["start_at", "customer", "service", "employee", "status", "location", "price"]
    order_columns = ["start_at", "customer", "price"]
    base_order = ("start_at", "desc")
    search_columns = [
        "customer_name", "start_at", "service", "employee", "status", "location", "source", "comment",
    ]
    add_columns = [
        "customer", "service", "employee", "resource", "start_at", "end_at", "price", "source",
        "reminder", "comment", "hours_override",
    ]
    edit_columns = add_columns[:6] + [
        "status", "price", "source", "reminder", "comment", "cancel_reason", "hours_override",
    ]
    show_fieldsets = [
        (_l("Termin"), {"fields": ["start_at", "end_at", "customer", "service", "employee", "resource", "location"]}),
        (_l("Status"), {"fields": ["status", "cancel_reason", "price", "source", "reminder", "comment", "created_at",
                                   "hours_override"]}),
    ]
    label_columns = BOOKING_LABELS
    export_columns = [
        "start_at", "end_at", "customer", "service", "employee", "status", "location", "price", "source", "comment",
    ]
    export_name = "termine"
    export_formatters = {"source": source_label}
    formatters_columns = {
        "start_at": fmt_datetime,
        "end_at": fmt_datetime,
        "created_at": fmt_datetime,
        "price": fmt_money,
        "status": status_badge,
        "source": source_label,
    }
    edit_form_extra_fields = {
        "customer": ajax_field(_l("Kund:in"), Customer, "customer", "/customerview/lookup"),
        "end_at": DateTimeField(
            _l("Ende"), format="%Y-%m-%d %H:%M:%S", validators=[Optional()], widget=DateTimePickerWidget(),
            description=_l("Leer lassen: das Ende ergibt sich aus der Dauer der Dienstleistung."),
        ),
        "source": SelectField(
            _l("Quelle"), choices=list(BOOKING_SOURCES.items()), default="backoffice", widget=Select2Widget()
        ),
        "reminder": checkbox(_l("Erinnerung"), default=True),
        "hours_override": checkbox(_l("Außerhalb der Arbeitszeit/Abwesenheit trotzdem buchen")),
    }
    # A new booking's reminder: by default from the service and the customer's consent.
    add_form_extra_fields = edit_form_extra_fields | {
        "reminder": SelectField(_l("Erinnerung"), choices=[
            ("auto", _l("Automatisch (nach Dienstleistung und Einwilligung)")), ("y", _l("Ja")), ("n", _l("Nein")),
        ], default="auto", widget=Select2Widget()),
    }
    validators_columns = {"price": [Optional(), not_negative(_l("Der Preis darf nicht negativ sein."))]}
    visible_relations = {"customer": Customer}

    def check_write(self, item: Booking) -> None:
        super().check_write(item)
        check_booking(item)

    def process_form(self, form, is_created):
        """The override checkbox is not shown to an Employee: unticked it leaves the
        stored flag alone; ticked (a forged POST) it reaches check_booking and is refused."""
        super().process_form(form, is_created)
        if "hours_override" in form and not form.hours_override.data and not may_override_hours():
            del form["hours_override"]

    def _get_add_widget(self, form, exclude_cols=None, widgets=None):
        """Without the override checkbox for an Employee; an Employee books for themself:
        the empty form has them chosen already."""
        scope = employee_scope()
        if request.method == "GET" and scope is not None and getattr(form, "employee", None) is not None \
                and form.employee.data is None:
            form.employee.data = db.session.get(Employee, scope)
        return super()._get_add_widget(form, exclude_cols=self._hidden_override(exclude_cols), widgets=widgets)

    def _get_edit_widget(self, form, exclude_cols=None, widgets=None):
        return super()._get_edit_widget(form, exclude_cols=self._hidden_override(exclude_cols), widgets=widgets)

    @staticmethod
    def _hidden_override(exclude_cols):
        return list(exclude_cols or []) + ([] if may_override_hours() else ["hours_override"])

    @expose("/slots")
    @has_access
    @permission_name("add")
    def slots(self):
        """JSON of the free starts for the booking form (app/views/booking_slots.py)."""
        return slots_response()

    def _add(self):
        """No autoflush while the form fills the item: the one flush is `pre_add`'s,
        where an overlap becomes a German message (FAB flashes an autoflush's raw
        error and leaves the session unusable)."""
        with db.session.no_autoflush:
            return super()._add()

    def _edit(self, pk):
        with db.session.no_autoflush:
            return super()._edit(pk)

    def pre_add(self, item: Booking) -> None:
        """After the checks, write the booking: an overlap refused by the database
        raises BookingOverlap (rolled back), which the form flashes; nothing is stored."""
        item.reminder = {"y": True, "n": False}.get(item.reminder)  # "auto": None, derived on flush
        super().pre_add(item)
        flush_booking(db.session, item)
        notify_new_booking(db.session, item)

    def pre_update(self, item: Booking) -> None:
        update_booking(item, super().pre_update)

    @action("set_reminder", _l("Erinnerung aktivieren"), _l("Für die gewählten Termine die Erinnerung aktivieren?"),
            "fa-bell")
    def set_reminder(self, items):
        """Bulk action; items arrive re-fetched with the row rules (SecureModelView.action_post)."""
        items = items if isinstance(items, list) else [items]
        cancelled = [item for item in items if item.cancelled]
        for item in items:
            if not item.cancelled:
                item.reminder = True
        db.session.commit()
        if len(cancelled) < len(items):
            flash(_("Erinnerung für %(count)d Termin(e) aktiviert.", count=len(items) - len(cancelled)), "success")
        if cancelled:
            flash(_("Stornierte Termine erhalten keine Erinnerung (%(count)d übersprungen).", count=len(cancelled)),
                  "warning")
        return redirect(local_path(request.form.get("next")) or self.get_redirect())


class BookingStatusView(SecureModelView):
    datamodel = SQLAInterface(BookingStatus)
    list_title = _l("Terminstatus")
    show_title = add_title = edit_title = _l("Terminstatus")
    list_columns = ["position", "name", "kind", "color", "description"]
    add_columns = edit_columns = ["name", "description", "position", "kind", "color"]
    base_order = ("position", "asc")
    label_columns = {
        "position": _l("Reihenfolge"), "name": _l("Name"), "kind": _l("Art"), "color": _l("Farbe"),
        "description": _l("Beschreibung"),
    }
    formatters_columns = {"kind": lambda kind: STATUS_KINDS.get(kind, kind)}
    add_form_extra_fields = edit_form_extra_fields = {
        "kind": SelectField(_l("Art"), choices=list(STATUS_KINDS.items()), widget=Select2Widget()),
    }
    validators_columns = {
        "name": [UniqueValue(BookingStatus.name, _l("Diesen Status gibt es schon."))],
        "color": [Regexp(HEX_COLOR, message=HEX_COLOR_MESSAGE)],
    }


class BookingApi(SecureApi):
    resource_name = "booking"
    datamodel = SQLAInterface(Booking)
    list_columns = [
        "id", "start_at", "end_at", "customer_id", "service_id", "employee_id", "status_id", "price",
    ]
    show_columns = list_columns + ["comment", "source", "reminder", "location_id", "resource_id"]
    add_columns = [
        "customer", "service", "employee", "start_at", "end_at", "comment", "source", "reminder", "hours_override",
    ]
    edit_columns = add_columns + ["status", "cancel_reason"]
    order_columns = ["start_at"]
    visible_relations = {"customer": Customer}

    def check_write(self, item: Booking) -> None:
        super().check_write(item)
        check_booking(item)

    def pre_add(self, item: Booking) -> None:
        super().pre_add(item)
        flush_booking(db.session, item)
        notify_new_booking(db.session, item)

    def pre_update(self, item: Booking) -> None:
        update_booking(item, super().pre_update)

    def _answer(self, write, *args):
        """An overlap answers 409 with the German message (FAB would answer 500); the one
        flush is pre_add's/pre_update's (see BookingView._add)."""
        try:
            return write(*args)
        except BookingOverlap as exc:
            return self.response(409, message=str(exc))
