"""Dienstleistungen und Räume/Ressourcen."""
from __future__ import annotations

from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import SelectField

from app.formatting import fmt_money
from app.models import Resource, Service
from app.models.services import SERVICE_CATEGORIES
from app.views.base import SecureApi, SecureModelView
from app.views.interface import EagerInterface
from app.views.validators import UniqueValue, at_least, checkbox, not_negative, vat_rate

SERVICE_LABELS = {
    "name": "Name", "category": "Kategorie", "description": "Beschreibung",
    "duration_minutes": "Dauer (Min.)", "buffer_minutes": "Puffer (Min.)", "price": "Preis",
    "vat_rate": "MwSt. (%)", "capacity": "Plätze", "status_workflow": "Status-Workflow",
    "reminder_default": "Erinnerung standardmäßig", "resource": "Raum/Ressource", "active": "Aktiv",
}


class ResourceView(SecureModelView):
    datamodel = EagerInterface(Resource, eager=("location",))
    list_title = "Räume & Ressourcen"
    show_title = add_title = edit_title = "Raum/Ressource"
    list_columns = ["name", "location", "capacity", "active"]
    add_columns = edit_columns = ["name", "location", "capacity", "active"]
    base_order = ("name", "asc")
    label_columns = {"name": "Name", "location": "Filiale", "capacity": "Kapazität", "active": "Aktiv"}
    validators_columns = {"capacity": [at_least(1, "Die Kapazität muss mindestens 1 sein.")]}
    add_form_extra_fields = edit_form_extra_fields = {"active": checkbox("Aktiv", default=True)}


class ServiceView(SecureModelView):
    datamodel = EagerInterface(Service, eager=("resource",))
    list_title = "Dienstleistungen"
    show_title = add_title = edit_title = "Dienstleistung"
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
        "category": SelectField("Kategorie", choices=list(SERVICE_CATEGORIES.items()), widget=Select2Widget()),
        "status_workflow": checkbox(SERVICE_LABELS["status_workflow"]),
        "reminder_default": checkbox(SERVICE_LABELS["reminder_default"], default=True),
        "active": checkbox(SERVICE_LABELS["active"], default=True),
    }
    validators_columns = {
        "name": [UniqueValue(Service.name, "Eine Dienstleistung mit diesem Namen gibt es schon.")],
        "duration_minutes": [at_least(1, "Die Dauer muss mindestens 1 Minute betragen.")],
        "buffer_minutes": [not_negative("Der Puffer darf nicht negativ sein.")],
        "price": [not_negative("Der Preis darf nicht negativ sein.")],
        "vat_rate": [vat_rate()],
        "capacity": [at_least(1, "Es muss mindestens 1 Platz geben.")],
    }


class ServiceApi(SecureApi):
    resource_name = "service"
    datamodel = SQLAInterface(Service)
    list_columns = ["id", "name", "category", "duration_minutes", "buffer_minutes", "price", "active"]
    show_columns = list_columns + ["description", "capacity", "status_workflow"]
    add_columns = edit_columns = [
        "name", "category", "duration_minutes", "buffer_minutes", "price", "capacity", "active",
    ]
