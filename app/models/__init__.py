"""All models. Importing this package defines every versioned class; the caller
then runs `sqlalchemy.orm.configure_mappers()` so Continuum builds its version
classes (create_app does that)."""
from app.models.bonus import BonusProgram, BonusTransaction
from app.models.bookings import Booking, BookingStatus
from app.models.cards import PassCard, PassCardType, PassRedemption
from app.models.customers import (
    Customer,
    CustomerErasure,
    CustomerMerge,
    Document,
    DuplicateDismissal,
    Pet,
)
from app.models.exports import ExportFile
from app.models.invoices import Invoice, InvoiceCounter, InvoiceLine
from app.models.notifications import BookingReminder, NotificationLog
from app.models.services import Resource, Service
from app.models.settings import Lens, Setting
from app.models.staff import Absence, CalendarFeed, Employee, Location, WorkingHours

__all__ = [
    "Absence", "BonusProgram", "BonusTransaction", "Booking", "BookingReminder", "BookingStatus", "CalendarFeed",
    "Customer", "CustomerErasure", "CustomerMerge", "Document", "DuplicateDismissal", "Employee", "ExportFile",
    "Invoice",
    "InvoiceCounter", "InvoiceLine", "Lens", "Location", "NotificationLog", "PassCard", "PassCardType",
    "PassRedemption", "Pet", "Resource", "Service", "Setting", "WorkingHours",
]

# SQLite hands the highest id out again after that row is deleted, and a new row
# would inherit the deleted row's version history (versions are keyed by id).
# AUTOINCREMENT never reuses an id. PostgreSQL sequences never do anyway.
for _name in __all__:
    if "id" in globals()[_name].__table__.c:  # not the invoice counter, keyed by year
        globals()[_name].__table__.dialect_kwargs["sqlite_autoincrement"] = True


def model_for_table(table) -> type | None:
    """The mapped class of a table (None for a plain table such as an association)."""
    from flask_appbuilder import Model

    return next((mapper.class_ for mapper in Model.registry.mappers if mapper.local_table is table), None)
