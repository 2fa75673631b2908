"""The texts of the notifications, German and English: `render(kind, language, context)`
gives (subject, body). The strings are ordinary gettext messages rendered under
`force_locale(language)`, so their English lives in messages.po like every other one.

The context is plain data (`booking_context`, `card_context` build it): times are aware
datetimes, shown in the business time zone (config TIMEZONE) in the language's date
format. Customer texts are letters (greeting, details, business name); with
`context["short"]` (SMS, Telegram) they shrink to one line. Staff texts are one line
each: customer, service, local time. A free message ("message", "recall") is the
subject and body given in the context, unchanged.
"""
from __future__ import annotations

from datetime import datetime

from babel.dates import format_date, format_datetime
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from app.formatting import to_local
from app.models import Booking, Location, PassCard

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
BOOKING_KINDS = frozenset({"booking_confirmed", "booking_requested", "booking_cancelled", "booking_moved",
                           "reminder"})
STAFF_KINDS = frozenset({"staff_new_booking", "staff_cancelled", "staff_schedule_changed"})
CARD_KINDS = frozenset({"card_renewal", "card_low"})  # card_low: another name of card_renewal
FREE_KINDS = frozenset({"message", "recall"})
# babel date patterns: (long date, short date, staff's day and time)
DATE_PATTERNS = {
    "de": ("EEEE, d. MMMM y", "dd.MM.y", "EEE dd.MM. HH:mm"),
    "en": ("EEEE, d MMMM y", "d MMM y", "EEE d MMM HH:mm"),
}


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def render(kind: str, language: str, context: dict) -> tuple[str, str]:
    """(subject, body) of a `kind` notification in `language` ("de"/"en"; anything else: "de")."""
    language = language_of(language)
    with force_locale(language):
        if kind in FREE_KINDS:
            return context["subject"], context["body"]
        if kind in BOOKING_KINDS:
            return _booking_text(kind, language, context)
        if kind in STAFF_KINDS:
            return _staff_text(kind, language, context)
        if kind in CARD_KINDS:
            return _card_text(language, context)
    raise ValueError(f"no text for notification kind {kind!r}")


# --- dates ---------------------------------------------------------------------------
def long_when(value: datetime, language: str) -> str:
    local = to_local(value)
    return _("%(date)s um %(time)s Uhr", date=format_date(local, DATE_PATTERNS[language][0], locale=language),
             time=local.strftime("%H:%M"))


def short_when(value: datetime, language: str) -> str:
    local = to_local(value)
    return _("%(date)s um %(time)s Uhr", date=format_date(local, DATE_PATTERNS[language][1], locale=language),
             time=local.strftime("%H:%M"))


def staff_when(value: datetime, language: str) -> str:
    return format_datetime(to_local(value), DATE_PATTERNS[language][2], locale=language)


def long_date(value: datetime, language: str) -> str:
    return format_date(to_local(value), DATE_PATTERNS[language][0], locale=language)


# --- letters to customers --------------------------------------------------------------
def _greeting(context: dict) -> str:
    name = (context.get("first_name") or "").strip()
    return _("Hallo %(name)s,", name=name) if name else _("Guten Tag,")


def _closing(context: dict) -> str:
    return "\n".join([_("Viele Grüße"), context.get("business") or "Terminbuch"])


def _letter(context: dict, *paragraphs: str) -> str:
    return "\n\n".join([_greeting(context), *(p for p in paragraphs if p), _closing(context)]) + "\n"


def _booking_subject(kind: str, service: str, when: str) -> str:
    if kind == "booking_confirmed":
        return _("Buchungsbestätigung: %(service)s am %(when)s", service=service, when=when)
    if kind == "booking_requested":
        return _("Anfrage eingegangen: %(service)s am %(when)s", service=service, when=when)
    if kind == "booking_cancelled":
        return _("Absage: %(service)s am %(when)s", service=service, when=when)
    if kind == "booking_moved":
        return _("Terminänderung: %(service)s am %(when)s", service=service, when=when)
    return _("Erinnerung: %(service)s am %(when)s", service=service, when=when)


def _booking_intro(kind: str) -> str:
    if kind == "booking_confirmed":
        return _("Ihr Termin ist bestätigt:")
    if kind == "booking_requested":
        return _("Ihre Terminanfrage ist bei uns eingegangen. Sobald wir sie bestätigt haben, "
                 "erhalten Sie eine weitere Nachricht. Angefragt ist:")
    if kind == "booking_cancelled":
        return _("leider müssen wir Ihren Termin absagen:")
    if kind == "booking_moved":
        return _("Ihr Termin wurde geändert. Der neue Termin:")
    return _("wir erinnern Sie an Ihren Termin:")


def _booking_text(kind: str, language: str, context: dict) -> tuple[str, str]:
    service, start = context.get("service") or "", context["start"]
    subject = _booking_subject(kind, service, short_when(start, language))
    reason = (context.get("reason") or "").strip()
    reason_line = _("Grund: %(reason)s", reason=reason) if kind == "booking_cancelled" and reason else ""
    if context.get("short"):
        return subject, " – ".join(part for part in (context.get("business"), subject, reason_line) if part)
    details = [service, long_when(start, language)]
    if context.get("employee"):
        details.append(_("bei %(employee)s", employee=context["employee"]))
    details.extend(line for line in (context.get("location"), context.get("address")) if line)
    outro = ""
    if kind == "booking_cancelled":
        outro = _("Gern vereinbaren wir einen neuen Termin mit Ihnen.")
    return subject, _letter(context, _booking_intro(kind), "\n".join(details), reason_line, outro)


def _card_text(language: str, context: dict) -> tuple[str, str]:
    card = context.get("card") or ""
    subject = _("Ihre %(card)s ist bald aufgebraucht", card=card)
    body = _("Auf Ihrer %(card)s sind noch %(units)d von %(total)d Einheiten übrig.",
             card=card, units=context.get("units") or 0, total=context.get("total") or 0)
    if context.get("expires") is not None:
        body += "\n" + _("Sie ist gültig bis %(date)s.", date=long_date(context["expires"], language))
    return subject, _letter(context, body)


# --- one line to an employee -------------------------------------------------------------
def _staff_text(kind: str, language: str, context: dict) -> tuple[str, str]:
    start = context.get("start")
    if start is None:  # the booking is gone: say what happened, without details
        if kind == "staff_new_booking":
            return _("Neue Buchung"), _("Neue Buchung – bitte im Terminbuch nachsehen.")
        if kind == "staff_cancelled":
            return _("Termin abgesagt"), _("Ein Termin wurde abgesagt – bitte im Terminbuch nachsehen.")
        return _("Terminänderung"), _("Ihr Plan hat sich geändert – bitte im Terminbuch nachsehen.")
    values = {"customer": context.get("customer") or "–", "service": context.get("service") or "–",
              "when": staff_when(start, language)}
    if kind == "staff_new_booking":
        return _("Neue Buchung"), _("Neue Buchung: %(customer)s, %(service)s, %(when)s", **values)
    if kind == "staff_cancelled":
        return _("Termin abgesagt"), _("Abgesagt: %(customer)s, %(service)s, %(when)s", **values)
    return _("Terminänderung"), _("Geändert: %(customer)s, %(service)s, jetzt %(when)s", **values)


# --- contexts from the database ------------------------------------------------------------
def business(session: Session) -> str:
    from app.services.lenses import business_name

    return business_name(session)


def _address(location: Location) -> str:
    town = " ".join(part for part in (location.postal_code, location.city) if part)
    return ", ".join(part for part in (location.street, town) if part)


def booking_context(session: Session, booking: Booking) -> dict:
    """What the booking texts show: business, customer, service, employee's first name,
    location with address, start time and cancel reason."""
    customer, employee = booking.customer, booking.employee
    location = booking.location or (employee.location if employee is not None else None)
    return {
        "business": business(session),
        "first_name": customer.first_name if customer is not None else "",
        "customer": customer.full_name if customer is not None else "",
        "service": booking.service.name if booking.service is not None else "",
        "employee": employee.first_name if employee is not None else "",
        "location": location.name if location is not None else "",
        "address": _address(location) if location is not None else "",
        "start": booking.start_at,
        "reason": booking.cancel_reason or "",
    }


def card_context(session: Session, card: PassCard) -> dict:
    customer = card.customer
    return {
        "business": business(session),
        "first_name": customer.first_name if customer is not None else "",
        "card": card.type.name,
        "units": card.units_remaining,
        "total": card.units_total,
        "expires": card.expires_at,
    }
