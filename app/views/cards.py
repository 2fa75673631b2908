"""Mehrfachkarten."""
from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface

from app.formatting import fmt_datetime, fmt_money
from app.models import Customer, PassCard, PassCardType, PassRedemption
from app.views.base import SecureModelView, ajax_field
from app.views.interface import EagerInterface


class PassCardTypeView(SecureModelView):
    datamodel = SQLAInterface(PassCardType)
    list_title = "Kartentypen"
    show_title = add_title = edit_title = "Kartentyp"
    list_columns = ["name", "units", "validity_days", "price", "no_show_costs_unit", "active"]
    add_columns = edit_columns = [
        "name", "units", "validity_days", "price", "category", "no_show_costs_unit", "active",
    ]
    base_order = ("name", "asc")
    label_columns = {
        "name": "Name", "units": "Einheiten", "validity_days": "Gültigkeit (Tage)", "price": "Preis",
        "category": "Kategorie", "no_show_costs_unit": "Nichterscheinen kostet Einheit", "active": "Aktiv",
    }
    formatters_columns = {"price": fmt_money}


class PassRedemptionView(SecureModelView):
    datamodel = EagerInterface(PassRedemption, eager=("card", "booking"))
    list_title = "Einlösungen"
    show_title = "Einlösung"
    list_columns = ["redeemed_at", "card", "booking", "units"]
    base_order = ("redeemed_at", "desc")
    base_permissions = ["can_list", "can_show"]
    label_columns = {"redeemed_at": "Eingelöst am", "card": "Karte", "booking": "Termin", "units": "Einheiten"}
    formatters_columns = {"redeemed_at": fmt_datetime}


class PassCardView(SecureModelView):
    datamodel = EagerInterface(PassCard, eager=("type", "customer"))
    list_title = "Mehrfachkarten"
    show_title = add_title = edit_title = "Mehrfachkarte"
    list_columns = ["customer", "type", "units_total", "units_used", "purchased_at", "expires_at"]
    order_columns = ["units_total", "units_used", "purchased_at", "expires_at"]
    search_columns = ["type", "purchased_at", "expires_at"]
    add_columns = edit_columns = [
        "customer", "type", "units_total", "units_used", "price", "purchased_at", "expires_at",
    ]
    base_order = ("purchased_at", "desc")
    label_columns = {
        "customer": "Kund:in", "type": "Kartentyp", "units_total": "Einheiten", "units_used": "Verbraucht",
        "units_remaining": "Rest", "price": "Preis", "purchased_at": "Gekauft am", "expires_at": "Gültig bis",
    }
    formatters_columns = {"purchased_at": fmt_datetime, "expires_at": fmt_datetime, "price": fmt_money}
    add_form_extra_fields = edit_form_extra_fields = {
        "customer": ajax_field("Kund:in", Customer, "customer", "/customerview/lookup"),
    }
    related_views = [PassRedemptionView]

    def check_write(self, item: PassCard) -> None:
        super().check_write(item)
        if item.units_used is not None and item.units_used < 0:
            raise ValueError("Verbrauchte Einheiten dürfen nicht negativ sein.")
        if item.units_total is not None and item.units_total <= 0:
            raise ValueError("Eine Karte braucht mindestens eine Einheit.")
        if item.units_total and item.units_used and item.units_used > item.units_total:
            raise ValueError("Es können nicht mehr Einheiten verbraucht sein, als die Karte hat.")
