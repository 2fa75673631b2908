"""The customer list's "Adressen geokodieren" (Manager and Owner) and the geocoding status
column on the "Adresse nicht gefunden" lens. Geocoding itself runs as a job, never here."""
from __future__ import annotations

from flask import flash, has_request_context, redirect
from flask_appbuilder.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.extensions import db
from app.models import Customer
from app.models.customers import CUSTOMER_LABELS, GEOCODE_STATUSES
from app.services.geocoding import enqueue_geocoding, needs_geocoding
from app.services.lenses import GEOCODE_FAILED_KEY
from app.views.lenses import _add_column, active_lens_keys

GEOCODE_ACTION = "geocode_addresses"  # also its permission name (app/security.py)


class GeocodeActionMixin:
    """CustomerView: queue the chosen customers without an exact position for geocoding."""

    @action(GEOCODE_ACTION, _l("Adressen geokodieren"),
            _l("Die Adressen der gewählten Kund:innen im Hintergrund geokodieren?"), "fa-map-marker",
            single=False)
    def geocode_addresses(self, items):
        """Items arrive re-fetched with the row rules (SecureModelView.action_post)."""
        items = items if isinstance(items, list) else [items]
        ids = [customer.id for customer in items if needs_geocoding(customer)]
        enqueue_geocoding(db.session, ids)
        db.session.commit()  # the jobs go out with the commit
        flash(_("%(count)d Adressen zum Geokodieren eingereiht.", count=len(ids)), "success")
        if len(items) > len(ids):
            flash(_("%(count)d übersprungen: ohne Anschrift oder schon gefunden.", count=len(items) - len(ids)),
                  "info")
        return redirect(self.get_redirect())

    def _get_list_widget(self, filters, *args, **kwargs):
        widgets = super()._get_list_widget(filters, *args, **kwargs)
        widget = widgets.get("list")
        if widget is None or not has_request_context() or GEOCODE_FAILED_KEY not in active_lens_keys():
            return widgets
        pks = [int(pk) for pk in widget.template_args.get("pks") or []]
        rows = dict(db.session.execute(select(Customer.id, Customer.geocode_status).where(Customer.id.in_(pks))
                                       ).all()) if pks else {}
        _add_column(widget.template_args, pks, "geocode_status", str(CUSTOMER_LABELS["geocode_status"]),
                    lambda pk: str(GEOCODE_STATUSES.get(rows.get(pk), rows.get(pk) or "")))
        return widgets
