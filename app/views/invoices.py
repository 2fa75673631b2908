"""Rechnungen."""
from __future__ import annotations

from app.formatting import fmt_datetime, fmt_money
from app.models import Customer, Invoice, InvoiceLine
from app.models.invoices import INVOICE_STATUSES
from app.views.base import SecureModelView, ajax_field
from app.views.interface import EagerInterface
from app.views.validators import vat_rate


class InvoiceLineView(SecureModelView):
    datamodel = EagerInterface(InvoiceLine, eager=("invoice",))
    list_title = "Rechnungspositionen"
    show_title = add_title = edit_title = "Rechnungsposition"
    list_columns = ["invoice", "position", "description", "quantity", "unit_price", "vat_rate"]
    add_columns = edit_columns = ["invoice", "position", "description", "quantity", "unit_price", "vat_rate"]
    base_order = ("position", "asc")
    label_columns = {
        "invoice": "Rechnung", "position": "Pos.", "description": "Beschreibung", "quantity": "Menge",
        "unit_price": "Einzelpreis (netto)", "vat_rate": "MwSt. (%)",
    }
    formatters_columns = {"unit_price": fmt_money}
    validators_columns = {"vat_rate": [vat_rate()]}

    def check_write(self, item: InvoiceLine) -> None:
        if item.invoice is not None and item.invoice.status != "draft":
            raise ValueError("Eine ausgestellte Rechnung kann nicht mehr geändert werden.")
        if item.quantity is not None and item.quantity == 0:
            raise ValueError("Die Menge darf nicht 0 sein.")

    def pre_delete(self, item: InvoiceLine) -> None:
        self.check_write(item)


class InvoiceView(SecureModelView):
    datamodel = EagerInterface(Invoice, eager=("customer",))
    list_title = "Rechnungen"
    show_title = add_title = edit_title = "Rechnung"
    list_columns = ["number", "customer", "status", "created_at", "issued_at", "paid_at"]
    order_columns = ["number", "created_at", "issued_at", "paid_at"]
    search_columns = ["number", "status", "issued_at", "paid_at"]
    add_columns = ["customer", "note"]
    edit_columns = ["customer", "note"]
    show_columns = ["number", "customer", "status", "created_at", "issued_at", "paid_at", "note"]
    base_order = ("created_at", "desc")
    label_columns = {
        "number": "Nummer", "customer": "Kund:in", "status": "Status", "created_at": "Erstellt am",
        "issued_at": "Ausgestellt am", "paid_at": "Bezahlt am", "note": "Hinweis",
    }
    formatters_columns = {
        "status": lambda s: INVOICE_STATUSES.get(s, s),
        "created_at": fmt_datetime, "issued_at": fmt_datetime, "paid_at": fmt_datetime,
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "customer": ajax_field("Kund:in", Customer, "customer", "/customerview/lookup"),
    }
    related_views = [InvoiceLineView]
    show_template = "appbuilder/general/model/show_cascade.html"

    def check_write(self, item: Invoice) -> None:
        super().check_write(item)
        if item.id is not None and item.status != "draft":
            raise ValueError("Eine ausgestellte Rechnung kann nicht mehr geändert werden.")

    def pre_delete(self, item: Invoice) -> None:
        if item.status != "draft":
            raise ValueError("Nur Entwürfe können gelöscht werden.")
