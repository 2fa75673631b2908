"""Rechnungen."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.extensions import db
from app.formatting import fmt_datetime, fmt_money
from app.models import Customer, Invoice, InvoiceLine
from app.models.invoices import INVOICE_STATUSES
from app.views.base import SecureModelView, ajax_field
from app.views.interface import EagerInterface
from app.views.validators import vat_rate


class InvoiceLineView(SecureModelView):
    datamodel = EagerInterface(InvoiceLine, eager=("invoice",))
    list_title = _l("Rechnungspositionen")
    show_title = add_title = edit_title = _l("Rechnungsposition")
    list_columns = ["invoice", "position", "description", "quantity", "unit_price", "vat_rate"]
    add_columns = edit_columns = ["invoice", "position", "description", "quantity", "unit_price", "vat_rate"]
    base_order = ("position", "asc")
    label_columns = {
        "invoice": _l("Rechnung"), "position": _l("Pos."), "description": _l("Beschreibung"), "quantity": _l("Menge"),
        "unit_price": _l("Einzelpreis (netto)"), "vat_rate": _l("MwSt. (%)"),
        "booking": _l("Termin"), "pass_card": _l("Mehrfachkarte"),
    }
    formatters_columns = {"unit_price": fmt_money}
    validators_columns = {"vat_rate": [vat_rate()]}

    def check_write(self, item: InvoiceLine) -> None:
        if item.invoice is not None and item.invoice.status != "draft":
            raise ValueError(_("Eine ausgestellte Rechnung kann nicht mehr geändert werden."))
        if item.quantity is not None and item.quantity == 0:
            raise ValueError(_("Die Menge darf nicht 0 sein."))

    def pre_delete(self, item: InvoiceLine) -> None:
        self.check_write(item)


class InvoiceView(SecureModelView):
    datamodel = EagerInterface(Invoice, eager=("customer",))
    list_title = _l("Rechnungen")
    show_title = add_title = edit_title = _l("Rechnung")
    list_columns = ["number", "customer", "status", "created_at", "issued_at", "paid_at"]
    order_columns = ["number", "created_at", "issued_at", "paid_at"]
    search_columns = ["number", "status", "issued_at", "paid_at"]
    add_columns = ["customer", "note"]
    edit_columns = ["customer", "note"]
    show_columns = ["number", "customer", "status", "created_at", "issued_at", "paid_at", "note"]
    base_order = ("created_at", "desc")
    label_columns = {
        "number": _l("Nummer"), "customer": _l("Kund:in"), "status": _l("Status"), "created_at": _l("Erstellt am"),
        "issued_at": _l("Ausgestellt am"), "paid_at": _l("Bezahlt am"), "note": _l("Hinweis"),
        "recipient_name": _l("Rechnungsempfänger:in"), "recipient_address": _l("Anschrift der Empfänger:in"),
        "year": _l("Jahr"), "sequence": _l("Laufende Nummer"), "cancels": _l("Storniert Rechnung"),
    }
    formatters_columns = {
        "status": lambda s: INVOICE_STATUSES.get(s, s),
        "created_at": fmt_datetime, "issued_at": fmt_datetime, "paid_at": fmt_datetime,
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "customer": ajax_field(_l("Kund:in"), Customer, "customer", "/customerview/lookup"),
    }
    related_views = [InvoiceLineView]
    show_template = "appbuilder/general/model/show_cascade.html"

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
        if item.id is not None and item.status != "draft":
            raise ValueError(_("Eine ausgestellte Rechnung kann nicht mehr geändert werden."))

    def pre_delete(self, item: Invoice) -> None:
        if item.status != "draft":
            raise ValueError(_("Nur Entwürfe können gelöscht werden."))
