"""Datenschutz (GDPR) for the Owner: "Datenauskunft" as JSON/XLSX download and
"Löschen auf Anfrage" with a confirmation step and the erasure report
(app/services/gdpr.py does the work). No menu entry: the buttons sit on the customer
file (terminbuch/customer_gdpr_buttons.html). Every other role gets 403 (app/security.py)."""
from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import xlsxwriter
from flask import abort, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.extensions import db
from app.formatting import business_tz, fmt_datetime
from app.models import Customer, CustomerErasure
from app.security import row_filters
from app.services.gdpr import ErasureRefused, erase_customer, erasure_preview, export_json, export_sheets
from app.services.history import user_names
from app.views.export import MIMETYPES, XLSX_DATETIME, guard_formula, write_xlsx_cell
from app.views.validators import parse_id

CONFIRM_WORD = "LÖSCHEN"
SHEET_NAME_MAX = 31


def _filename(customer_id: int, fmt: str) -> str:
    """With the customer's id and the date, never the name."""
    return f"datenauskunft_kunde_{customer_id}_{datetime.now(business_tz()):%Y-%m-%d}.{fmt}"


def _sheet_name(name: str, used: set[str]) -> str:
    base = name[:SHEET_NAME_MAX]
    candidate, number = base, 2
    while candidate in used:
        suffix = f"~{number}"
        candidate, number = base[:SHEET_NAME_MAX - len(suffix)] + suffix, number + 1
    used.add(candidate)
    return candidate


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return None
    return value


def build_xlsx(customer_id: int) -> bytes:
    """One sheet per table (the history tables included), formula injection guarded."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    formats = {
        "header": workbook.add_format({"bold": True}),
        "datetime": workbook.add_format({"num_format": XLSX_DATETIME}),
        "date": workbook.add_format({"num_format": "DD.MM.YYYY"}),
        "money": None,
    }
    used: set[str] = set()
    for name, columns, rows in export_sheets(db.session, customer_id):
        sheet = workbook.add_worksheet(_sheet_name(name, used))
        for col, header in enumerate(columns):
            sheet.write_string(0, col, guard_formula(header), formats["header"])
            sheet.set_column(col, col, max(12, min(len(header) + 4, 40)))
        for number, row in enumerate(rows, start=1):
            for col, key in enumerate(columns):
                write_xlsx_cell(sheet, number, col, _xlsx_value(row.get(key)), False, formats)
        sheet.freeze_panes(1, 0)
    workbook.close()
    return buffer.getvalue()


class GdprView(BaseView):
    """Owner only: Datenauskunft (JSON, XLSX) and Löschen auf Anfrage."""

    route_base = "/datenschutz"
    default_view = "erase"

    def __init__(self):
        super().__init__()
        # The row rules of customers: the same lookup every customer screen uses.
        self.datamodel = SQLAInterface(Customer)
        self._base_filters = self.datamodel.get_filters().add_filter_list(row_filters())

    def _customer(self, pk: str) -> Customer:
        """400 for a junk id, 404 when missing or hidden by the row rules."""
        number = parse_id(pk)
        if number is None:
            abort(400)
        customer = self.datamodel.get(number, self._base_filters)
        if customer is None:
            abort(404)
        return customer

    # --- Datenauskunft ------------------------------------------------------------
    @expose("/<pk>/auskunft.json")
    @has_access
    @permission_name("export_data")
    def export_json(self, pk):
        customer = self._customer(pk)
        response = Response(export_json(db.session, customer.id), mimetype="application/json; charset=utf-8")
        response.headers["Content-Disposition"] = f'attachment; filename="{_filename(customer.id, "json")}"'
        return response

    @expose("/<pk>/auskunft.xlsx")
    @has_access
    @permission_name("export_data")
    def export_xlsx(self, pk):
        customer = self._customer(pk)
        return send_file(io.BytesIO(build_xlsx(customer.id)), mimetype=MIMETYPES["xlsx"], as_attachment=True,
                         download_name=_filename(customer.id, "xlsx"))

    # --- Löschen auf Anfrage --------------------------------------------------------
    @expose("/<pk>/loeschen", methods=["GET", "POST"])
    @has_access
    @permission_name("erase")
    def erase(self, pk):
        """GET: what will be anonymized and what is retained (or, once erased, the report).
        POST (CSRF) with the confirmation word: erase in one transaction, then the report."""
        customer = self._customer(pk)
        if customer.erased_at is not None:
            if request.method == "POST":
                return self.render_report(customer, error=_(
                    "Diese Kund:in wurde bereits auf Anfrage gelöscht; es wurde nichts geändert."))
            return self.render_report(customer)
        if request.method == "GET":
            return self.render_confirm(customer)
        if (request.form.get("confirm") or "").strip().upper() != CONFIRM_WORD:
            return self.render_confirm(customer, error=_(
                "Bitte zur Bestätigung %(word)s in das Feld eintragen. Es wurde nichts gelöscht.", word=CONFIRM_WORD))
        customer_id = customer.id
        try:
            erasure = erase_customer(db.session, customer_id)
            db.session.commit()
        except ErasureRefused as exc:
            db.session.rollback()
            return self.render_confirm(self._customer(str(customer_id)), error=str(exc))
        if erasure.retained:
            flash(_("Die Kund:in wurde anonymisiert. Gesetzlich aufzubewahrende Rechnungen sind unverändert "
                    "geblieben."), "success")
        else:
            flash(_("Die Kund:in wurde anonymisiert."), "success")
        return redirect(url_for(f"{self.endpoint}.erase", pk=customer_id))

    def render_confirm(self, customer: Customer, error: str | None = None):
        preview = erasure_preview(db.session, customer.id)
        return self.render_template(
            "terminbuch/gdpr_confirm.html", title=_("Löschen auf Anfrage"), customer=customer,
            counts=preview["counts"], retained=preview["retained"], error=error, word=CONFIRM_WORD,
            table_labels=table_labels(),
        )

    def render_report(self, customer: Customer, error: str | None = None):
        erasure = db.session.scalars(select(CustomerErasure).where(CustomerErasure.customer_id == customer.id)
                                     .order_by(CustomerErasure.id.desc())).first()
        who = user_names(db.session, [erasure.erased_by_id]).get(erasure.erased_by_id) if erasure else None
        return self.render_template(
            "terminbuch/gdpr_report.html", title=_("Löschbericht"), customer=customer, erasure=erasure,
            who=who or _("Unbekannt"), error=error, table_labels=table_labels(), fmt_datetime=fmt_datetime,
        )


def table_labels() -> dict[str, str]:
    """German names of the tables on the confirmation page and in the report."""
    return {
        "customer": _("Kund:in (Stammdaten)"), "pet": _("Hunde"), "booking": _("Termine"),
        "document": _("Dokumente"), "notification_log": _("Benachrichtigungen"),
        "bonus_transaction": _("Bonuspunkte"), "invoice": _("Rechnungsentwürfe"),
        "invoice_line": _("Positionen von Rechnungsentwürfen"), "pass_card": _("Mehrfachkarten"),
        "pass_redemption": _("Einlösungen"), "duplicate_dismissal": _("„Keine Dublette“-Vermerke"),
        "customer_merge": _("Zusammenführungen"), "customer_erasure": _("Löschprotokoll"),
    }
