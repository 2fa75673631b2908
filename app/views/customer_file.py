"""Kundenakte: the customer's detail page with its tabs and its actions
("E-Mail senden", "Rechnung erstellen", Datenschutz)."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.extensions import db
from app.services.bonus import program_overview
from app.services.notifications import MAX_BODY, MAX_SUBJECT, MessageRefused, queue_customer_message
from app.views.documents import visible_customer
from app.views.validators import parse_id

# Tabs of the customer file in the order of the issue, named as the owner speaks of them.
TAB_LABELS = {
    "BookingView": _l("Termine"),
    "PassCardView": _l("Mehrfachkarten"),
    "PetView": _l("Hunde"),
    "BonusTransactionView": _l("Bonus"),
    "InvoiceView": _l("Rechnungen"),
    "DocumentView": _l("Dokumente"),
    "NotificationLogView": _l("Benachrichtigungen"),
}
SEND_EMAIL = "send_email"


class CustomerFileMixin:
    """For CustomerView: tab names and action buttons on the detail page, the e-mail form."""

    def render_template(self, template, **kwargs):
        if template == self.show_template and "pk" in kwargs:
            kwargs.update(detail_label=_("Stammdaten"), tab_labels=TAB_LABELS,
                          customer_actions=self.customer_actions(kwargs["pk"]))
            if self.appbuilder.sm.has_access("can_list", "BonusTransactionView"):
                customer = visible_customer(str(kwargs["pk"]))
                if customer is not None:
                    kwargs.update(related_heads={"BonusTransactionView": "terminbuch/customer_bonus.html"},
                                  bonus_overview=program_overview(db.session, customer.id))
        return super().render_template(template, **kwargs)

    def customer_actions(self, pk) -> dict[str, str | None]:
        """URLs of the actions the current user may take (None: not for this user/customer)."""
        sm = self.appbuilder.sm
        customer = visible_customer(str(pk))
        can_mail = sm.has_access(f"can_{SEND_EMAIL}", self.class_permission_name)
        return {
            "email": url_for(f"{type(self).__name__}.send_email", pk=pk) if can_mail else None,
            "email_missing": customer is not None and not customer.email,
            "invoice": url_for("InvoiceView.draft", customer=pk)
            if sm.has_access("can_add", "InvoiceView") else None,
            "erased": customer is not None and customer.erased_at is not None,
        }

    @expose("/email/<pk>", methods=["GET", "POST"])
    @has_access
    @permission_name(SEND_EMAIL)
    def send_email(self, pk):
        """Free text to the customer through the notification path: the log records that an
        e-mail went out, the subject and text travel with the job only."""
        if parse_id(pk) is None:
            abort(400)
        customer = visible_customer(pk)
        if customer is None:
            abort(404)
        subject = (request.form.get("subject") or "").strip()
        body = (request.form.get("body") or "").strip()
        error = None
        if request.method == "POST":
            try:
                queue_customer_message(db.session, customer, "message", subject, body)
                db.session.commit()
            except MessageRefused as exc:
                db.session.rollback()
                error = str(exc)
            else:
                flash(_("Die E-Mail an %(name)s wurde in den Versand gegeben.", name=customer.full_name), "success")
                return redirect(url_for(f"{type(self).__name__}.show", pk=customer.id))
        elif not customer.email:
            error = _("Für diese Kund:in ist keine E-Mail-Adresse hinterlegt.")
        return self.render_template(
            "terminbuch/customer_email.html", title=_("E-Mail senden"), customer=customer, subject=subject,
            body=body, error=error, max_subject=MAX_SUBJECT, max_body=MAX_BODY,
        )
