"""Dienstleistungen und Räume/Ressourcen."""
from __future__ import annotations

from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l
from wtforms import SelectField

from app.formatting import fmt_money
from app.models import Resource, Service
from app.models.services import SERVICE_CATEGORIES
from app.views.base import SecureApi, SecureModelView
from app.views.interface import EagerInterface
from app.views.validators import UniqueValue, at_least, checkbox, not_negative, vat_rate

SERVICE_LABELS = {
    "name": _l("Name"), "category": _l("Kategorie"), "description": _l("Beschreibung"),
    "duration_minutes": _l("Dauer (Min.)"), "buffer_minutes": _l("Puffer (Min.)"), "price": _l("Preis"),
    "vat_rate": _l("MwSt. (%)"), "capacity": _l("Plätze"), "status_workflow": _l("Status-Workflow"),
    "reminder_default": _l("Erinnerung standardmäßig"), "resource": _l("Raum/Ressource"), "active": _l("Aktiv"),
}


class ResourceView(SecureModelView):
    datamodel = EagerInterface(Resource, eager=("location",))
    list_title = _l("Räume & Ressourcen")
    show_title = add_title = edit_title = _l("Raum/Ressource")
    list_columns = ["name", "location", "capacity", "active"]
    add_columns = edit_columns = ["name", "location", "capacity", "active"]
    base_order = ("name", "asc")
    label_columns = {"name": _l("Name"), "location": _l("Filiale"), "capacity": _l("Kapazität"), "active": _l("Aktiv")}
    validators_columns = {"capacity": [at_least(1, _l("Die Kapazität muss mindestens 1 sein."))]}
    add_form_extra_fields = edit_form_extra_fields = {"active": checkbox(_l("Aktiv"), default=True)}


class ServiceView(SecureModelView):
    datamodel = EagerInterface(Service, eager=("resource",))
    list_title = _l("Dienstleistungen")
    show_title = add_title = edit_title = _l("Dienstleistung")
    list_columns = ["name", "category", "duration_minutes", "buffer_minutes", "price", "capacity", "active"]
    search_columns = ["name", "category", "active", "status_workflow"]
    add_columns = edit_columns = [
        "name", "category", "description", "duration_minutes", "buffer_minutes", "price", "vat_rate",
        "capacity", "resource", "status_workflow", "reminder_default", "active",
    ]
    base_order = ("name", "asc")
    label_columns = SERVICE_LABELS
    formatters_columns = {"price": fmt_money, "category": lambda c: SERVICE_CATEGORIES.get(c, c)}
    add_form_extra_fields = edit_form_extra_fields = {
        "category": SelectField(_l("Kategorie"), choices=list(SERVICE_CATEGORIES.items()), widget=Select2Widget()),
        "status_workflow": checkbox(SERVICE_LABELS["status_workflow"]),
        "reminder_default": checkbox(SERVICE_LABELS["reminder_default"], default=True),
        "active": checkbox(SERVICE_LABELS["active"], default=True),
    }
    validators_columns = {
        "name": [UniqueValue(Service.name, _l("Eine Dienstleistung mit diesem Namen gibt es schon."))],
        "duration_minutes": [at_least(1, _l("Die Dauer muss mindestens 1 Minute betragen."))],
        "buffer_minutes": [not_negative(_l("Der Puffer darf nicht negativ sein."))],
        "price": [not_negative(_l("Der Preis darf nicht negativ sein."))],
        "vat_rate": [vat_rate()],
        "capacity": [at_least(1, _l("Es muss mindestens 1 Platz geben."))],
    }


class ServiceApi(SecureApi):
    resource_name = "service"
    datamodel = SQLAInterface(Service)
    list_columns = ["id", "name", "category", "duration_minutes", "buffer_minutes", "price", "active"]
    show_columns = list_columns + ["description", "capacity", "status_workflow"]
    add_columns = edit_columns = [
        "name", "category", "duration_minutes", "buffer_minutes", "price", "capacity", "active",
    ]
