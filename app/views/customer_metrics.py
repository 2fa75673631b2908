"""The customer list's "aktiv in Kategorie" filter and the panel of active-customer
numbers above the list (issue 4, point 4). Each number links to the filtered list,
which shows exactly the customers it counts."""
from __future__ import annotations

from flask import url_for
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import lazy_gettext as _l
from sqlalchemy import false
from wtforms import SelectField

from app.extensions import db
from app.models import Customer
from app.models.services import SERVICE_CATEGORIES
from app.services.metrics import ALL, TOTAL, active_customer_counts, active_customer_ids
from app.views.interface import EagerInterface

FILTER_COLUMN = "active_category"


class ActiveCategoryFilter(BaseFilter):
    """Customers with a future, not cancelled booking in the category (or in any with "alle");
    an unknown category matches nothing."""

    name = _l("aktiv in Kategorie")
    arg_name = "tb_active"

    def apply(self, query, value):
        value = (value or "").strip()
        if value == ALL:
            return query.filter(Customer.id.in_(active_customer_ids()))
        if value in SERVICE_CATEGORIES:
            return query.filter(Customer.id.in_(active_customer_ids(value)))
        return query.filter(false())


class CustomerMetricsInterface(EagerInterface):
    """The customer list's data model with the `active_category` filter (not a column of the model)."""

    custom_filters = {FILTER_COLUMN: (ActiveCategoryFilter,)}


def active_filter_url(key: str) -> str:
    return url_for("CustomerView.list", **{f"_flt_0_{FILTER_COLUMN}": ALL if key == TOTAL else key})


def active_metrics() -> list[dict]:
    """The numbers with label and link: the total first, then each category."""
    counts = active_customer_counts(db.session)
    labels = {TOTAL: _l("Gesamt"), **SERVICE_CATEGORIES}
    return [
        {"key": key, "label": labels[key], "count": counts[key], "url": active_filter_url(key)}
        for key in (TOTAL, *SERVICE_CATEGORIES)
    ]


ACTIVE_SEARCH_FIELD = SelectField(
    _l("Aktiv (zukünftiger Termin)"), widget=Select2Widget(),
    choices=[(ALL, _l("alle Kategorien")), *SERVICE_CATEGORIES.items()],
)


class ActiveCustomersMixin:
    """CustomerView: the panel of active-customer numbers above the list."""

    list_template = "terminbuch/customer_list.html"

    def render_template(self, template, **kwargs):
        if template == self.list_template:
            kwargs.setdefault("active_metrics", active_metrics())
        return super().render_template(template, **kwargs)
