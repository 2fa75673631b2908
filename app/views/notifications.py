"""Benachrichtigungsprotokoll (nur lesen)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.formatting import fmt_datetime
from app.models import NotificationLog
from app.models.notifications import CHANNELS, NOTIFICATION_STATUSES
from app.views.base import SecureModelView
from app.views.interface import EagerInterface


class NotificationLogView(SecureModelView):
    datamodel = EagerInterface(NotificationLog, eager=("customer", "employee"))
    list_title = _l("Benachrichtigungen")
    show_title = _l("Benachrichtigung")
    list_columns = ["created_at", "kind", "channel", "recipient", "customer", "status", "sent_at"]
    order_columns = ["created_at", "sent_at"]
    search_columns = ["kind", "channel", "status", "recipient", "created_at"]
    base_order = ("created_at", "desc")
    base_permissions = ["can_list", "can_show"]
    label_columns = {
        "created_at": _l("Erstellt"), "kind": _l("Art"), "channel": _l("Kanal"), "recipient": _l("Empfänger:in"),
        "customer": _l("Kund:in"), "employee": _l("Mitarbeiter:in"), "booking": _l("Termin"), "status": _l("Ergebnis"),
        "sent_at": _l("Gesendet"), "error": _l("Fehler"),
    }
    formatters_columns = {
        "created_at": fmt_datetime, "sent_at": fmt_datetime,
        "channel": lambda c: CHANNELS.get(c, c),
        "status": lambda s: NOTIFICATION_STATUSES.get(s, s),
    }
