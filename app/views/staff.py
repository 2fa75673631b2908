"""Filialen, Mitarbeiter:innen, Arbeitszeiten, Abwesenheiten."""
from __future__ import annotations

from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import SelectField, TimeField
from wtforms.validators import DataRequired, Email, Optional, Regexp

from app.formatting import fmt_datetime
from app.models import Absence, Employee, Location, WorkingHours
from app.models.staff import ABSENCE_KINDS, WEEKDAYS
from app.views.base import SecureModelView
from app.views.interface import EagerInterface
from app.views.validators import HEX_COLOR, HEX_COLOR_MESSAGE, UniqueValue, blank_to_none, checkbox, stripped


class LocationView(SecureModelView):
    datamodel = SQLAInterface(Location)
    list_title = "Filialen"
    show_title = add_title = edit_title = "Filiale"
    list_columns = ["name", "street", "postal_code", "city", "phone", "active"]
    add_columns = edit_columns = ["name", "street", "postal_code", "city", "phone", "email", "active"]
    base_order = ("name", "asc")
    label_columns = {
        "name": "Name", "street": "Straße", "postal_code": "PLZ", "city": "Ort", "phone": "Telefon",
        "email": "E-Mail", "active": "Aktiv",
    }
    validators_columns = {
        "name": [UniqueValue(Location.name, "Eine Filiale mit diesem Namen gibt es schon.")],
        "email": [Optional(), Email(message="Bitte eine gültige E-Mail-Adresse angeben.")],
    }
    add_form_extra_fields = edit_form_extra_fields = {"active": checkbox("Aktiv", default=True)}


class WorkingHoursView(SecureModelView):
    datamodel = EagerInterface(WorkingHours, eager=("employee", "location"))
    list_title = "Arbeitszeiten"
    show_title = add_title = edit_title = "Arbeitszeit"
    list_columns = ["employee", "weekday", "start_time", "end_time", "location"]
    order_columns = ["weekday", "start_time"]
    add_columns = edit_columns = ["employee", "weekday", "start_time", "end_time", "location"]
    base_order = ("weekday", "asc")
    label_columns = {
        "employee": "Mitarbeiter:in", "weekday": "Wochentag", "start_time": "Von", "end_time": "Bis",
        "location": "Filiale",
    }
    formatters_columns = {
        "weekday": lambda day: WEEKDAYS[day],
        "start_time": lambda t: t.strftime("%H:%M"),
        "end_time": lambda t: t.strftime("%H:%M"),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "weekday": SelectField(
            "Wochentag", choices=list(enumerate(WEEKDAYS)), coerce=int, widget=Select2Widget()
        ),
        "start_time": TimeField("Von", validators=[DataRequired(message="Bitte eine Uhrzeit angeben.")],
                                widget=BS3TextFieldWidget()),
        "end_time": TimeField("Bis", validators=[DataRequired(message="Bitte eine Uhrzeit angeben.")],
                              widget=BS3TextFieldWidget()),
    }

    def check_write(self, item: WorkingHours) -> None:
        if item.start_time and item.end_time and item.end_time <= item.start_time:
            raise ValueError("Das Ende der Arbeitszeit muss nach dem Beginn liegen.")


class AbsenceView(SecureModelView):
    datamodel = EagerInterface(Absence, eager=("employee",))
    list_title = "Abwesenheiten"
    show_title = add_title = edit_title = "Abwesenheit"
    list_columns = ["employee", "kind", "start_at", "end_at", "note"]
    order_columns = ["start_at", "end_at"]
    search_columns = ["employee", "kind", "start_at"]
    add_columns = edit_columns = ["employee", "kind", "start_at", "end_at", "note"]
    base_order = ("start_at", "desc")
    label_columns = {
        "employee": "Mitarbeiter:in", "kind": "Art", "start_at": "Von", "end_at": "Bis", "note": "Notiz",
    }
    formatters_columns = {
        "kind": lambda kind: ABSENCE_KINDS.get(kind, kind),
        "start_at": fmt_datetime,
        "end_at": fmt_datetime,
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "kind": SelectField("Art", choices=list(ABSENCE_KINDS.items()), widget=Select2Widget()),
    }

    def check_write(self, item: Absence) -> None:
        if item.start_at and item.end_at and item.end_at <= item.start_at:
            raise ValueError("Das Ende der Abwesenheit muss nach dem Beginn liegen.")


class EmployeeView(SecureModelView):
    datamodel = EagerInterface(Employee, eager=("location", "user"))
    list_title = "Mitarbeiter:innen"
    show_title = add_title = edit_title = "Mitarbeiter:in"
    list_columns = ["first_name", "last_name", "location", "email", "phone", "active"]
    search_columns = ["first_name", "last_name", "location", "active"]
    add_columns = edit_columns = [
        "first_name", "last_name", "email", "phone", "telegram_chat_id", "color", "location", "user", "active",
    ]
    base_order = ("last_name", "asc")
    label_columns = {
        "first_name": "Vorname", "last_name": "Nachname", "email": "E-Mail", "phone": "Telefon",
        "telegram_chat_id": "Telegram-Chat-ID", "color": "Farbe", "location": "Filiale",
        "user": "Login", "active": "Aktiv",
    }
    validators_columns = {
        "email": [
            stripped,
            blank_to_none,
            Optional(),
            Email(message="Bitte eine gültige E-Mail-Adresse angeben."),
            UniqueValue(Employee.email, "Diese E-Mail-Adresse hat schon eine andere Mitarbeiter:in.", lower=True),
        ],
        "color": [blank_to_none, Optional(), Regexp(HEX_COLOR, message=HEX_COLOR_MESSAGE)],
        "user": [UniqueValue(Employee.user_id, "Dieser Login gehört schon zu einer anderen Mitarbeiter:in.")],
    }
    add_form_extra_fields = edit_form_extra_fields = {"active": checkbox("Aktiv", default=True)}
    related_views = [WorkingHoursView, AbsenceView]
    show_template = "appbuilder/general/model/show_cascade.html"
