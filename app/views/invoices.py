"""Rechnungen."""
from __future__ import annotations

import re
from decimal import Decimal

from flask import Response, abort, flash, g, has_request_context, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from werkzeug.exceptions import BadRequest
from wtforms import SelectField

from app.extensions import db
from app.formatting import fmt_date, fmt_datetime, fmt_money, fmt_rate, to_local
from app.models import Customer, Invoice, InvoiceLine
from app.models.invoices import IMMUTABLE_MESSAGE, INVOICE_STATUSES, ZERO
from app.security import restrict
from app.services import lenses as lens_service
from app.services.bonus import BonusRefused, program_overview, redeem_on_invoice, take_back_invoice_reward
from app.services.invoice_pdf import invoice_pdf
from app.services.invoices import (
    add_billable_lines,
    billable_bookings,
    billable_cards,
    cancel_invoice,
    issue_invoice,
    set_paid,
    setting_text,
    vat_rates,
)
from app.views.base import SecureApi, SecureModelView, ajax_field
from app.views.bonus import chosen_program
from app.views.export import ExportMixin
from app.views.interface import EagerInterface
from app.views.lenses import _add_column
from app.views.validators import checkbox, parse_id, vat_rate

PAYMENT_COLUMN = lens_service.PAYMENT_COLUMN
OPEN_AMOUNT_COLUMN = "open_amount"
PAYMENT_ARG = re.compile(rf"^_flt_\d_{PAYMENT_COLUMN}$")


MAX_AMOUNT = Decimal("99999999.99")  # Numeric(10, 2)
MAX_POSITION = 9999


# --- rules every invoice write must pass, whichever screen or API it comes from ------------
# (the model's before_flush guard and the database triggers refuse the same underneath)
def check_invoice_write(item: Invoice) -> None:
    """An issued (or cancelled) invoice is never edited; a draft belongs to a stored customer."""
    if item.id is not None and item.status != "draft":
        raise ValueError(_("Eine ausgestellte Rechnung kann nicht mehr geändert werden."))
    customer = item.customer
    customer_id = parse_id(str(customer.id if customer is not None else item.customer_id))
    with db.session.no_autoflush:
        if customer_id is None or (customer is not None and not sa_inspect(customer).persistent) or \
                db.session.get(Customer, customer_id) is None:
            raise ValueError(_("Bitte eine vorhandene Kund:in wählen."))


def check_invoice_delete(item: Invoice) -> None:
    if item.status != "draft":
        raise ValueError(_("Nur Entwürfe können gelöscht werden."))


def check_line_write(item: InvoiceLine) -> None:
    """A line is added, changed or deleted on a draft only; a bonus line only through its reward;
    no zero quantity; only a configured VAT rate."""
    if item.invoice is not None and item.invoice.status != "draft":
        raise ValueError(_("Eine ausgestellte Rechnung kann nicht mehr geändert werden."))
    if item.bonus_transaction_id is not None:
        raise ValueError(_("Eine Bonus-Position ändert sich nur über „Prämie zurücknehmen“ auf der Rechnung."))
    if item.quantity is not None and item.quantity == 0:
        raise ValueError(_("Die Menge darf nicht 0 sein."))
    for value in (item.quantity, item.unit_price):
        if value is not None and not (Decimal(value).is_finite() and abs(Decimal(value)) <= MAX_AMOUNT):
            raise ValueError(_("Menge und Einzelpreis dürfen höchstens 99.999.999,99 betragen."))
    if item.position is not None and not 1 <= item.position <= MAX_POSITION:
        raise ValueError(_("Die Position muss zwischen 1 und %(max)s liegen.", max=MAX_POSITION))
    rates = vat_rates(db.session)
    if item.vat_rate is not None and Decimal(item.vat_rate) not in rates:
        raise ValueError(_("Erlaubte Mehrwertsteuersätze: %(rates)s %%.",
                           rates=", ".join(fmt_rate(rate) for rate in rates)))


class InvoiceLineView(SecureModelView):
    datamodel = EagerInterface(InvoiceLine, eager=("invoice",))
    list_title = _l("Rechnungspositionen")
    show_title = add_title = edit_title = _l("Rechnungsposition")
    list_columns = ["invoice", "position", "description", "quantity", "unit_price", "gross_pricing", "vat_rate"]
    add_columns = edit_columns = [
        "invoice", "position", "description", "quantity", "unit_price", "gross_pricing", "vat_rate",
    ]
    base_order = ("position", "asc")
    label_columns = {
        "invoice": _l("Rechnung"), "position": _l("Pos."), "description": _l("Beschreibung"), "quantity": _l("Menge"),
        "unit_price": _l("Einzelpreis"), "gross_pricing": _l("Preis inkl. MwSt."), "vat_rate": _l("MwSt. (%)"),
        "booking": _l("Termin"), "pass_card": _l("Mehrfachkarte"), "bonus_transaction": _l("Bonusprämie"),
    }
    formatters_columns = {"unit_price": fmt_money}
    # Consumer prices include VAT (PAngV): a new line is gross-priced unless unticked.
    add_form_extra_fields = edit_form_extra_fields = {
        "gross_pricing": checkbox(_l("Preis inkl. MwSt."), default=True),
    }
    validators_columns = {"vat_rate": [vat_rate()]}

    def check_write(self, item: InvoiceLine) -> None:
        check_line_write(item)

    def pre_delete(self, item: InvoiceLine) -> None:
        self.check_write(item)


def _int(pk) -> int | None:
    return parse_id(str(pk))


# --- "Offene Posten": the `payment` filter column and the open amounts ---------------------
class PaymentFilter(BaseFilter):
    """`_flt_0_payment=open|paid` (lens_service.payment_clause); any other value: no invoice."""

    name = _l("ist")
    arg_name = "tb_payment"

    def apply(self, query, value):
        return query.filter(lens_service.payment_clause(value))


class InvoiceLensInterface(EagerInterface):
    """The invoice list's data model with the `payment` filter column (not a column of the model)."""

    custom_filters = {**EagerInterface.custom_filters, PAYMENT_COLUMN: (PaymentFilter,)}


PAYMENT_SEARCH_FIELD = SelectField(_l("Zahlung"), widget=Select2Widget(),
                                   choices=[("open", _l("offen")), ("paid", _l("bezahlt"))])


def open_items_on() -> bool:
    """Whether the current request's list arguments select the open items (`payment=open`)."""
    return any(value == "open" for key, values in request.args.lists() if PAYMENT_ARG.match(key)
               for value in values)


CONFIRM_TITLES = {
    "issue": _l("Rechnung ausstellen"), "cancel": _l("Rechnung stornieren"), "payment": _l("Zahlung erfassen"),
}


class InvoiceView(ExportMixin, SecureModelView):
    # lines: the export's totals read them for every row (one SELECT per page, not one per invoice)
    # + the `payment` filter column of the "Offene Posten" lens
    datamodel = InvoiceLensInterface(Invoice, eager=("customer", "lines"))
    # "Rechnungen" as CSV/XLSX (the list's filters and order): the Manager's and Owner's
    export_columns = ["number", "customer", "status", "issued_at", "paid_at", "total_net", "total_vat",
                      "total_gross", "recipient_name"]
    export_formatters = {"status": lambda s: INVOICE_STATUSES.get(s, s)}
    export_name = "rechnungen"
    list_title = _l("Rechnungen")
    show_title = add_title = edit_title = _l("Rechnung")
    list_columns = ["number", "customer", "status", "created_at", "issued_at", "paid_at"]
    order_columns = ["number", "created_at", "issued_at", "paid_at"]
    search_columns = ["number", "status", "issued_at", "paid_at", PAYMENT_COLUMN]
    search_form_extra_fields = {PAYMENT_COLUMN: PAYMENT_SEARCH_FIELD}
    add_columns = ["customer", "note"]
    edit_columns = ["customer", "note"]
    show_columns = ["number", "customer", "status", "created_at", "issued_at", "paid_at", "note"]
    base_order = ("created_at", "desc")
    label_columns = {
        "number": _l("Nummer"), "customer": _l("Kund:in"), "status": _l("Status"), "created_at": _l("Erstellt am"),
        "issued_at": _l("Ausgestellt am"), "paid_at": _l("Bezahlt am"), "note": _l("Hinweis"),
        "recipient_name": _l("Rechnungsempfänger:in"), "recipient_address": _l("Anschrift der Empfänger:in"),
        "total_net": _l("Netto"), "total_vat": _l("MwSt."), "total_gross": _l("Brutto"),
        "year": _l("Jahr"), "sequence": _l("Laufende Nummer"), "cancels": _l("Storniert Rechnung"),
        PAYMENT_COLUMN: _l("Zahlung"), OPEN_AMOUNT_COLUMN: _l("Offener Betrag"),
    }
    formatters_columns = {
        "status": lambda s: INVOICE_STATUSES.get(s, s),
        "created_at": fmt_datetime, "issued_at": fmt_datetime, "paid_at": fmt_datetime,
        "total_net": fmt_money, "total_vat": fmt_money, "total_gross": fmt_money,
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "customer": ajax_field(_l("Kund:in"), Customer, "customer", "/customerview/lookup"),
    }
    related_views = [InvoiceLineView]
    show_template = "terminbuch/invoice_show.html"
    list_template = "terminbuch/invoice_list.html"  # list_export.html + the sum of the open items

    def edit_url(self, pk) -> str | None:
        invoice = db.session.get(Invoice, _int(pk))
        if invoice is not None and invoice.status != "draft":
            return None  # an issued invoice is never edited
        return super().edit_url(pk)

    def render_template(self, template, **kwargs):
        if template == self.show_template and "pk" in kwargs:
            kwargs["invoice"] = db.session.get(Invoice, _int(kwargs["pk"]))
            kwargs["fmt_rate"], kwargs["money"] = fmt_rate, fmt_money
            kwargs["can"] = {name: self.appbuilder.sm.has_access(f"can_{name}", self.class_permission_name)
                             for name in ("issue", "cancel", "payment", "reward")}
            invoice = kwargs["invoice"]
            if invoice is not None and invoice.status == "draft" and kwargs["can"]["reward"]:
                kwargs["bonus_overview"] = program_overview(db.session, invoice.customer_id)
        if template == self.list_template:
            kwargs.setdefault("open_items", g.pop("_tb_open_items", None))
        return super().render_template(template, **kwargs)

    def _get_list_widget(self, filters, *args, **kwargs):
        """On the "Offene Posten" lens (`payment=open`): the open amount (gross total) per row and
        the sum of all rows of the filtered list, every page — one query of their lines."""
        widgets = super()._get_list_widget(filters, *args, **kwargs)
        widget = widgets.get("list")
        if widget is None or not has_request_context() or request.endpoint != f"{type(self).__name__}.list" \
                or not open_items_on():
            return widgets
        joined = filters.get_joined_filters(self._base_filters)  # the list's filters and row rules
        ids = self.datamodel.apply_filters(db.session.query(Invoice.id), joined).statement
        totals = lens_service.gross_totals(db.session, ids)
        template_args = widget.template_args
        pks = [int(pk) for pk in template_args.get("pks") or []]
        _add_column(template_args, pks, OPEN_AMOUNT_COLUMN, _("Offener Betrag"),
                    lambda pk: fmt_money(totals.get(pk, ZERO)))
        g._tb_open_items = {"total": fmt_money(sum(totals.values(), ZERO)), "count": template_args.get("count", 0)}
        return widgets

    def _visible_invoice(self, pk) -> Invoice:
        """The invoice of the URL with the row rules: 400 on junk, 404 when missing or hidden."""
        invoice_id = parse_id(str(pk))
        if invoice_id is None:
            abort(400)
        invoice = db.session.scalar(restrict(select(Invoice).where(Invoice.id == invoice_id), Invoice))
        if invoice is None:
            abort(404)
        return invoice

    def _confirm(self, invoice: Invoice, action: str, error: str | None = None, status: int = 200):
        return self.render_template("terminbuch/invoice_confirm.html", title=CONFIRM_TITLES[action],
                                    invoice=invoice, action=action, error=error, fmt_rate=fmt_rate,
                                    money=fmt_money), status

    def _done(self, invoice: Invoice, message: str):
        db.session.commit()
        flash(message, "success")
        return redirect(url_for(f"{type(self).__name__}.show", pk=invoice.id))

    def _run(self, invoice: Invoice, action: str, change, message):
        """The second step of a confirmation: do it in one transaction, or show why not."""
        try:
            result = change()
        except ValueError as exc:
            db.session.rollback()
            return self._confirm(db.session.get(Invoice, invoice.id), action, str(exc))
        return self._done(result or invoice, message(result or invoice))

    def _confirmed(self, pk, action: str, refused: str, change, message):
        """A step that needs its confirmation: the first POST (or GET) shows it, `confirm=1` runs it."""
        invoice = self._visible_invoice(pk)
        if request.method == "GET" or request.form.get("confirm") != "1":
            return self._confirm(invoice, action, refused if request.method == "POST" else None)
        return self._run(invoice, action, lambda: change(invoice), message)

    @expose("/issue/<pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("issue")
    def issue(self, pk):
        """"Ausstellen"."""
        return self._confirmed(pk, "issue", _("Bitte das Ausstellen bestätigen."),
                               lambda invoice: issue_invoice(db.session, invoice),
                               lambda done: _("Rechnung %(number)s ausgestellt.", number=done.number))

    @expose("/cancel/<pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("cancel")
    def cancel(self, pk):
        """"Stornieren": creates and issues the cancellation invoice."""
        return self._confirmed(pk, "cancel", _("Bitte das Stornieren bestätigen."),
                               lambda invoice: cancel_invoice(db.session, invoice),
                               lambda done: _("Stornorechnung %(number)s ausgestellt.", number=done.number))

    @expose("/payment/<pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("payment")
    def payment(self, pk):
        """"Als bezahlt markieren" (paid=1) / "Als unbezahlt markieren" (paid=0)."""
        invoice = self._visible_invoice(pk)
        paid = request.form.get("paid") if request.method == "POST" else None
        if paid not in ("0", "1"):
            error = _("Bitte bezahlt oder unbezahlt wählen.") if request.method == "POST" else None
            return self._confirm(invoice, "payment", error)
        return self._run(invoice, "payment", lambda: set_paid(db.session, invoice, paid == "1"),
                         lambda done: _("Als bezahlt markiert.") if paid == "1" else _("Als unbezahlt markiert."))

    @expose("/reward/<pk>", methods=["POST"])
    @has_access
    @permission_name("reward")
    def reward(self, pk):
        """"Prämie einlösen" (program=<id>) or, with undo=1, "Prämie zurücknehmen" on a draft:
        discount lines paid for by the customer's points (app/services/bonus.py)."""
        invoice = self._visible_invoice(pk)
        try:
            if request.form.get("undo") == "1":
                take_back_invoice_reward(db.session, invoice)
                message = _("Prämie zurückgenommen: die Punkte sind wieder gutgeschrieben.")
            else:
                program = chosen_program()
                redeem_on_invoice(db.session, invoice, program)
                message = _("Prämie „%(reward)s“ eingelöst.", reward=program.reward_name)
        except BonusRefused as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for(f"{type(self).__name__}.show", pk=invoice.id))
        return self._done(invoice, message)

    @expose("/lines/<pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("edit")
    def billable(self, pk):
        """"Positionen übernehmen": completed, not yet invoiced bookings and sold pass cards of the
        draft's customer as lines (the user ticks which)."""
        invoice = self._visible_invoice(pk)
        error = None
        if request.method == "POST":
            booking_ids = [parse_id(value) for value in request.form.getlist("booking")]
            card_ids = [parse_id(value) for value in request.form.getlist("card")]
            if None in booking_ids or None in card_ids:
                abort(400)
            try:
                lines = add_billable_lines(db.session, invoice, booking_ids, card_ids)
            except ValueError as exc:
                db.session.rollback()
                invoice, error = db.session.get(Invoice, invoice.id), str(exc)
            else:
                return self._done(invoice, _("%(count)s Positionen übernommen.", count=len(lines)))
        draft = invoice.status == "draft"
        return self.render_template(
            "terminbuch/invoice_billable.html", title=_("Positionen übernehmen"), invoice=invoice, error=error,
            bookings=billable_bookings(db.session, invoice.customer_id) if draft else [],
            cards=billable_cards(db.session, invoice.customer_id) if draft else [],
            fmt_datetime=fmt_datetime, money=fmt_money,
        )

    @expose("/print/<pk>", methods=["GET"])
    @has_access
    @permission_name("show")
    def print_view(self, pk):
        """The printable invoice (A4, print CSS)."""
        invoice = self._visible_invoice(pk)
        return self.render_template(
            "terminbuch/invoice_print.html", invoice=invoice, fmt_rate=fmt_rate, money=fmt_money,
            issued_on=fmt_date(to_local(invoice.issued_at)) if invoice.issued_at else None,
            business_name=setting_text(db.session, "business_name"),
            business_address=setting_text(db.session, "business_address"),
            title=str(invoice),
        )

    @expose("/pdf/<pk>", methods=["GET"])
    @has_access
    @permission_name("show")
    def pdf(self, pk):
        """The invoice as an A4 PDF (the printable view's content, app/services/invoice_pdf.py)."""
        invoice = self._visible_invoice(pk)
        data = invoice_pdf(invoice, setting_text(db.session, "business_name"),
                           setting_text(db.session, "business_address"))
        name = invoice.number or f"Entwurf-{invoice.id}"
        response = Response(data, mimetype="application/pdf")
        response.headers["Content-Disposition"] = f'inline; filename="Rechnung-{name}.pdf"'
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @expose("/draft", methods=["GET", "POST"])
    @has_access
    @permission_name("add")
    def draft(self):
        """"Rechnung erstellen" from the customer file: confirm, then a draft for that customer
        opens (its lines are added on the draft's page)."""
        from app.views.documents import visible_customer

        customer_id = request.form.get("customer") if request.method == "POST" else request.args.get("customer")
        customer = visible_customer(customer_id)
        error = None
        if request.method == "POST":
            if customer is None:
                error = _("Bitte eine Kund:in wählen.")
            else:
                invoice = Invoice(customer=customer)
                db.session.add(invoice)
                db.session.commit()
                flash(_("Rechnungsentwurf für %(name)s angelegt: jetzt die Positionen hinzufügen.",
                        name=customer.display_name), "success")
                return redirect(url_for(f"{type(self).__name__}.show", pk=invoice.id))
        return self.render_template("terminbuch/invoice_draft.html", title=_("Rechnung erstellen"),
                                    customer=customer, error=error)

    def check_write(self, item: Invoice) -> None:
        super().check_write(item)
        check_invoice_write(item)

    def pre_delete(self, item: Invoice) -> None:
        check_invoice_delete(item)


# --- REST API: /api/v1/invoice/, /api/v1/invoice_line/ ----------------------------------------
class InvoiceWriteApi(SecureApi):
    """Writes through the API pass the screens' rules (check_invoice_write, check_line_write,
    check_invoice_delete) and the model guard underneath: a refusal answers 400 with the German
    message alone (FAB would prefix "400 Bad Request: ", and answer the guard's ValueError with
    500); nothing is stored. Status, number and payment are not writable here: issuing, Storno
    and payment go through InvoiceView's routes."""

    def _answer(self, write, *args):
        try:
            return write(*args)
        except ValueError as exc:  # the before_flush guard (e.g. a line moved out of an issued invoice)
            if str(exc) != str(IMMUTABLE_MESSAGE):
                raise
            db.session.rollback()
            return self.response_400(message=str(exc))


class InvoiceApi(InvoiceWriteApi):
    resource_name = "invoice"
    datamodel = SQLAInterface(Invoice)
    list_columns = ["id", "number", "status", "customer_id", "created_at", "issued_at", "paid_at"]
    show_columns = list_columns + [
        "note", "cancels_id", "recipient_name", "recipient_address", "total_net", "total_vat", "total_gross",
    ]
    add_columns = edit_columns = ["customer", "note"]
    order_columns = ["number", "created_at", "issued_at", "paid_at"]
    # the foreign keys, not the relations: FAB looks a relation filter's value up unchecked (a 500 on
    # PostgreSQL for `value:abc`); an integer column's junk value becomes NULL and matches nothing
    search_columns = ["number", "status", "customer_id", "issued_at", "paid_at"]
    base_order = ("created_at", "desc")
    visible_relations = {"customer": Customer}

    def check_write(self, item: Invoice) -> None:
        super().check_write(item)
        check_invoice_write(item)

    def pre_delete(self, item: Invoice) -> None:
        try:
            check_invoice_delete(item)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc


class InvoiceLineApi(InvoiceWriteApi):
    resource_name = "invoice_line"
    datamodel = SQLAInterface(InvoiceLine)
    list_columns = ["id", "invoice_id", "position", "description", "quantity", "unit_price", "vat_rate",
                    "gross_pricing"]
    show_columns = list_columns + ["booking_id", "pass_card_id", "bonus_transaction_id", "net", "vat", "gross"]
    add_columns = edit_columns = [
        "invoice", "position", "description", "quantity", "unit_price", "vat_rate", "gross_pricing",
    ]
    order_columns = ["position"]
    search_columns = ["invoice_id", "description"]
    base_order = ("position", "asc")
    visible_relations = {"invoice": Invoice}

    def check_write(self, item: InvoiceLine) -> None:
        super().check_write(item)
        check_line_write(item)

    def pre_add(self, item: InvoiceLine) -> None:
        if item.gross_pricing is None:  # not sent: gross-priced, like the screen's form (consumer prices, PAngV)
            item.gross_pricing = True
        super().pre_add(item)
