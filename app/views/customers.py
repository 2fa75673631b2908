"""Kunden, Hunde, Dokumente."""
from __future__ import annotations

from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField
from wtforms.validators import Email, Length, Optional

from app.formatting import fmt_date, fmt_datetime
from app.models import Customer, Document, Pet
from app.models.customers import (
    CUSTOMER_LABELS,
    CUSTOMER_LANGUAGES,
    EMOJI_MARKERS,
    EMOJI_MAX_LENGTH,
    GEOCODE_STATUSES,
)
from app.services.phone import phone_link
from app.views.base import LookupMixin, SecureApi, SecureModelView, ajax_field
from app.views.bonus import BonusTransactionView
from app.views.bookings import BookingView
from app.views.cards import PassCardView
from app.views.customer_file import CustomerFileMixin
from app.views.customer_metrics import (
    ACTIVE_SEARCH_FIELD,
    FILTER_COLUMN,
    ActiveCustomersMixin,
)
from app.views.documents import DocumentRoutesMixin
from app.views.export import ExportMixin
from app.views.geocoding import GeocodeActionMixin
from app.views.interface import EagerInterface
from app.views.invoices import InvoiceView
from app.views.lenses import FILTER_COLUMN as LENS_COLUMN
from app.views.lenses import LENS_SEARCH_FIELD, CustomerLensInterface, CustomerLensMixin
from app.views.notifications import NotificationLogView
from app.views.validators import UniqueValue, blank_to_none, checkbox, stripped

CUSTOMER_LOOKUP = "/customerview/lookup"


def _emoji_marker_description() -> str:
    """Built per request (a lazy string joined at import time would freeze the language)."""
    markers = ", ".join(f"{emoji} {meaning}" for emoji, meaning in EMOJI_MARKERS.items())
    return _("Ein Emoji vor dem Namen: %(markers)s", markers=markers)




class PetView(SecureModelView):
    datamodel = EagerInterface(Pet, eager=("customer",))
    list_title = _l("Hunde")
    show_title = add_title = edit_title = _l("Hund")
    list_columns = ["name", "breed", "customer", "birth_date"]
    search_columns = ["name", "breed"]
    add_columns = edit_columns = ["customer", "name", "species", "breed", "birth_date", "notes"]
    show_columns = ["name", "species", "breed", "customer", "birth_date", "notes"]
    base_order = ("name", "asc")
    label_columns = {
        "name": _l("Name"), "species": _l("Tierart"), "breed": _l("Rasse"), "customer": _l("Halter:in"),
        "birth_date": _l("Geburtsdatum"), "notes": _l("Notizen"),
    }
    formatters_columns = {"birth_date": fmt_date}
    add_form_extra_fields = edit_form_extra_fields = {
        "customer": ajax_field(_l("Halter:in"), Customer, "customer", CUSTOMER_LOOKUP),
    }
    visible_relations = {"customer": Customer}


class DocumentView(DocumentRoutesMixin, SecureModelView):
    datamodel = EagerInterface(Document, eager=("customer",))
    list_title = _l("Dokumente")
    show_title = add_title = _l("Dokument")
    list_columns = ["title", "filename", "customer", "uploaded_at", "size_bytes"]
    show_columns = ["title", "filename", "content_type", "size_bytes", "customer", "uploaded_at"]
    search_columns = ["title", "filename"]
    base_order = ("uploaded_at", "desc")
    # Upload (add) and download are DocumentRoutesMixin's own routes; no edit: a new file is a new document.
    base_permissions = ["can_list", "can_show", "can_add", "can_delete", "can_download_file"]
    add_columns = ["customer", "title"]  # + the file; the customer is searched by AJAX, never a full <select>
    add_form_extra_fields = {"customer": ajax_field(_l("Kund:in"), Customer, "customer", CUSTOMER_LOOKUP)}
    label_columns = {
        "title": _l("Titel"), "filename": _l("Dateiname"), "customer": _l("Kund:in"),
        "uploaded_at": _l("Hochgeladen am"), "size_bytes": _l("Größe (Bytes)"), "content_type": _l("Dateityp"),
    }
    formatters_columns = {"uploaded_at": fmt_datetime}


class CustomerView(GeocodeActionMixin, CustomerLensMixin, CustomerFileMixin, ActiveCustomersMixin, ExportMixin,
                   LookupMixin, SecureModelView):
    datamodel = CustomerLensInterface(Customer)  # + the `lens` filter of the built-in lenses
    list_title = _l("Kunden")
    show_title = _l("Kundenakte")
    add_title = _l("Kund:in anlegen")
    edit_title = _l("Kund:in bearbeiten")
    list_columns = ["display_name", "email", "phone", "postal_code", "city", "created_at"]
    order_columns = ["email", "phone", "postal_code", "city", "created_at"]
    search_columns = [
        "last_name", "first_name", "email", "phone", "postal_code", "city", "emoji_marker", FILTER_COLUMN, LENS_COLUMN,
    ]
    search_form_extra_fields = {FILTER_COLUMN: ACTIVE_SEARCH_FIELD, LENS_COLUMN: LENS_SEARCH_FIELD}
    base_order = ("last_name", "asc")
    add_columns = edit_columns = [
        "first_name", "last_name", "emoji_marker", "email", "phone", "street", "postal_code",
        "city", "country", "birth_date", "consent_email", "consent_sms", "language", "referred_by", "notes",
    ]
    show_fieldsets = [
        (_l("Stammdaten"), {"fields": ["display_name", "email", "phone", "birth_date", "referred_by", "notes"]}),
        (_l("Adresse"), {"fields": ["street", "postal_code", "city", "country", "geocode_status"]}),
        (_l("Einwilligungen"), {"fields": ["consent_email", "consent_sms", "consent_at", "language", "created_at"]}),
    ]
    label_columns = CUSTOMER_LABELS
    export_columns = [
        "last_name", "first_name", "emoji_marker", "email", "phone", "street", "postal_code", "city", "country",
        "birth_date", "consent_email", "consent_sms", "created_at",
    ]
    export_name = "kunden"
    description_columns = {"emoji_marker": LazyString(_emoji_marker_description)}
    validators_columns = {
        "emoji_marker": [Length(max=EMOJI_MAX_LENGTH, message=_l("Höchstens %(max)d Zeichen."))],
        "email": [
            stripped,
            blank_to_none,
            Optional(),
            Email(message=_l("Bitte eine gültige E-Mail-Adresse angeben.")),
            UniqueValue(Customer.email, _l("Diese E-Mail-Adresse ist schon bei einer anderen Kund:in eingetragen."),
                        lower=True),
        ],
    }
    formatters_columns = {
        "created_at": fmt_datetime, "birth_date": fmt_date, "consent_at": fmt_datetime, "phone": phone_link,
        "geocode_status": lambda status: GEOCODE_STATUSES.get(status, status or ""),
        "language": lambda value: CUSTOMER_LANGUAGES.get(value, value),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "referred_by": ajax_field(_l("Empfohlen von"), Customer, "referred_by", CUSTOMER_LOOKUP, required=False),
        "consent_email": checkbox(CUSTOMER_LABELS["consent_email"]),
        "consent_sms": checkbox(CUSTOMER_LABELS["consent_sms"]),
        "language": SelectField(CUSTOMER_LABELS["language"], choices=list(CUSTOMER_LANGUAGES.items()), default="de",
                                widget=Select2Widget(), description=_l("Sprache der E-Mails und SMS an die Kund:in.")),
    }
    related_views = [
        BookingView, PassCardView, PetView, BonusTransactionView, InvoiceView, DocumentView,
        NotificationLogView,
    ]
    show_template = "terminbuch/customer_show.html"  # tabs Stammdaten … Verlauf, actions above
    lookup_columns = [Customer.last_name, Customer.first_name, Customer.email, Customer.phone]
    lookup_order = [Customer.last_name, Customer.first_name]

    def check_write(self, item: Customer) -> None:
        super().check_write(item)
        if item.id is not None and item.referred_by is not None and item.referred_by.id == item.id:
            raise ValueError(_("Eine Kund:in kann sich nicht selbst empfohlen haben."))

    def process_form(self, form, is_created):
        super().process_form(form, is_created)
        if form.email.data:
            form.email.data = form.email.data.strip().lower()
        if form.emoji_marker.data == "":
            form.emoji_marker.data = None


class CustomerApi(SecureApi):
    resource_name = "customer"
    datamodel = SQLAInterface(Customer)
    list_columns = ["id", "first_name", "last_name", "emoji_marker", "email", "phone", "city"]
    show_columns = list_columns + ["street", "postal_code", "notes", "referred_by_id"]
    add_columns = edit_columns = [
        "first_name", "last_name", "emoji_marker", "email", "phone", "street", "postal_code", "city", "notes",
    ]
    search_columns = ["last_name", "first_name", "email"]


class PetApi(SecureApi):
    resource_name = "pet"
    datamodel = SQLAInterface(Pet)
    list_columns = ["id", "name", "breed", "customer_id"]
    show_columns = list_columns + ["birth_date", "notes"]
    add_columns = edit_columns = ["name", "breed", "customer", "birth_date", "notes"]
    visible_relations = {"customer": Customer}
