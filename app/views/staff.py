"""Filialen, Mitarbeiter:innen, Arbeitszeiten, Abwesenheiten."""
from __future__ import annotations

from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, TimeField
from wtforms.validators import DataRequired, Email, Optional, Regexp

from app.formatting import fmt_datetime
from app.models import Absence, Employee, Location, WorkingHours
from app.models.staff import ABSENCE_KINDS, STAFF_CHANNELS, WEEKDAYS
from app.services.phone import phone_link
from app.views.absence_impact import AbsenceImpactMixin
from app.views.base import SecureModelView
from app.views.interface import EagerInterface
from app.views.validators import HEX_COLOR, HEX_COLOR_MESSAGE, UniqueValue, blank_to_none, checkbox, stripped


class LocationView(SecureModelView):
    datamodel = SQLAInterface(Location)
    list_title = _l("Filialen")
    show_title = add_title = edit_title = _l("Filiale")
    list_columns = ["name", "street", "postal_code", "city", "phone", "active"]
    add_columns = edit_columns = ["name", "street", "postal_code", "city", "phone", "email", "active"]
    base_order = ("name", "asc")
    label_columns = {
        "name": _l("Name"), "street": _l("Straße"), "postal_code": _l("PLZ"), "city": _l("Ort"), "phone": _l("Telefon"),
        "email": _l("E-Mail"), "active": _l("Aktiv"),
    }
    validators_columns = {
        "name": [UniqueValue(Location.name, _l("Eine Filiale mit diesem Namen gibt es schon."))],
        "email": [Optional(), Email(message=_l("Bitte eine gültige E-Mail-Adresse angeben."))],
    }
    add_form_extra_fields = edit_form_extra_fields = {"active": checkbox(_l("Aktiv"), default=True)}
    formatters_columns = {"phone": phone_link}


class WorkingHoursView(SecureModelView):
    datamodel = EagerInterface(WorkingHours, eager=("employee", "location"))
    list_title = _l("Arbeitszeiten")
    show_title = add_title = edit_title = _l("Arbeitszeit")
    list_columns = ["employee", "weekday", "start_time", "end_time", "location"]
    order_columns = ["weekday", "start_time"]
    add_columns = edit_columns = ["employee", "weekday", "start_time", "end_time", "location"]
    base_order = ("weekday", "asc")
    label_columns = {
        "employee": _l("Mitarbeiter:in"), "weekday": _l("Wochentag"), "start_time": _l("Von"), "end_time": _l("Bis"),
        "location": _l("Filiale"),
    }
    formatters_columns = {
        "weekday": lambda day: WEEKDAYS[day],
        "start_time": lambda t: t.strftime("%H:%M"),
        "end_time": lambda t: t.strftime("%H:%M"),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "weekday": SelectField(
            _l("Wochentag"), choices=list(enumerate(WEEKDAYS)), coerce=int, widget=Select2Widget()
        ),
        "start_time": TimeField(_l("Von"), validators=[DataRequired(message=_l("Bitte eine Uhrzeit angeben."))],
                                widget=BS3TextFieldWidget()),
        "end_time": TimeField(_l("Bis"), validators=[DataRequired(message=_l("Bitte eine Uhrzeit angeben."))],
                              widget=BS3TextFieldWidget()),
    }

    def check_write(self, item: WorkingHours) -> None:
        if item.start_time and item.end_time and item.end_time <= item.start_time:
            raise ValueError(_("Das Ende der Arbeitszeit muss nach dem Beginn liegen."))


class AbsenceView(AbsenceImpactMixin, SecureModelView):
    datamodel = EagerInterface(Absence, eager=("employee",))
    list_title = _l("Abwesenheiten")
    show_title = add_title = edit_title = _l("Abwesenheit")
    list_columns = ["employee", "kind", "start_at", "end_at", "note"]
    order_columns = ["start_at", "end_at"]
    search_columns = ["employee", "kind", "start_at"]
    add_columns = edit_columns = ["employee", "kind", "start_at", "end_at", "note"]
    base_order = ("start_at", "desc")
    label_columns = {
        "employee": _l("Mitarbeiter:in"), "kind": _l("Art"), "start_at": _l("Von"), "end_at": _l("Bis"),
        "note": _l("Notiz"),
    }
    formatters_columns = {
        "kind": lambda kind: ABSENCE_KINDS.get(kind, kind),
        "start_at": fmt_datetime,
        "end_at": fmt_datetime,
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "kind": SelectField(_l("Art"), choices=list(ABSENCE_KINDS.items()), widget=Select2Widget()),
    }

    def check_write(self, item: Absence) -> None:
        if item.start_at and item.end_at and item.end_at <= item.start_at:
            raise ValueError(_("Das Ende der Abwesenheit muss nach dem Beginn liegen."))


class EmployeeView(SecureModelView):
    datamodel = EagerInterface(Employee, eager=("location", "user"))
    list_title = _l("Mitarbeiter:innen")
    show_title = add_title = edit_title = _l("Mitarbeiter:in")
    list_columns = ["first_name", "last_name", "location", "email", "phone", "active"]
    search_columns = ["first_name", "last_name", "location", "active"]
    add_columns = edit_columns = [
        "first_name", "last_name", "email", "phone", "telegram_chat_id", "notify_channel", "color", "location", "user",
        "active",
    ]
    base_order = ("last_name", "asc")
    label_columns = {
        "first_name": _l("Vorname"), "last_name": _l("Nachname"), "email": _l("E-Mail"), "phone": _l("Telefon"),
        "telegram_chat_id": _l("Telegram-Chat-ID"), "color": _l("Farbe"), "location": _l("Filiale"),
        "notify_channel": _l("Benachrichtigung über Termine"),
        "active": _l("Aktiv"),
        # The same word in English. Not translated: FAB's German catalogue turns "Login" into "Anmelden".
        "user": "Login",
    }
    validators_columns = {
        "email": [
            stripped,
            blank_to_none,
            Optional(),
            Email(message=_l("Bitte eine gültige E-Mail-Adresse angeben.")),
            UniqueValue(Employee.email, _l("Diese E-Mail-Adresse hat schon eine andere Mitarbeiter:in."), lower=True),
        ],
        "color": [blank_to_none, Optional(), Regexp(HEX_COLOR, message=HEX_COLOR_MESSAGE)],
        "user": [UniqueValue(Employee.user_id, _l("Dieser Login gehört schon zu einer anderen Mitarbeiter:in."))],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "active": checkbox(_l("Aktiv"), default=True),
        "notify_channel": SelectField(
            _l("Benachrichtigung über Termine"), choices=list(STAFF_CHANNELS.items()), default="none",
            widget=Select2Widget(),
            description=_l("Neue Termine, Absagen und Änderungen am Plan für morgen, per SMS (Telefon) oder "
                           "Telegram (Chat-ID)."),
        ),
    }
    formatters_columns = {"phone": phone_link, "notify_channel": lambda value: STAFF_CHANNELS.get(value, value)}
    related_views = [WorkingHoursView, AbsenceView]
    show_template = "appbuilder/general/model/show_cascade.html"
