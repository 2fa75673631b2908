"""What the browser shows around the forms: date-time pickers that keep the time and speak
the UI language, select2 and FAB's confirm dialog in German/English, and error pages
(400/403/404) in the app layout and the UI language while the REST API keeps JSON."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from tests.conftest import post_form
from tests.helpers_perm import api_token, bearer, session_csrf

META_RE = re.compile(r'<meta name="tb-i18n" content="([^"]*)">')
START_FIELD_RE = re.compile(r'<div class="input-group date appbuilder_datetime"[^>]*>.*?<input[^>]*id="start_at"', re.S)


def german(client):
    assert client.get("/lang/de").status_code == 302
    return client


def english(client):
    assert client.get("/lang/en").status_code == 302
    return client


def i18n(html: str) -> dict:
    from html import unescape

    match = META_RE.search(html)
    assert match, "no <meta name=tb-i18n> in the page"
    return json.loads(unescape(match.group(1)))


def get(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, f"{url}: {response.status_code}"
    return response.get_data(as_text=True)


# --- date-time picker -------------------------------------------------------------------------
def test_booking_form_carries_picker_locale_and_scripts(owner):
    html = get(german(owner), "/bookingview/add")
    assert START_FIELD_RE.search(html), "start_at is no longer a .appbuilder_datetime field"
    texts = i18n(html)
    assert texts["locale"] == "de" and texts["dateTimePlaceholder"] == "JJJJ-MM-TT hh:mm"
    scripts = re.findall(r'<script src="([^"]+)"', html)
    vendor = scripts.index("/static/js/vendor/bootstrap-datepicker.de.js")
    assert vendor < scripts.index("/static/js/terminbuch.js")
    assert scripts.index("/static/appbuilder/js/bootstrap-datepicker/bootstrap-datepicker.min.js") < vendor
    texts = i18n(get(english(owner), "/bookingview/add"))
    assert texts["locale"] == "en" and texts["dateTimePlaceholder"] == "YYYY-MM-DD hh:mm"
    german(owner)


def test_absence_form_has_date_time_fields(owner):
    html = get(german(owner), "/absenceview/add")
    assert html.count("appbuilder_datetime") == 2 and i18n(html)["locale"] == "de"


def test_static_picker_files_keep_the_time_and_speak_german(app):
    client = app.test_client()
    script = client.get("/static/js/terminbuch.js").get_data(as_text=True)
    for needle in ('$(".appbuilder_datetime")', '$(".appbuilder_date")', "toDisplay", "timeOf(input.val())",
                   'datepicker("destroy")', "$.fn.datetimepicker =", 'select2.defaults.set("language"'):
        assert needle in script, needle
    locale = client.get("/static/js/vendor/bootstrap-datepicker.de.js").get_data(as_text=True)
    assert "$.fn.datepicker.dates['de']" in locale and "weekStart: 1" in locale
    assert '"Mo", "Di", "Mi"' in locale and '"November", "Dezember"' in locale


@pytest.fixture()
def absences(app):
    """Absences this test adds (note "Browsertest"), removed afterwards."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Absence

    query = sa.select(Absence).where(Absence.note == "Browsertest")
    with app.app_context():
        yield lambda: db.session.scalars(query).all()
    with app.app_context(), acting_as():
        for absence in db.session.scalars(query):
            db.session.delete(absence)
        db.session.commit()


def test_absence_saved_with_the_time_the_picker_writes(app, owner, world, absences):
    """The picker writes "%Y-%m-%d %H:%M:%S" in business time; a bare date (what FAB's picker
    left in the field) is refused with the form error and saves nothing."""
    from app.formatting import to_local

    form = {"employee": str(world.employee1), "kind": "vacation", "note": "Browsertest",
            "start_at": "2031-08-04 09:30:00", "end_at": "2031-08-05 17:15:00"}
    german(owner)
    response = post_form(owner, "/absenceview/add", form | {"start_at": "2031-08-04"})
    assert response.status_code == 200 and "Kein gültiges Datum mit Zeit." in response.get_data(as_text=True)
    assert absences() == []
    response = post_form(owner, "/absenceview/add", form)
    assert response.status_code == 302
    with app.app_context():
        [absence] = absences()
        assert absence.start_at.tzinfo is not None
        assert to_local(absence.start_at).strftime("%Y-%m-%d %H:%M") == "2031-08-04 09:30"
        assert to_local(absence.end_at).strftime("%Y-%m-%d %H:%M") == "2031-08-05 17:15"
        assert absence.start_at.astimezone(timezone.utc) == datetime(2031, 8, 4, 7, 30, tzinfo=timezone.utc)


# --- select2 and FAB's confirm dialog ------------------------------------------------------------
def test_select2_texts_follow_the_language(owner):
    texts = i18n(get(german(owner), "/bookingview/add"))
    assert texts["inputTooShort"] == "Bitte mindestens ein Zeichen eingeben."
    assert texts["searching"] == "Suche …" and texts["noResults"] == "Keine Treffer."
    texts = i18n(get(english(owner), "/bookingview/add"))
    assert texts["inputTooShort"] == "Please enter at least one character."
    assert texts["searching"] == "Searching …" and texts["noResults"] == "No results found."
    german(owner)


def confirm_footer(html: str) -> str:
    start = html.index('id="modal-confirm"')
    footer = html.index('class="modal-footer"', start)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html[footer:html.index("</div>", footer)])).strip()


def test_confirm_dialog_buttons_translated(owner):
    html = get(german(owner), "/absenceview/list/")
    assert confirm_footer(html).endswith("Abbrechen OK") and "Bitte bestätigen" in html
    html = get(english(owner), "/absenceview/list/")
    assert confirm_footer(html).endswith("Cancel OK") and "Please confirm" in html
    german(owner)


# --- error pages -----------------------------------------------------------------------------------
def error_title(html: str) -> str:
    match = re.search(r'<h4 class="panel-title">([^<]+)</h4>', html)
    assert match and 'class="tb-error' in html, html[:300]
    return match.group(1)


def test_404_page_german_and_english_in_the_layout(owner):
    html = get(german(owner), "/bookingview/show/987654321", 404)
    assert error_title(html) == "404 – Seite nicht gefunden"
    assert "Diese Seite oder dieser Eintrag existiert nicht (mehr)." in html and "Not Found" not in html
    assert 'class="navbar' in html  # inside the app layout, menu included
    html = get(owner, "/gibt-es-nicht", 404)
    assert error_title(html) == "404 – Seite nicht gefunden"
    html = get(english(owner), "/bookingview/show/987654321", 404)
    assert error_title(html) == "404 – Page not found" and "This page or record does not exist" in html
    assert "Seite nicht gefunden" not in html
    german(owner)


def test_403_page_german_and_english(viewer, world):
    data = {"action": "set_reminder", "rowid": [str(world.booking1)]}
    response = viewer.post("/bookingview/action_post", data=data | {"csrf_token": session_csrf(german(viewer))})
    html = response.get_data(as_text=True)
    assert response.status_code == 403 and error_title(html) == "403 – Kein Zugriff"
    assert "Für diese Seite oder Aktion fehlt die Berechtigung." in html and "Forbidden" not in html
    response = viewer.post("/bookingview/action_post", data=data | {"csrf_token": session_csrf(english(viewer))})
    assert response.status_code == 403 and error_title(response.get_data(as_text=True)) == "403 – Access denied"
    german(viewer)


def test_400_page_shows_the_own_reason_or_the_generic_text(owner):
    html = get(german(owner), "/bookingview/list/?q=%00", 400)
    assert error_title(html) == "400 – Ungültige Anfrage" and "Ungültiges Zeichen in der Anfrage." in html
    response = owner.post("/bookingview/action_post", data={"action": "gibt-es-nicht",
                                                            "csrf_token": session_csrf(owner)})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Die Anfrage konnte nicht verarbeitet werden." in html
    assert "Bad Request" not in html
    html = get(english(owner), "/bookingview/list/?q=%00", 400)
    assert error_title(html) == "400 – Bad request"
    german(owner)


def test_api_errors_stay_json(app):
    client = app.test_client()
    headers = bearer(api_token(app, "owner"))
    response = client.get("/api/v1/booking/987654321", headers=headers)
    assert response.status_code == 404 and response.is_json and response.json == {"message": "Not found"}
    response = client.get("/api/v1/gibt-es-nicht/", headers=headers)
    assert response.status_code == 404 and response.is_json and "message" in response.json
    response = client.get("/api/v1/booking/?q=%00", headers=headers)
    assert response.status_code == 400 and response.json == {"message": "Ungültiges Zeichen in der Anfrage."}
    response = client.get("/api/v1/booking/")
    assert response.status_code == 401 and response.is_json


def test_405_page_german_in_the_layout(owner):
    response = owner.get("/history/restore/")  # POST only
    assert response.status_code == 405
    assert "Aktion nicht möglich" in response.get_data(as_text=True)
