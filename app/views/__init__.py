"""register_views(): the only place that touches the menu."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.views.bonus import BonusProgramView, BonusTransactionView
from app.views.bookings import BookingApi, BookingStatusView, BookingView
from app.views.calendar import CalendarView, MyCalendarView
from app.views.cards import PassCardTypeView, PassCardView, PassRedemptionView
from app.views.customer_import import CustomerImportView
from app.views.customers import CustomerApi, CustomerView, DocumentView, PetApi, PetView
from app.views.duplicates import DuplicateView
from app.views.export import ExportFileView
from app.views.gdpr import GdprView
from app.views.history import HistoryView
from app.views.invoices import InvoiceApi, InvoiceLineApi, InvoiceLineView, InvoiceView
from app.views.jobs import JobMonitorView
from app.views.lenses import LensView, register_lens_templates
from app.views.map import CustomerMapView
from app.views.notifications import NotificationLogView
from app.views.reminders import ReminderOverviewView
from app.views.services import ResourceView, ServiceApi, ServiceView
from app.views.settings import SettingView
from app.views.staff import AbsenceView, EmployeeView, LocationView, WorkingHoursView
from app.views.status import OpenRequestsView


def N_(message: str) -> str:
    """Marks a string for `pybabel extract` without translating it."""
    return message


# (view, menu name, icon, category) in menu order. Name and category are permission
# names in the database (menu_access): they stay German; the menu shows them translated.
MENU = [
    (CustomerView, N_("Kunden"), "fa-address-book", N_("Kunden")),
    (PetView, N_("Hunde"), "fa-paw", N_("Kunden")),
    (DocumentView, N_("Dokumente"), "fa-file", N_("Kunden")),
    (NotificationLogView, N_("Benachrichtigungen"), "fa-envelope", N_("Kunden")),
    (LensView, N_("Linsen"), "fa-filter", N_("Kunden")),
    (CustomerMapView, N_("Karte"), "fa-map", N_("Kunden")),
    (DuplicateView, N_("Dubletten"), "fa-clone", N_("Kunden")),
    (CustomerImportView, N_("Kunden importieren"), "fa-upload", N_("Kunden")),
    (BookingView, N_("Termine"), "fa-calendar", N_("Termine")),
    (CalendarView, N_("Kalender"), "fa-calendar-o", N_("Termine")),
    (MyCalendarView, N_("Mein Kalender"), "fa-calendar-check-o", N_("Termine")),
    (OpenRequestsView, N_("Offene Anfragen"), "fa-inbox", N_("Termine")),
    (ReminderOverviewView, N_("Erinnerungsübersicht"), "fa-bell", N_("Termine")),
    (ServiceView, N_("Dienstleistungen"), "fa-cut", N_("Termine")),
    (ResourceView, N_("Räume & Ressourcen"), "fa-cube", N_("Termine")),
    (ExportFileView, N_("Meine Exporte"), "fa-download", N_("Termine")),
    (PassCardView, N_("Mehrfachkarten"), "fa-ticket", N_("Karten & Bonus")),
    (PassCardTypeView, N_("Kartentypen"), "fa-tags", N_("Karten & Bonus")),
    (BonusProgramView, N_("Bonusprogramme"), "fa-gift", N_("Karten & Bonus")),
    (BonusTransactionView, N_("Bonuspunkte"), "fa-star", N_("Karten & Bonus")),
    (InvoiceView, N_("Rechnungen"), "fa-file-text", N_("Karten & Bonus")),
    (EmployeeView, N_("Mitarbeiter:innen"), "fa-users", N_("Team")),
    (WorkingHoursView, N_("Arbeitszeiten"), "fa-clock-o", N_("Team")),
    (AbsenceView, N_("Abwesenheiten"), "fa-plane", N_("Team")),
    (LocationView, N_("Filialen"), "fa-building", N_("Team")),
    (BookingStatusView, N_("Terminstatus"), "fa-flag", N_("Einstellungen")),
    (SettingView, N_("Betriebseinstellungen"), "fa-cog", N_("Einstellungen")),
    (HistoryView, N_("Gelöschte Einträge"), "fa-trash", N_("Einstellungen")),
    (JobMonitorView, N_("Aufträge"), "fa-tasks", N_("Einstellungen")),
]
VIEWS_WITHOUT_MENU = [PassRedemptionView, InvoiceLineView, GdprView]
APIS = [CustomerApi, PetApi, BookingApi, ServiceApi, InvoiceApi, InvoiceLineApi]


def register_views(appbuilder) -> None:
    register_lens_templates()  # the lens tabs above the lists
    for view, name, icon, category in MENU:
        appbuilder.add_view(view, name, icon=icon, category=category, label=_l(name), category_label=_l(category))
    for view in VIEWS_WITHOUT_MENU:
        appbuilder.add_view_no_menu(view)
    for api in APIS:
        appbuilder.add_api(api)
