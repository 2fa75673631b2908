"""Benachrichtigungsprotokoll (nur lesen): was an wen wann über welchen Kanal ging — nie der Text."""
from __future__ import annotations

from flask import url_for
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms import SelectField, StringField

from app.formatting import fmt_datetime
from app.models import NotificationLog
from app.models.notifications import CHANNELS, NOTIFICATION_STATUSES
from app.services.notifications import NOTIFICATION_KINDS, kind_label
from app.views.base import SecureModelView
from app.views.booking_history import BookingHistoryInterface, customer_name_clause

STATUS_CLASSES = {"queued": "label-default", "sent": "label-success", "failed": "label-danger"}


class ExactFilter(BaseFilter):
    name = _l("ist")
    arg_name = "tb_exact"

    def apply(self, query, value):
        return query.filter(getattr(self.model, self.column_name) == value)


class CustomerNameFilter(BaseFilter):
    """Every word must be in the first or the last name of the entry's customer."""
    name = _l("enthält")
    arg_name = "tb_customer_contains"

    def apply(self, query, value):
        clause = customer_name_clause(value, prefix=False, customer_id=NotificationLog.customer_id)
        return query if clause is None else query.filter(clause)


class NotificationInterface(BookingHistoryInterface):
    custom_filters = {
        "customer_name": (CustomerNameFilter,),
        "kind": (ExactFilter,), "channel": (ExactFilter,), "status": (ExactFilter,),
    }
    order_aliases = {}


def _choices(labels: dict) -> list[tuple[str, str]]:
    return [(key, str(label)) for key, label in labels.items()]


def result_badge(result: tuple[str, str | None]) -> Markup:
    status, error = result
    badge = Markup('<span class="label {cls}">{label}</span>').format(
        cls=STATUS_CLASSES.get(status, "label-default"), label=NOTIFICATION_STATUSES.get(status, status))
    if status == "failed" and error:
        badge += Markup(' <small class="text-danger tb-notification-error">{}</small>').format(error)
    return badge


def booking_link(booking) -> Markup | str:
    if booking is None:
        return ""
    return Markup('<a href="{url}">{label}</a>').format(url=url_for("BookingView.show", pk=booking.id), label=booking)


class NotificationLogView(SecureModelView):
    datamodel = NotificationInterface(NotificationLog, eager=("customer", "employee", "booking"))
    list_title = _l("Benachrichtigungen")
    show_title = _l("Benachrichtigung")
    list_columns = ["created_at", "kind", "channel", "recipient", "customer", "booking", "result"]
    show_columns = ["created_at", "kind", "channel", "recipient", "customer", "employee", "booking", "result",
                    "sent_at"]
    order_columns = ["created_at", "sent_at"]
    search_columns = ["kind", "channel", "status", "created_at", "customer_name"]
    search_form_extra_fields = {
        "kind": SelectField(_l("Art"), widget=Select2Widget(), choices=lambda: _choices(NOTIFICATION_KINDS)),
        "channel": SelectField(_l("Kanal"), widget=Select2Widget(), choices=lambda: _choices(CHANNELS)),
        "status": SelectField(_l("Ergebnis"), widget=Select2Widget(),
                              choices=lambda: _choices(NOTIFICATION_STATUSES)),
        "customer_name": StringField(_l("Kund:in")),
    }
    base_order = ("created_at", "desc")
    base_permissions = ["can_list", "can_show"]
    label_columns = {
        "created_at": _l("Zeitpunkt"), "kind": _l("Art"), "channel": _l("Kanal"), "recipient": _l("Empfänger"),
        "customer": _l("Kund:in"), "customer_name": _l("Kund:in"), "employee": _l("Mitarbeiter:in"),
        "booking": _l("Termin"), "status": _l("Ergebnis"), "result": _l("Ergebnis"), "sent_at": _l("Gesendet"),
        "error": _l("Fehler"),
    }
    formatters_columns = {
        "created_at": fmt_datetime, "sent_at": fmt_datetime,
        "kind": kind_label,
        "channel": lambda c: CHANNELS.get(c, c),
        "booking": booking_link,
        "result": result_badge,
    }
