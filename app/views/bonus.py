"""Bonusprogramme und Punktekonto."""
from __future__ import annotations

from decimal import Decimal

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import SelectField

from app.extensions import db
from app.formatting import fmt_datetime, fmt_money
from app.models import BonusProgram, BonusTransaction, Booking, Customer
from app.models.bonus import BONUS_KINDS
from app.models.services import SERVICE_CATEGORIES
from app.security import restrict
from app.services.bonus import (
    BonusRefused,
    balance,
    covering_programs,
    program_overview,
    redeem_on_booking,
    standing,
    undo_booking_reward,
)
from app.views.base import SecureModelView, ajax_field
from app.views.interface import EagerInterface
from app.views.validators import UniqueValue, at_least, checkbox, not_negative, parse_id

REWARD_KINDS = {"percent": _l("Prozent"), "fixed": _l("Festbetrag")}


def category_choices() -> list[tuple[str, str]]:
    return [("", "–"), *((key, str(label)) for key, label in SERVICE_CATEGORIES.items())]


def empty_is_none(value):
    return value or None


# Lines staff may book by hand; earn on completion, redemptions and referrals book themselves.
MANUAL_KINDS = ("earn", "correction", "expiry")


class BonusProgramView(SecureModelView):
    datamodel = SQLAInterface(BonusProgram)
    list_title = _l("Bonusprogramme")
    show_title = add_title = edit_title = _l("Bonusprogramm")
    list_columns = ["name", "points_per_euro", "threshold", "reward_name", "active"]
    add_columns = edit_columns = [
        "name", "points_per_euro", "threshold", "reward_name", "reward_kind", "reward_value",
        "referral_points", "services", "category", "active",
    ]
    show_columns = add_columns
    formatters_columns = {"category": lambda c: SERVICE_CATEGORIES.get(c, c) if c else "–",
                          "reward_kind": lambda k: REWARD_KINDS.get(k, k)}
    label_columns = {
        "name": _l("Name"), "points_per_euro": _l("Punkte je Euro"), "threshold": _l("Schwelle (Punkte)"),
        "reward_name": _l("Prämie"), "reward_kind": _l("Prämienart"), "reward_value": _l("Prämienwert"),
        "referral_points": _l("Empfehlungspunkte"), "active": _l("Aktiv"),
        "services": _l("Gilt für Leistungen"), "category": _l("Gilt für Kategorie"),
    }
    description_columns = {
        "points_per_euro": _l("Punkte je Euro des bezahlten Preises eines abgeschlossenen Termins "
                              "(abgerundet; mit einer Mehrfachkarte bezahlte Termine sammeln keine Punkte)."),
        "services": _l("Abgeschlossene Termine dieser Leistungen sammeln Punkte. Leer lassen: die Kategorie "
                       "entscheidet; ohne Kategorie sammeln alle Leistungen."),
        "referral_points": _l("Bekommt die Kund:in, die eine neue Kund:in empfohlen hat, einmal nach deren "
                              "erstem abgeschlossenen Termin."),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "reward_kind": SelectField(
            _l("Prämienart"), choices=list(REWARD_KINDS.items()), widget=Select2Widget()
        ),
        "active": checkbox(_l("Aktiv"), default=True),
        "category": SelectField(_l("Gilt für Kategorie"), choices=category_choices, widget=Select2Widget(),
                                coerce=empty_is_none),
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
    datamodel = EagerInterface(BonusTransaction, eager=("customer", "program", "created_by"))
    list_title = _l("Bonuspunkte")
    show_title = add_title = _l("Bonusbuchung")
    list_columns = ["created_at", "customer", "program", "kind", "points", "reason", "created_by"]
    show_columns = ["created_at", "customer", "program", "kind", "points", "reason", "booking", "reverses",
                    "discount", "created_by"]
    order_columns = ["created_at", "points"]
    search_columns = ["program", "kind", "created_at"]
    add_columns = ["customer", "program", "kind", "points", "reason"]
    base_order = ("created_at", "desc")
    # The ledger is append-only: corrections are new lines, never edits.
    base_permissions = ["can_list", "can_show", "can_add"]
    label_columns = {
        "created_at": _l("Datum"), "customer": _l("Kund:in"), "program": _l("Programm"), "kind": _l("Art"),
        "points": _l("Punkte"), "reason": _l("Grund"), "booking": _l("Termin"),
        "created_by": _l("Erfasst von"), "reverses": _l("Nimmt zurück"), "discount": _l("Rabatt"),
    }
    formatters_columns = {"created_at": fmt_datetime, "kind": lambda k: BONUS_KINDS.get(k, k),
                          "discount": fmt_money}
    add_form_extra_fields = {
        "customer": ajax_field(_l("Kund:in"), Customer, "customer", "/customerview/lookup"),
        "kind": SelectField(_l("Art"), choices=[(kind, BONUS_KINDS[kind]) for kind in MANUAL_KINDS],
                            widget=Select2Widget()),
    }

    def check_write(self, item: BonusTransaction) -> None:
        super().check_write(item)
        if item.kind not in MANUAL_KINDS:
            raise ValueError(_("Einlösungen und Empfehlungen bucht Terminbuch selbst: eine Prämie wird auf einem "
                               "Rechnungsentwurf oder einem Termin eingelöst."))
        if not item.points:
            raise ValueError(_("Punkte dürfen nicht 0 sein."))
        if item.kind in ("earn", "referral") and item.points < 0:
            raise ValueError(_("Gutschriften brauchen positive Punkte."))
        if item.kind in ("redeem", "expiry") and item.points > 0:
            raise ValueError(_("Einlösung und Verfall brauchen negative Punkte."))
        customer_id = item.customer.id if item.customer is not None else item.customer_id
        program_id = item.program.id if item.program is not None else item.program_id
        if item.points < 0 and customer_id is not None and program_id is not None:
            with db.session.no_autoflush:
                held = balance(db.session, customer_id, program_id)
            if held + item.points < 0:
                raise ValueError(_("Der Punktestand darf nicht unter 0 fallen (Stand: %(balance)s Punkte).",
                                   balance=held))


class BookingBonusMixin:
    """BookingView: the "Bonusprämie" panel on the detail page (Manager, Owner): redeem a
    reward on the booking (its price goes down) or take it back."""

    def render_template(self, template, **kwargs):
        if template == self.show_template and "pk" in kwargs and \
                self.appbuilder.sm.has_access("can_reward", self.class_permission_name):
            booking = _visible_booking(kwargs["pk"])
            if booking is not None:
                redeemed = standing(db.session, BonusTransaction.booking_id == booking.id,
                                    BonusTransaction.kind == "redeem")
                covering = set(covering_programs(db.session, booking.service))
                kwargs.update(booking_bonus={  # the programs whose reward applies to this service
                    "booking": booking, "redeemed": redeemed[0] if redeemed else None,
                    "overview": [item for item in program_overview(db.session, booking.customer_id)
                                 if item["program"] in covering],
                })
        return super().render_template(template, **kwargs)

    @expose("/reward/<pk>", methods=["POST"])
    @has_access
    @permission_name("reward")
    def reward(self, pk):
        """program=<id>: redeem; undo=<ledger line id>: take back (price and points restored)."""
        if parse_id(pk) is None:
            abort(400)
        booking = _visible_booking(pk)
        if booking is None:
            abort(404)
        try:
            if request.form.get("undo"):
                line = db.session.get(BonusTransaction, parse_id(request.form.get("undo")) or 0)
                if line is None or line.booking_id != booking.id:
                    raise BonusRefused(_("Auf diesen Termin ist keine Prämie eingelöst."))
                undo_booking_reward(db.session, line)
                message = _("Prämie zurückgenommen: Preis und Punkte sind wiederhergestellt.")
            else:
                program = chosen_program()
                redeem_on_booking(db.session, booking, program)
                message = _("Prämie „%(reward)s“ eingelöst: neuer Preis %(price)s.",
                            reward=program.reward_name, price=fmt_money(booking.price))
            db.session.commit()
        except BonusRefused as exc:
            db.session.rollback()
            flash(str(exc), "danger")
        else:
            flash(message, "success")
        return redirect(url_for(f"{type(self).__name__}.show", pk=booking.id))


def chosen_program() -> BonusProgram:
    """The bonus program of the posted form (`program`); BonusRefused when none or junk."""
    program = db.session.get(BonusProgram, parse_id(request.form.get("program") or "") or 0)
    if program is None:
        raise BonusRefused(_("Bitte ein Bonusprogramm wählen."))
    return program


def _visible_booking(pk) -> Booking | None:
    booking_id = parse_id(str(pk))
    if booking_id is None:
        return None
    return db.session.scalar(restrict(select(Booking).where(Booking.id == booking_id), Booking))
