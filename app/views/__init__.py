"""register_views(): the only place that touches the menu."""
from __future__ import annotations

from app.views.bonus import BonusProgramView, BonusTransactionView
from app.views.bookings import BookingApi, BookingStatusView, BookingView
from app.views.cards import PassCardTypeView, PassCardView, PassRedemptionView
from app.views.customers import CustomerApi, CustomerView, DocumentView, PetApi, PetView
from app.views.invoices import InvoiceLineView, InvoiceView
from app.views.notifications import NotificationLogView
from app.views.services import ResourceView, ServiceApi, ServiceView
from app.views.settings import LensView, SettingView
from app.views.staff import AbsenceView, EmployeeView, LocationView, WorkingHoursView

# (view, menu name, icon, category) in menu order
MENU = [
    (CustomerView, "Kunden", "fa-address-book", "Kunden"),
    (PetView, "Hunde", "fa-paw", "Kunden"),
    (DocumentView, "Dokumente", "fa-file", "Kunden"),
    (NotificationLogView, "Benachrichtigungen", "fa-envelope", "Kunden"),
    (LensView, "Linsen", "fa-filter", "Kunden"),
    (BookingView, "Termine", "fa-calendar", "Termine"),
    (ServiceView, "Dienstleistungen", "fa-cut", "Termine"),
    (ResourceView, "Räume & Ressourcen", "fa-cube", "Termine"),
    (PassCardView, "Mehrfachkarten", "fa-ticket", "Karten & Bonus"),
    (PassCardTypeView, "Kartentypen", "fa-tags", "Karten & Bonus"),
    (BonusProgramView, "Bonusprogramme", "fa-gift", "Karten & Bonus"),
    (BonusTransactionView, "Bonuspunkte", "fa-star", "Karten & Bonus"),
    (InvoiceView, "Rechnungen", "fa-file-text", "Karten & Bonus"),
    (EmployeeView, "Mitarbeiter:innen", "fa-users", "Team"),
    (WorkingHoursView, "Arbeitszeiten", "fa-clock-o", "Team"),
    (AbsenceView, "Abwesenheiten", "fa-plane", "Team"),
    (LocationView, "Filialen", "fa-building", "Team"),
    (BookingStatusView, "Terminstatus", "fa-flag", "Einstellungen"),
    (SettingView, "Betriebseinstellungen", "fa-cog", "Einstellungen"),
]
VIEWS_WITHOUT_MENU = [PassRedemptionView, InvoiceLineView]
APIS = [CustomerApi, PetApi, BookingApi, ServiceApi]


def register_views(appbuilder) -> None:
    for view, name, icon, category in MENU:
        appbuilder.add_view(view, name, icon=icon, category=category)
    for view in VIEWS_WITHOUT_MENU:
        appbuilder.add_view_no_menu(view)
    for api in APIS:
        appbuilder.add_api(api)
