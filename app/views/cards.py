"""Mehrfachkarten."""
from __future__ import annotations

from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, DateTimePickerWidget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import DateTimeField, DecimalField, IntegerField
from wtforms.validators import DataRequired, Optional

from app.formatting import fmt_datetime, fmt_money, to_local
from app.models import Customer, PassCard, PassCardType, PassRedemption
from app.models.types import utcnow
from app.services.cards import expiry_for
from app.views.base import SecureModelView, ajax_field
from app.views.interface import EagerInterface
from app.views.validators import UniqueValue, at_least, checkbox, not_negative

# What the date picker sends, and what an edit form shows for a stored time with
# microseconds (a purchase stamped "now").
DATETIME_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M"]


def _local_now():
    """Now as the business's wall-clock time, the way the date pickers show it."""
    return to_local(utcnow()).replace(tzinfo=None, microsecond=0)


class PassCardTypeView(SecureModelView):
    datamodel = SQLAInterface(PassCardType)
    list_title = _l("Kartentypen")
    show_title = add_title = edit_title = _l("Kartentyp")
    list_columns = ["name", "units", "validity_days", "price", "no_show_costs_unit", "active"]
    add_columns = edit_columns = [
        "name", "units", "validity_days", "price", "services", "category", "no_show_costs_unit", "active",
    ]
    show_columns = [
        "name", "units", "validity_days", "price", "services", "category", "no_show_costs_unit", "active",
    ]
    base_order = ("name", "asc")
    label_columns = {
        "name": _l("Name"), "units": _l("Einheiten"), "validity_days": _l("Gültigkeit (Tage)"), "price": _l("Preis"),
        "services": _l("Gilt für Leistungen"),
        "category": _l("Kategorie"), "no_show_costs_unit": _l("Nichterscheinen kostet Einheit"), "active": _l("Aktiv"),
    }
    formatters_columns = {"price": fmt_money}
    description_columns = {
        "services": _l("Beim Abschluss eines Termins dieser Leistungen wird eine Einheit eingelöst. "
                       "Ohne Auswahl gilt die Karte für alle Leistungen ihrer Kategorie."),
    }
    validators_columns = {
        "name": [UniqueValue(PassCardType.name, _l("Einen Kartentyp mit diesem Namen gibt es schon."))],
        "units": [at_least(1, _l("Eine Karte braucht mindestens eine Einheit."))],
        "validity_days": [Optional(), at_least(1, _l("Die Gültigkeit muss mindestens 1 Tag betragen."))],
        "price": [not_negative(_l("Der Preis darf nicht negativ sein."))],
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "no_show_costs_unit": checkbox(_l("Nichterscheinen kostet Einheit"), default=True),
        "active": checkbox(_l("Aktiv"), default=True),
    }


class PassRedemptionView(SecureModelView):
    datamodel = EagerInterface(PassRedemption, eager=("card", "booking"))
    list_title = _l("Einlösungen")
    show_title = _l("Einlösung")
    list_columns = ["redeemed_at", "card", "booking", "units"]
    base_order = ("redeemed_at", "desc")
    base_permissions = ["can_list", "can_show"]
    label_columns = {
        "redeemed_at": _l("Eingelöst am"), "card": _l("Mehrfachkarte"), "booking": _l("Termin"),
        "units": _l("Einheiten"),
    }
    formatters_columns = {"redeemed_at": fmt_datetime}


class PassCardView(SecureModelView):
    datamodel = EagerInterface(PassCard, eager=("type", "customer"))
    list_title = _l("Mehrfachkarten")
    list_template = "terminbuch/lens_list.html"  # lens tabs above the list
    show_title = add_title = edit_title = _l("Mehrfachkarte")
    list_columns = ["customer", "type", "units_total", "units_used", "purchased_at", "expires_at"]
    order_columns = ["units_total", "units_used", "purchased_at", "expires_at"]
    search_columns = ["type", "purchased_at", "expires_at"]
    # "Karte verkaufen": units, price and validity come from the type unless entered
    add_columns = ["customer", "type", "units_total", "units_used", "price", "purchased_at", "expires_at"]
    edit_columns = ["customer", "type", "units_total", "units_used", "price", "purchased_at", "expires_at"]
    add_form_query_rel_fields = {"type": [["active", FilterEqual, True]]}
    base_order = ("purchased_at", "desc")
    label_columns = {
        "customer": _l("Kund:in"), "type": _l("Kartentyp"), "units_total": _l("Einheiten"),
        "units_used": _l("Verbraucht"), "units_remaining": _l("Rest"), "price": _l("Preis"),
        "purchased_at": _l("Gekauft am"), "expires_at": _l("Gültig bis"),
    }
    formatters_columns = {"purchased_at": fmt_datetime, "expires_at": fmt_datetime, "price": fmt_money}
    edit_form_extra_fields = {
        "customer": ajax_field(_l("Kund:in"), Customer, "customer", "/customerview/lookup"),
        # FAB would prefill the column default as str(aware UTC datetime), which its own
        # format cannot parse back: offer the business's local time instead.
        "purchased_at": DateTimeField(
            _l("Gekauft am"), format=DATETIME_FORMATS, default=_local_now,
            validators=[DataRequired(message=_l("Bitte das Kaufdatum angeben."))], widget=DateTimePickerWidget(),
        ),
        "expires_at": DateTimeField(
            _l("Gültig bis"), format=DATETIME_FORMATS, validators=[Optional()], widget=DateTimePickerWidget(),
        ),
    }
    add_form_extra_fields = {
        **edit_form_extra_fields,
        "units_total": IntegerField(
            _l("Einheiten"), validators=[Optional(), at_least(1, _l("Eine Karte braucht mindestens eine Einheit."))],
            description=_l("Leer lassen für die Einheiten des Kartentyps."), widget=BS3TextFieldWidget(),
        ),
        "units_used": IntegerField(
            _l("Verbraucht"),
            validators=[Optional(), not_negative(_l("Verbrauchte Einheiten dürfen nicht negativ sein."))],
            description=_l("Leer lassen bei einer neuen Karte."), widget=BS3TextFieldWidget(),
        ),
        "price": DecimalField(
            _l("Preis"), places=2, validators=[Optional(), not_negative(_l("Der Preis darf nicht negativ sein."))],
            description=_l("Leer lassen für den Preis des Kartentyps."), widget=BS3TextFieldWidget(),
        ),
        "expires_at": DateTimeField(
            _l("Gültig bis"), format=DATETIME_FORMATS, validators=[Optional()], widget=DateTimePickerWidget(),
            description=_l("Leer lassen für die Gültigkeit des Kartentyps."),
        ),
    }
    validators_columns = {
        "units_total": [at_least(1, _l("Eine Karte braucht mindestens eine Einheit."))],
        "units_used": [not_negative(_l("Verbrauchte Einheiten dürfen nicht negativ sein."))],
        "price": [not_negative(_l("Der Preis darf nicht negativ sein."))],
    }
    related_views = [PassRedemptionView]

    def pre_add(self, item: PassCard) -> None:
        """Selling a card: units, price and validity from its type unless entered."""
        card_type = item.type
        if card_type is not None:
            if item.units_total is None:
                item.units_total = card_type.units
            if item.units_used is None:
                item.units_used = 0
            if item.price is None:
                item.price = card_type.price
            if item.expires_at is None and item.purchased_at is not None:
                item.expires_at = expiry_for(card_type, item.purchased_at)
        super().pre_add(item)

    def check_write(self, item: PassCard) -> None:
        super().check_write(item)
        if item.units_used is not None and item.units_used < 0:
            raise ValueError(_("Verbrauchte Einheiten dürfen nicht negativ sein."))
        if item.units_total is not None and item.units_total <= 0:
            raise ValueError(_("Eine Karte braucht mindestens eine Einheit."))
        if item.units_total and item.units_used and item.units_used > item.units_total:
            raise ValueError(_("Es können nicht mehr Einheiten verbraucht sein, als die Karte hat."))
