"""German first, English on the switch: after GET /lang/en every screen of Terminbuch's
own (titles, labels, menu, choices, formatters, validation and flash messages, start
page) is English; /lang/de brings the German back, exactly as before. The catalogues:
every string marked for translation has its English, the .mo files are compiled from
their .po, and German stays untouched by any catalogue."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import temporary_booking
from tests.helpers_perm import api_token, bearer, session_csrf
from tests.test_validation import form_values

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "app/translations"
TH_RE = re.compile(r"<th[^>]*>\s*(?:<a[^>]*>)?\s*([^<]+?)\s*<", re.S)
LABEL_RE = re.compile(r"<label[^>]*>\s*([^<]+?)\s*<", re.S)
ALERT_RE = re.compile(r'class="alert[^"]*"[^>]*>(.*?)</div>', re.S)


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.get_data(as_text=True)


def headers(html: str) -> set[str]:
    return set(TH_RE.findall(html))


def labels(html: str) -> set[str]:
    return set(LABEL_RE.findall(html))


def alerts(html: str) -> str:
    return " | ".join(ALERT_RE.findall(html))


def english(client):
    assert client.get("/lang/en").status_code == 302
    return client


def german(client):
    assert client.get("/lang/de").status_code == 302
    return client


def submit(client, url: str, changes: dict, field: str) -> str:
    """Open the form, change fields, submit like a browser (CSRF included), follow the redirect."""
    data = form_values(page(client, url), field) | changes
    response = client.post(url, data=data, follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def count(app, model) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# --- screens -------------------------------------------------------------------------------------
def test_booking_list_in_english_and_back(owner, world):
    html = page(english(owner), "/bookingview/list/?_flt_1_start_at=2000-01-01+00:00:00")
    assert {"Start", "Customer", "Service", "Employee", "Status", "Location", "Price"} <= headers(html)
    assert not {"Beginn", "Kund:in", "Dienstleistung", "Mitarbeiter:in", "Filiale", "Preis"} & headers(html)
    assert '<h4 class="panel-title">Bookings</h4>' in html
    assert "Turn on reminder" in html and "Erinnerung aktivieren" not in html
    assert "Turn on the reminder for the selected bookings?" in html
    # the search form's labels come from label_columns as JSON: English too
    assert '"customer": "Customer"' in html or '"service": "Service"' in html
    html = page(german(owner), "/bookingview/list/?_flt_1_start_at=2000-01-01+00:00:00")
    assert {"Beginn", "Kund:in", "Dienstleistung", "Mitarbeiter:in", "Filiale", "Preis"} <= headers(html)
    assert '<h4 class="panel-title">Termine</h4>' in html and "Erinnerung aktivieren" in html


def test_booking_add_form_in_english_and_back(owner):
    html = page(english(owner), "/bookingview/add")
    assert {"Customer", "Service", "Employee", "Start", "End", "Source", "Reminder", "Comment"} <= labels(html)
    assert "Add booking" in html and "Termin anlegen" not in html
    assert ">Walk-in</option>" in html and ">Back office</option>" in html
    assert "Laufkundschaft" not in html and ">Büro<" not in html
    assert 'data-placeholder="Search …"' in html and "Suchen …" not in html
    html = page(german(owner), "/bookingview/add")
    assert {"Kund:in", "Dienstleistung", "Mitarbeiter:in", "Beginn", "Ende", "Quelle", "Erinnerung"} <= labels(html)
    assert "Termin anlegen" in html and ">Laufkundschaft</option>" in html and ">Büro</option>" in html
    assert 'data-placeholder="Suchen …"' in html


def test_customer_list_and_show_in_english(owner, world):
    html = page(english(owner), "/customerview/list/")
    assert {"Name", "Email", "Phone", "Postcode", "City", "Created on"} <= headers(html)
    assert not {"Telefon", "PLZ", "Ort", "Angelegt am", "E-Mail"} & headers(html)
    assert '<h4 class="panel-title">Customers</h4>' in html
    html = page(owner, f"/customerview/show/{world.customer1}")
    for text in ("Customer record", "Master data", "Address", "Consents", "Email consent", "SMS consent"):
        assert text in html, text
    for text in ("Kundenakte", "Stammdaten", "Einwilligungen", "Einwilligung E-Mail", ">Nein<", ">Ja<"):
        assert text not in html, text
    assert ">No<" in html  # boolean formatter (no consent given in the test world)
    assert "Bookings" in html and "Dogs" in html  # related lists' titles
    add = page(owner, "/customerview/add")
    assert "An emoji in front of the name: 📞 Call back, ⭐ VIP" in add and "Rückruf" not in add
    html = page(german(owner), f"/customerview/show/{world.customer1}")
    assert "Kundenakte" in html and "Stammdaten" in html and ">Nein<" in html
    add = page(owner, "/customerview/add")
    assert "Ein Emoji vor dem Namen: 📞 Rückruf, ⭐ VIP" in add


def test_enum_labels_in_english(owner, world):
    english(owner)
    assert ">Monday<" in page(owner, "/workinghoursview/list/")
    statuses = page(owner, "/bookingstatusview/list/")
    assert "Confirmation" in statuses and "Bestätigung" not in statuses
    absence_form = page(owner, "/absenceview/add")
    assert ">Vacation</option>" in absence_form and "Urlaub" not in absence_form
    german(owner)
    assert ">Montag<" in page(owner, "/workinghoursview/list/")
    assert "Bestätigung" in page(owner, "/bookingstatusview/list/")


MENU_EN = ("Customers", "Bookings", "Multi-pass cards", "Cards & Bonus", "Employees", "Locations",
           "Business settings", "Booking statuses")
MENU_DE = ("Kunden", "Termine", "Mehrfachkarten", "Karten & Bonus", "Mitarbeiter:innen", "Filialen",
           "Betriebseinstellungen", "Terminstatus")


def navbar(html: str) -> str:
    start = html.index('class="navbar')
    return html[start:html.index("</nav>", start) if "</nav>" in html[start:] else start + 40000]


def test_menu_in_english_and_back(owner):
    menu = navbar(page(english(owner), "/"))
    words = lambda text: re.findall(r">\s*([^<>]*?)\s*</a>", text)  # noqa: E731
    for label in MENU_EN:
        assert label in menu, label
    assert not set(MENU_DE) & set(words(menu))
    menu = navbar(page(german(owner), "/"))
    for label in MENU_DE:
        assert label in menu, label


def test_menu_keeps_the_german_permission_names(app):
    """Labels are translated; the menu names (menu_access permissions) stay German."""
    names = {item.name for item in app.appbuilder.menu.get_list()}
    assert {"Kunden", "Termine", "Karten & Bonus", "Team", "Einstellungen"} <= names
    children = {child.name for item in app.appbuilder.menu.get_list() for child in item.childs or []}
    assert {"Mehrfachkarten", "Mitarbeiter:innen", "Filialen", "Betriebseinstellungen"} <= children


def test_home_page_in_english_and_back(owner):
    html = page(english(owner), "/")
    assert "Welcome, Owner." in html and "Bookings in the next 7 days" in html and ">Customers</a>" in html
    assert "Willkommen" not in html and "Termine in den nächsten 7 Tagen" not in html
    html = page(german(owner), "/")
    assert "Willkommen, Owner." in html and "Termine in den nächsten 7 Tagen" in html and ">Kund:innen</a>" in html


# --- messages ------------------------------------------------------------------------------------
def _booking_form(world, start: str, end: str, **extra) -> dict:
    return {
        "customer": str(world.customer1), "service": str(world.service), "employee": str(world.employee1),
        "start_at": start, "end_at": end, "price": "", "comment": "Sprachtest", **extra,
    }


def test_write_check_message_in_english_and_back(app, owner, world):
    """check_write's ValueError, flashed by FAB after a real form post (CSRF included)."""
    from app.models import Booking

    before = count(app, Booking)
    form = _booking_form(world, "2031-06-02 10:00:00", "2031-06-02 09:00:00")
    html = submit(english(owner), "/bookingview/add", form, "start_at")
    assert "The end must be after the start." in alerts(html)
    assert "Das Ende muss nach dem Beginn liegen." not in html
    html = submit(german(owner), "/bookingview/add", form, "start_at")
    assert "Das Ende muss nach dem Beginn liegen." in alerts(html)
    assert count(app, Booking) == before


def test_validator_messages_in_english_and_back(app, owner, world):
    """Messages of WTForms validators given at import time (lazy strings), one with a placeholder."""
    from app.models import Booking, Customer

    bookings, customers = count(app, Booking), count(app, Customer)
    english(owner)
    html = submit(owner, "/bookingview/add", _booking_form(world, "2031-06-02 10:00:00", "", price="-5"), "start_at")
    assert "The price must not be negative." in html and "Der Preis darf nicht negativ sein." not in html
    customer = {"first_name": "Sprach", "last_name": "Test", "emoji_marker": "🐕" * 9}
    html = submit(owner, "/customerview/add", customer, "first_name")
    assert "At most 8 characters." in html and "Höchstens" not in html
    german(owner)
    html = submit(owner, "/customerview/add", customer, "first_name")
    assert "Höchstens 8 Zeichen." in html
    assert (count(app, Booking), count(app, Customer)) == (bookings, customers)


@pytest.fixture()
def own_booking(app, world):
    with temporary_booking(app, datetime(2031, 6, 9, 9, tzinfo=timezone.utc), comment="Sprachtest",
                           reminder=False) as pk:
        yield pk


def test_flash_messages_in_english_and_back(owner, own_booking):
    english(owner)
    data = {"action": "set_reminder", "rowid": [str(own_booking)], "csrf_token": session_csrf(owner)}
    html = owner.post("/bookingview/action_post", data=data, follow_redirects=True).get_data(as_text=True)
    assert "Reminder turned on for 1 booking(s)." in alerts(html) and "Erinnerung für" not in html
    data["rowid"] = ["987654321"]
    html = owner.post("/bookingview/action_post", data=data, follow_redirects=True).get_data(as_text=True)
    assert "No valid entries selected." in alerts(html) and "Keine gültigen" not in html
    german(owner)
    html = owner.post("/bookingview/action_post", data=data, follow_redirects=True).get_data(as_text=True)
    assert "Keine gültigen Einträge ausgewählt." in alerts(html)


def test_api_refusal_follows_the_language(app, world):
    """The REST API answers check_write's refusal in German, in English with FAB's `?_l_=en`."""
    from app.models import Booking

    headers = bearer(api_token(app, "owner"))
    payload = {"customer": world.customer1, "service": world.service, "employee": world.employee1,
               "start_at": "2031-06-02T10:00:00+00:00", "end_at": "2031-06-02T09:00:00+00:00"}
    before = count(app, Booking)
    client = app.test_client()
    response = client.post("/api/v1/booking/", json=payload, headers=headers)
    assert response.status_code == 400 and "Das Ende muss nach dem Beginn liegen." in response.get_data(as_text=True)
    response = client.post("/api/v1/booking/?_l_=en", json=payload, headers=headers)
    assert response.status_code == 400 and "The end must be after the start." in response.get_data(as_text=True)
    assert count(app, Booking) == before


# --- catalogues ----------------------------------------------------------------------------------
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "N_": None}


def extracted_messages() -> dict[str, set[str]]:
    """msgid → places, as `pybabel extract -F babel.cfg -k _l -k lazy_gettext app` finds them."""
    from babel.messages.extract import extract_from_dir

    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    found: dict[str, set[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT / "app"), method_map, keywords=KEYWORDS):
        assert isinstance(message, str), f"{filename}:{lineno}: plural or non-literal message {message!r}"
        found.setdefault(message, set()).add(f"{filename}:{lineno}")
    return found


def read_catalogue(locale: str, kind: str = "po"):
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    path = TRANSLATIONS / locale / "LC_MESSAGES" / f"messages.{kind}"
    with open(path, "rb") as handle:
        return read_po(handle) if kind == "po" else read_mo(handle)


def test_every_marked_string_has_its_english():
    found = extracted_messages()
    assert len(found) > 200
    catalogue = {m.id: m.string for m in read_catalogue("en") if m.id}
    missing = {msgid: sorted(places) for msgid, places in found.items() if not catalogue.get(msgid)}
    assert not missing, f"no English for {missing} — add it to app/translations/en/LC_MESSAGES/messages.po"
    stale = set(catalogue) - set(found)
    assert not stale, f"English for strings no longer in app/: {stale}"


def test_english_catalogue_is_valid_and_compiled_from_its_source():
    source = read_catalogue("en")
    problems = [(m.id, errors) for m, errors in source.check()]
    assert not problems, problems  # e.g. a %(name)s placeholder missing in the English
    compiled = read_catalogue("en", "mo")
    assert {m.id: m.string for m in source if m.id} == {m.id: m.string for m in compiled if m.id}, (
        "run: .venv/bin/pybabel compile -d app/translations -l en"
    )


def test_catalogues_as_the_app_loads_them(app):
    """Through flask-babel with FAB's translation directories: English comes from our `en`
    catalogue; in German every string stays exactly what the code says (FAB's German
    catalogue must not re-translate one of ours: "Login" would become "Anmelden");
    translating twice (FAB's templates pass labels through _() again) changes nothing."""
    from flask_babel import gettext, refresh

    found = set(extracted_messages())
    english_texts = {m.id: m.string for m in read_catalogue("en") if m.id}
    with app.test_request_context("/?_l_=de"):
        refresh()
        changed = {msgid: gettext(msgid) for msgid in found if gettext(msgid) != msgid}
        assert not changed, f"German catalogue changes our German strings: {changed}"
    with app.test_request_context("/?_l_=en"):
        refresh()
        wrong = {msgid: gettext(msgid) for msgid in found if gettext(msgid) != english_texts[msgid]}
        assert not wrong, f"English not loaded as in the catalogue: {wrong}"
        twice = {msgid for msgid in found if gettext(gettext(msgid)) != gettext(msgid)}
        assert not twice, f"an English text is itself a German msgid with another translation: {twice}"
