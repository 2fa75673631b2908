"""Benachrichtigungsprotokoll (nur lesen)."""
from __future__ import annotations

from app.formatting import fmt_datetime
from app.models import NotificationLog
from app.models.notifications import CHANNELS, NOTIFICATION_STATUSES
from app.views.base import SecureModelView
from app.views.interface import EagerInterface


class NotificationLogView(SecureModelView):
    datamodel = EagerInterface(NotificationLog, eager=("customer", "employee"))
    list_title = "Benachrichtigungen"
    show_title = "Benachrichtigung"
    list_columns = ["created_at", "kind", "channel", "recipient", "customer", "status", "sent_at"]
    order_columns = ["created_at", "sent_at"]
    search_columns = ["kind", "channel", "status", "recipient", "created_at"]
    base_order = ("created_at", "desc")
    base_permissions = ["can_list", "can_show"]
    label_columns = {
        "created_at": "Erstellt", "kind": "Art", "channel": "Kanal", "recipient": "Empfänger:in",
        "customer": "Kund:in", "employee": "Mitarbeiter:in", "booking": "Termin", "status": "Ergebnis",
        "sent_at": "Gesendet", "error": "Fehler",
    }
    formatters_columns = {
        "created_at": fmt_datetime, "sent_at": fmt_datetime,
        "channel": lambda c: CHANNELS.get(c, c),
        "status": lambda s: NOTIFICATION_STATUSES.get(s, s),
    }
