"""Bonusprogramme und Punktekonto."""
from __future__ import annotations

from decimal import Decimal

from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms import SelectField

from app.formatting import fmt_datetime
from app.models import BonusProgram, BonusTransaction, Customer
from app.models.bonus import BONUS_KINDS
from app.views.base import SecureModelView, ajax_field
from app.views.interface import EagerInterface
from app.views.validators import UniqueValue, at_least, checkbox, not_negative


class BonusProgramView(SecureModelView):
    datamodel = SQLAInterface(BonusProgram)
    list_title = "Bonusprogramme"
    show_title = add_title = edit_title = "Bonusprogramm"
    list_columns = ["name", "points_per_euro", "threshold", "reward_name", "active"]
    add_columns = edit_columns = [
        "name", "points_per_euro", "threshold", "reward_name", "reward_kind", "reward_value",
        "referral_points", "active",
    ]
    label_columns = {
        "name": "Name", "points_per_euro": "Punkte je Euro", "threshold": "Schwelle (Punkte)",
        "reward_name": "Prämie", "reward_kind": "Prämienart", "reward_value": "Prämienwert",
        "referral_points": "Empfehlungspunkte", "active": "Aktiv",
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "reward_kind": SelectField(
            "Prämienart", choices=[("percent", "Prozent"), ("fixed", "Festbetrag")], widget=Select2Widget()
        ),
        "active": checkbox("Aktiv", default=True),
    }
    validators_columns = {
        "name": [UniqueValue(BonusProgram.name, "Ein Bonusprogramm mit diesem Namen gibt es schon.")],
        "points_per_euro": [not_negative("Punkte je Euro dürfen nicht negativ sein.")],
        "threshold": [at_least(1, "Die Schwelle muss mindestens 1 Punkt betragen.")],
        "reward_value": [at_least(Decimal("0.01"), "Der Prämienwert muss größer als 0 sein.")],
        "referral_points": [not_negative("Empfehlungspunkte dürfen nicht negativ sein.")],
    }

    def check_write(self, item: BonusProgram) -> None:
        super().check_write(item)
        if item.reward_kind == "percent" and item.reward_value is not None and item.reward_value > 100:
            raise ValueError("Ein Prozent-Rabatt kann höchstens 100 % betragen.")


class BonusTransactionView(SecureModelView):
    datamodel = EagerInterface(BonusTransaction, eager=("customer", "program"))
    list_title = "Bonuspunkte"
    show_title = add_title = "Bonusbuchung"
    list_columns = ["created_at", "customer", "program", "kind", "points", "reason"]
    order_columns = ["created_at", "points"]
    search_columns = ["program", "kind", "created_at"]
    add_columns = ["customer", "program", "kind", "points", "reason"]
    base_order = ("created_at", "desc")
    # The ledger is append-only: corrections are new lines, never edits.
    base_permissions = ["can_list", "can_show", "can_add"]
    label_columns = {
        "created_at": "Datum", "customer": "Kund:in", "program": "Programm", "kind": "Art",
        "points": "Punkte", "reason": "Grund", "booking": "Termin",
    }
    formatters_columns = {"created_at": fmt_datetime, "kind": lambda k: BONUS_KINDS.get(k, k)}
    add_form_extra_fields = {
        "customer": ajax_field("Kund:in", Customer, "customer", "/customerview/lookup"),
        "kind": SelectField("Art", choices=list(BONUS_KINDS.items()), widget=Select2Widget()),
    }

    def check_write(self, item: BonusTransaction) -> None:
        super().check_write(item)
        if not item.points:
            raise ValueError("Punkte dürfen nicht 0 sein.")
        if item.kind in ("earn", "referral") and item.points < 0:
            raise ValueError("Gutschriften brauchen positive Punkte.")
        if item.kind in ("redeem", "expiry") and item.points > 0:
            raise ValueError("Einlösung und Verfall brauchen negative Punkte.")
