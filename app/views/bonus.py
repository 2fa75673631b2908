"""Bonusprogramme und Punktekonto."""
from __future__ import annotations

from decimal import Decimal

from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField

from app.formatting import fmt_datetime
from app.models import BonusProgram, BonusTransaction, Customer
from app.models.bonus import BONUS_KINDS
from app.views.base import SecureModelView, ajax_field
from app.views.interface import EagerInterface
from app.views.validators import UniqueValue, at_least, checkbox, not_negative


class BonusProgramView(SecureModelView):
    datamodel = SQLAInterface(BonusProgram)
    list_title = _l("Bonusprogramme")
    show_title = add_title = edit_title = _l("Bonusprogramm")
    list_columns = ["name", "points_per_euro", "threshold", "reward_name", "active"]
    add_columns = edit_columns = [
        "name", "points_per_euro", "threshold", "reward_name", "reward_kind", "reward_value",
        "referral_points", "active",
    ]
    label_columns = {
        "name": _l("Name"), "points_per_euro": _l("Punkte je Euro"), "threshold": _l("Schwelle (Punkte)"),
        "reward_name": _l("Prämie"), "reward_kind": _l("Prämienart"), "reward_value": _l("Prämienwert"),
        "referral_points": _l("Empfehlungspunkte"), "active": _l("Aktiv"),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "reward_kind": SelectField(
            _l("Prämienart"), choices=[("percent", _l("Prozent")), ("fixed", _l("Festbetrag"))], widget=Select2Widget()
        ),
        "active": checkbox(_l("Aktiv"), default=True),
    }
    validators_columns = {
        "name": [UniqueValue(BonusProgram.name, _l("Ein Bonusprogramm mit diesem Namen gibt es schon."))],
        "points_per_euro": [not_negative(_l("Punkte je Euro dürfen nicht negativ sein."))],
        "threshold": [at_least(1, _l("Die Schwelle muss mindestens 1 Punkt betragen."))],
        "reward_value": [at_least(Decimal("0.01"), _l("Der Prämienwert muss größer als 0 sein."))],
        "referral_points": [not_negative(_l("Empfehlungspunkte dürfen nicht negativ sein."))],
    }

    def check_write(self, item: BonusProgram) -> None:
        super().check_write(item)
        if item.reward_kind == "percent" and item.reward_value is not None and item.reward_value > 100:
            raise ValueError(_("Ein Prozent-Rabatt kann höchstens 100 % betragen."))


class BonusTransactionView(SecureModelView):
    datamodel = EagerInterface(BonusTransaction, eager=("customer", "program"))
    list_title = _l("Bonuspunkte")
    show_title = add_title = _l("Bonusbuchung")
    list_columns = ["created_at", "customer", "program", "kind", "points", "reason"]
    order_columns = ["created_at", "points"]
    search_columns = ["program", "kind", "created_at"]
    add_columns = ["customer", "program", "kind", "points", "reason"]
    base_order = ("created_at", "desc")
    # The ledger is append-only: corrections are new lines, never edits.
    base_permissions = ["can_list", "can_show", "can_add"]
    label_columns = {
        "created_at": _l("Datum"), "customer": _l("Kund:in"), "program": _l("Programm"), "kind": _l("Art"),
        "points": _l("Punkte"), "reason": _l("Grund"), "booking": _l("Termin"),
    }
    formatters_columns = {"created_at": fmt_datetime, "kind": lambda k: BONUS_KINDS.get(k, k)}
    add_form_extra_fields = {
        "customer": ajax_field(_l("Kund:in"), Customer, "customer", "/customerview/lookup"),
        "kind": SelectField(_l("Art"), choices=list(BONUS_KINDS.items()), widget=Select2Widget()),
    }

    def check_write(self, item: BonusTransaction) -> None:
        super().check_write(item)
        if not item.points:
            raise ValueError(_("Punkte dürfen nicht 0 sein."))
        if item.kind in ("earn", "referral") and item.points < 0:
            raise ValueError(_("Gutschriften brauchen positive Punkte."))
        if item.kind in ("redeem", "expiry") and item.points > 0:
            raise ValueError(_("Einlösung und Verfall brauchen negative Punkte."))
