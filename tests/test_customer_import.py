"""Kunden importieren: CSV (; , TAB, UTF-8 with BOM, Windows-1252) and XLSX, header guessing,
the mapping step, per-row German errors, duplicates of existing customers, all or nothing,
cancel, refused uploads, roles, and the token bound to its user."""
from __future__ import annotations

import io
import os
import re
from datetime import date, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
import sqlalchemy as sa
import xlsxwriter

from tests.conftest import csrf_token, login
from tests.helpers_perm import html, session_csrf

BASE = "/customerimport"
SESSION_KEY = "tb_customer_import"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
SELECTED = re.compile(r'<select[^>]*name="(col_\d+)"[^>]*>(.*?)</select>', re.S)
OPTION_SELECTED = re.compile(r'<option value="([a-z_]*)" selected>')


# --- helpers ---------------------------------------------------------------------------
def import_files(app) -> set[str]:
    folder = Path(app.config["INSTANCE_DIR"]) / "imports"
    return set(os.listdir(folder)) if folder.exists() else set()


def upload(client, content: bytes, filename: str = "kunden.csv", content_type: str = "text/csv"):
    data = {"file": (io.BytesIO(content), filename, content_type), "csrf_token": csrf_token(client, BASE + "/")}
    return client.post(BASE + "/upload", data=data, content_type="multipart/form-data")


def token_of(client) -> str | None:
    with client.session_transaction() as session:
        state = session.get(SESSION_KEY)
        return state["token"] if state else None


def guessed(client) -> list[str]:
    """The mapping the mapping page pre-selects, column by column."""
    page = html(client.get(BASE + "/mapping"))
    choices = []
    for _name, options in SELECTED.findall(page):
        match = OPTION_SELECTED.search(options)
        choices.append(match.group(1) if match else None)
    return choices


def post_mapping(client, mapping: list[str], token: str | None = None):
    data = {f"col_{index}": key for index, key in enumerate(mapping)}
    data.update(token=token or token_of(client), csrf_token=session_csrf(client))
    return client.post(BASE + "/mapping", data=data)


def run_import(client, mode: str = "all", duplicates: str = "skip", token: str | None = None):
    return client.post(BASE + "/import", data={
        "mode": mode, "duplicates": duplicates, "token": token or token_of(client),
        "csrf_token": session_csrf(client)})


def start(client, content: bytes, filename: str = "kunden.csv", mapping: list[str] | None = None):
    """Upload and confirm the guessed (or given) mapping; the preview page's HTML."""
    response = upload(client, content, filename)
    assert response.status_code == 302, html(response)
    assert response.headers["Location"].endswith(BASE + "/mapping")
    response = post_mapping(client, mapping or guessed(client))
    assert response.status_code == 302, html(response)
    preview = client.get(BASE + "/preview")
    assert preview.status_code == 200
    return html(preview)


def text(response) -> str:
    return unescape(html(response))


def customer_count(app) -> int:
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Customer))


def version_count(app) -> int:
    from sqlalchemy_continuum import version_class

    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(version_class(Customer)))


def customers_named(app, last_name: str) -> list:
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        rows = db.session.scalars(sa.select(Customer).where(Customer.last_name == last_name).order_by(Customer.id))
        return list(rows)


@pytest.fixture()
def cleanup(app, world):
    """Delete the customers a test created and the import files it left."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context():
        last_id = db.session.scalar(sa.select(sa.func.max(Customer.id)))
    files = import_files(app)
    yield
    with app.app_context(), acting_as():
        for customer in db.session.scalars(sa.select(Customer).where(Customer.id > last_id)):
            db.session.delete(customer)
        db.session.commit()
    for name in import_files(app) - files:
        (Path(app.config["INSTANCE_DIR"]) / "imports" / name).unlink(missing_ok=True)


def csv_bytes(lines: list[str], delimiter: str = ";", encoding: str = "utf-8", bom: bool = False) -> bytes:
    body = "\r\n".join(delimiter.join(cells) for cells in (line.split("|") for line in lines)) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + body.encode(encoding)


# --- reading and mapping ---------------------------------------------------------------
def test_csv_with_semicolon_and_bom_is_imported(app, world, manager, cleanup):
    content = csv_bytes([
        "Vorname|Nachname|E-Mail|Telefon|PLZ|Ort|Geburtsdatum|Markierung|Einwilligung E-Mail|Bemerkung",
        "Ida|Importa| Ida.Importa@Example.org |030 98765432|10115|Berlin|03.04.1985|⭐|ja|Mag Kaffee",
        "Olaf|Importa||+49 (0)40 1234567|20095|Hamburg|1990-12-24|||",
    ], bom=True)
    before, versions = customer_count(app), version_count(app)
    upload(manager, content)
    token = token_of(manager)
    assert token in import_files(app)
    assert guessed(manager) == ["first_name", "last_name", "email", "phone", "postal_code", "city", "birth_date",
                                "emoji_marker", "consent_email", "notes"]
    page = start_mapping_and_preview(manager)
    assert "2 Zeilen, davon 0 mit Fehlern und 0 mögliche Dubletten" in page
    response = run_import(manager)
    assert response.status_code == 200
    assert "2 Kund:innen aus kunden.csv angelegt." in text(response)
    assert customer_count(app) == before + 2
    assert version_count(app) == versions + 2
    ida, olaf = customers_named(app, "Importa")
    assert (ida.first_name, ida.email, ida.phone, ida.postal_code, ida.city) == (
        "Ida", "ida.importa@example.org", "+493098765432", "10115", "Berlin")
    assert ida.birth_date == date(1985, 4, 3) and ida.emoji_marker == "⭐" and ida.notes == "Mag Kaffee"
    assert ida.consent_email is True and ida.consent_sms is False and ida.consent_at is not None
    assert (olaf.phone, olaf.birth_date, olaf.email, olaf.consent_at) == ("+49401234567", date(1990, 12, 24), None,
                                                                         None)
    assert ida.created_by_id == world.user_manager and ida.country == "DE"
    assert token_of(manager) is None and token not in import_files(app)  # the file went with the import


def start_mapping_and_preview(client) -> str:
    response = post_mapping(client, guessed(client))
    assert response.status_code == 302
    return text(client.get(BASE + "/preview"))


def test_csv_with_comma_in_windows_1252(app, manager, cleanup):
    content = 'Vorname,Nachname,Straße,Ort\r\nJürgen,Müßig-Importb,"Hauptstraße 1, Hinterhaus",Köln\r\n'.encode(
        "cp1252")
    page = start(manager, content)
    assert "Müßig-Importb" in unescape(page) and "Hauptstraße 1, Hinterhaus" in unescape(page)
    assert run_import(manager).status_code == 200
    (customer,) = customers_named(app, "Müßig-Importb")
    assert (customer.first_name, customer.street, customer.city) == ("Jürgen", "Hauptstraße 1, Hinterhaus", "Köln")


def test_tab_separated_with_english_headers(app, manager, cleanup):
    content = csv_bytes(["First Name|LAST NAME|e-mail address|Zip Code|Town|Date of Birth|Comments",
                         "Tia|Importc|tia@importc.example|01067|Dresden|1.2.2001|zweizeilig"], delimiter="\t")
    upload(manager, content, "kunden.txt")
    assert guessed(manager) == ["first_name", "last_name", "email", "postal_code", "city", "birth_date", "notes"]
    start_mapping_and_preview(manager)
    assert run_import(manager).status_code == 200
    (customer,) = customers_named(app, "Importc")
    assert (customer.postal_code, customer.birth_date) == ("01067", date(2001, 2, 1))


def test_header_guessing_and_sniffing_units():
    from app.services.customer_import import SKIP, guess_mapping, sniff_delimiter

    assert guess_mapping(["  VORNAME ", "Familienname", "E-Mail-Adresse", "Handy", "Straße", "Postleitzahl",
                          "Wohnort", "Land", "Geburtstag", "Notizen", "Emoji", "Einwilligung SMS", "Kundennummer",
                          "Vorname"]) == [
        "first_name", "last_name", "email", "phone", "street", "postal_code", "city", "country", "birth_date",
        "notes", "emoji_marker", "consent_sms", SKIP, SKIP]  # unknown header, second "Vorname": not imported
    assert sniff_delimiter('"Berg, Anna";Berlin\n"Colleague, Bernd";Potsdam\n') == ";"
    assert sniff_delimiter("a,b,c\n1,2,3\n") == ","
    assert sniff_delimiter("a\tb\n1\t2\n") == "\t"


def test_xlsx_is_imported(app, manager, cleanup):
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = workbook.add_worksheet("Kunden")
    date_format = workbook.add_format({"num_format": "dd.mm.yyyy"})
    sheet.write_row(0, 0, ["Nachname", "Vorname", "PLZ", "Geburtsdatum", "Telefon", "Einwilligung SMS"])
    sheet.write_row(1, 0, ["Importd", "Xaver", 1067, None, "0351 123456", True])
    sheet.write_datetime(1, 3, datetime(1979, 8, 15), date_format)
    sheet.write_row(3, 0, ["Importd", "Yvonne", 10115, "15.08.1980", "", "nein"])  # a blank row before it
    workbook.close()
    page = start(manager, buffer.getvalue(), "kunden.xlsx")
    assert "2 Zeilen, davon 0 mit Fehlern" in unescape(page)
    assert ">4<" in page  # the line as Excel numbers it (after the blank row)
    assert run_import(manager).status_code == 200
    xaver, yvonne = customers_named(app, "Importd")
    assert (xaver.first_name, xaver.postal_code, xaver.birth_date, xaver.phone, xaver.consent_sms) == (
        "Xaver", "01067", date(1979, 8, 15), "+49351123456", True)
    assert (yvonne.postal_code, yvonne.birth_date, yvonne.consent_sms) == ("10115", date(1980, 8, 15), False)


def test_mapping_without_last_name_is_refused(app, manager, cleanup):
    upload(manager, csv_bytes(["Vorname|Nachname|Ort", "Ute|Importe|Bonn"]))
    response = post_mapping(manager, ["first_name", "", "city"])
    assert response.status_code == 200
    assert "Bitte eine Spalte als Nachname zuordnen." in text(response)
    response = post_mapping(manager, ["first_name", "last_name", "first_name"])
    assert "Vorname ist mehreren Spalten zugeordnet." in text(response)
    response = post_mapping(manager, ["first_name", "last_name", "nonsense"])
    assert "Bitte für jede Spalte ein Feld oder „nicht importieren“ wählen." in text(response)
    # no mapping accepted: the preview shows the mapping form again, the import is refused
    assert 'name="col_0"' in html(manager.get(BASE + "/preview"))
    before = customer_count(app)
    response = run_import(manager)
    assert response.status_code == 200 and 'name="col_0"' in html(response)
    assert customer_count(app) == before


# --- validation -------------------------------------------------------------------------
def test_row_errors_in_german(app, world, manager, cleanup):
    tomorrow = (date.today() + timedelta(days=2)).strftime("%d.%m.%Y")
    content = csv_bytes([
        "Vorname;Nachname;E-Mail;Telefon;PLZ;Land;Geburtsdatum;Markierung;Einwilligung E-Mail",
        "Ohne;;;;;;;;",
        ";Importf;;;;;;;",
        "Eva;Importf;kein-at-zeichen;;;;;;",
        "Fritz;Importf;;abc;;;;;",
        "Gina;Importf;;;1234;;31.02.1990;;",
        f"Hugo;Importf;;;;;{tomorrow};;",
        "Inge;Importf;;;;;;⭐⭐⭐⭐⭐⭐⭐⭐⭐;vielleicht",
        "Jana;Importf;doppelt@importf.example;;;;;;",
        "Jana;Importf2;Doppelt@Importf.example;;;;;;",
        "Kai;Importf;;;;Atlantis;;;",
        f"{'K' * 81};Importf;;;;;;;",
        "Lena;Importf;;;8010;AT;;;",
    ], delimiter="|")  # the lines are written with ";" already
    page = start(manager, content)
    for message in (
        "Nachname fehlt.", "Vorname fehlt.", "E-Mail-Adresse „kein-at-zeichen“ ist ungültig.",
        "Telefonnummer „abc“ nicht erkennbar.", "PLZ „1234“ muss aus 5 Ziffern bestehen.",
        "Geburtsdatum „31.02.1990“ ungültig (TT.MM.JJJJ oder JJJJ-MM-TT).", "Geburtsdatum liegt in der Zukunft.",
        "Markierung zu lang (höchstens 8 Zeichen).", "Einwilligung E-Mail: „vielleicht“ ist weder ja noch nein.",
        "E-Mail-Adresse doppelt in der Datei (wie Zeile 9).", "Land „Atlantis“ nicht erkannt",
        "Vorname ist zu lang (höchstens 80 Zeichen).",
    ):
        assert message in page, message
    assert "12 Zeilen, davon 10 mit Fehlern" in page  # the first Jana and Lena (Austria, 4-digit PLZ) are fine


def test_validate_row_units(app):
    from app.services.customer_import import validate_row

    mapping = ["first_name", "last_name", "phone", "postal_code", "country", "birth_date", "consent_sms"]
    with app.test_request_context():
        good = validate_row(2, ["  Anna ", "Berg", "0043 1 234567", 1010, "Österreich", "1980-01-31", "X"], mapping,
                            date(2026, 1, 1))
        assert good.errors == []
        assert good.record["phone"] == "+431234567"
        assert (good.record["first_name"], good.record["postal_code"], good.record["country"]) == ("Anna", "1010",
                                                                                                   "AT")
        assert good.record["consent_sms"] is True and good.record["birth_date"] == date(1980, 1, 31)
        bad = validate_row(3, ["Anna", "Berg", "12345", "1010", "", "1800-01-01", ""], mapping, date(2026, 1, 1))
        assert bad.errors == ["Telefonnummer „12345“ nicht erkennbar.", "PLZ „1010“ muss aus 5 Ziffern bestehen.",
                              "Geburtsdatum „1800-01-01“ ungültig (TT.MM.JJJJ oder JJJJ-MM-TT)."]


# --- all or nothing, only the good rows ----------------------------------------------------
BAD_FILE = [
    "Vorname|Nachname|E-Mail",
    "Anton|Importg|anton@importg.example",
    "Berta|Importg|berta@importg.example",
    "Carl|Importg|kaputt@",
    "Dora|Importg|",
]


def test_all_or_nothing_with_a_bad_row_writes_nothing(app, manager, cleanup):
    start(manager, csv_bytes(BAD_FILE))
    token = token_of(manager)
    before, versions = customer_count(app), version_count(app)
    response = run_import(manager, mode="all")
    assert response.status_code == 200
    assert "Nichts importiert: 1 Zeile(n) mit Fehlern." in text(response)
    assert "E-Mail-Adresse „kaputt@“ ist ungültig." in text(response)  # back on the preview
    assert customer_count(app) == before and version_count(app) == versions
    assert customers_named(app, "Importg") == []
    assert token_of(manager) == token and token in import_files(app)  # the import can go on

    # "nur fehlerfreie Zeilen": the three good rows, the bad one skipped
    response = run_import(manager, mode="valid")
    assert response.status_code == 200
    assert "3 Kund:innen aus kunden.csv angelegt." in text(response)
    assert "Übersprungene Zeilen mit Fehlern: 1" in text(response)
    assert [c.first_name for c in customers_named(app, "Importg")] == ["Anton", "Berta", "Dora"]
    assert customer_count(app) == before + 3 and version_count(app) == versions + 3
    assert token not in import_files(app) and token_of(manager) is None
    # a second click on "Importieren" (the same form again) imports nothing twice
    assert run_import(manager, mode="valid", token=token).status_code == 403
    assert customer_count(app) == before + 3


def test_cancel_writes_nothing_and_deletes_the_file(app, manager, cleanup):
    start(manager, csv_bytes(BAD_FILE[:3]))
    token = token_of(manager)
    assert token in import_files(app)
    before = customer_count(app)
    response = manager.post(BASE + "/cancel", data={"token": token, "csrf_token": session_csrf(manager)})
    assert response.status_code == 302 and response.headers["Location"].endswith(BASE + "/")
    assert token not in import_files(app) and token_of(manager) is None
    assert customer_count(app) == before
    assert "Import abgebrochen" in text(manager.get(BASE + "/"))
    # after the cancel the old preview form is refused, nothing written
    assert run_import(manager, token=token).status_code == 403
    assert customer_count(app) == before


def test_a_second_click_on_import_while_it_runs_is_refused(app, manager, cleanup):
    """The import takes the file by an atomic rename: a second request finds none (409), and
    neither it nor a look at the preview meanwhile deletes the file of the running import."""
    from app.services.customer_import import claim_import, release_import

    start(manager, csv_bytes(BAD_FILE[:2]))
    token = token_of(manager)
    before = customer_count(app)
    with app.app_context():
        claim_import(token)  # as the first click does
        response = run_import(manager)
        assert response.status_code == 409
        assert "Dieser Import läuft schon oder ist beendet." in text(response)
        assert manager.get(BASE + "/preview").status_code == 409
        assert customer_count(app) == before and token_of(manager) == token
        assert f"{token}.importing" in import_files(app)
        release_import(token)  # the first click found errors and gave the file back
    response = run_import(manager)
    assert "1 Kund:innen aus kunden.csv angelegt." in text(response)
    assert not {token, f"{token}.importing"} & import_files(app)


def test_large_file_preview_shows_200_rows_and_counts_all(app, manager, cleanup):
    lines = ["Vorname|Nachname|Geburtsdatum"] + [f"P{n}|Importh|" for n in range(250)]
    lines[231] = "P230|Importh|kein Datum"
    page = start(manager, csv_bytes(lines))
    assert "250 Zeilen, davon 1 mit Fehlern" in page
    assert "Gezeigt sind die ersten 200 Zeilen" in page
    assert "Zeile 232: Geburtsdatum „kein Datum“ ungültig" in page  # below the table
    assert ">P199<" in page and "P200" not in page and "P230" not in page  # the table stops at 200 rows


def test_more_than_the_row_cap_is_refused(app, manager, cleanup):
    from app.services.customer_import import MAX_ROWS

    files = import_files(app)
    lines = ["Vorname|Nachname"] + [f"V{n}|Importi" for n in range(MAX_ROWS + 1)]
    response = upload(manager, csv_bytes(lines))
    assert response.status_code == 400
    assert f"Die Datei hat mehr als {MAX_ROWS} Zeilen." in text(response)
    assert import_files(app) == files and token_of(manager) is None


# --- duplicates --------------------------------------------------------------------------
def test_duplicates_of_existing_customers_are_detected_and_skipped(app, world, manager, cleanup):
    # the world's Anna Berg: anna@example.org, +49301234567
    content = csv_bytes([
        "Vorname|Nachname|E-Mail|Telefon",
        "Anna|Berg|ANNA@Example.ORG|",
        "Anna|Berg||030 / 123 45 67",
        "Neu|Importj||",
    ])
    before = customer_count(app)
    page = start(manager, content)
    assert "3 Zeilen, davon 1 mit Fehlern und 2 mögliche Dubletten" in page
    assert "E-Mail-Adresse schon bei einer Kund:in vorhanden." in page
    assert page.count(f'href="/customerview/show/{world.customer1}"') == 2
    assert "gleiche E-Mail-Adresse" in page and "gleiche Telefonnummer" in page
    response = run_import(manager)  # defaults: all or nothing, skip duplicates
    assert response.status_code == 200, text(response)
    assert "1 Kund:innen aus kunden.csv angelegt." in text(response)
    assert "Übersprungene Dubletten: 2" in text(response)
    assert customer_count(app) == before + 1
    assert [c.first_name for c in customers_named(app, "Importj")] == ["Neu"]


def test_duplicates_created_anyway_but_never_a_taken_email(app, world, manager, cleanup):
    content = csv_bytes(["Vorname|Nachname|E-Mail|Telefon", "Anna|Berg|anna@example.org|",
                         "Anna|Bergk|anna.bergk@importk.example|+49 30 1234567"])
    start(manager, content)
    before = customer_count(app)
    response = run_import(manager, mode="all", duplicates="create")
    assert "Nichts importiert: 1 Zeile(n) mit Fehlern." in text(response)
    assert customer_count(app) == before
    response = run_import(manager, mode="valid", duplicates="create")
    assert "1 Kund:innen aus kunden.csv angelegt." in text(response)
    (created,) = customers_named(app, "Bergk")
    assert created.phone == "+49301234567"


# --- refused uploads ----------------------------------------------------------------------
@pytest.mark.parametrize("content, filename, message", [
    (PNG, "kunden.csv", "Dieser Dateityp wird nicht angenommen."),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "kunden.xls", "Dieser Dateityp wird nicht angenommen."),
    (b"", "kunden.csv", "Die Datei ist leer."),
    (b"Vorname;Nachname\r\n", "kunden.csv", "nur die Kopfzeile"),
    ("Vorname;Nachname\nÄ;\x00\n".encode(), "kunden.csv", "Dieser Dateityp wird nicht angenommen."),
])
def test_wrong_content_is_refused(app, manager, cleanup, content, filename, message):
    files = import_files(app)
    response = upload(manager, content, filename)
    assert response.status_code == 400
    assert message in text(response)
    assert import_files(app) == files and token_of(manager) is None


def test_zip_that_is_no_workbook_is_refused(app, manager, cleanup):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    response = upload(manager, buffer.getvalue(), "kunden.xlsx")
    assert response.status_code == 400 and "Dieser Dateityp wird nicht angenommen." in text(response)


def test_over_the_size_limit_is_refused(app, manager, cleanup):
    from app.services.customer_import import MAX_BYTES

    files = import_files(app)
    content = b"Vorname;Nachname\r\n" + b"Zu;Gross\r\n" * (MAX_BYTES // 10)
    assert len(content) > MAX_BYTES
    response = upload(manager, content)
    assert response.status_code == 400
    assert "Die Datei ist zu groß (höchstens 5 MB)." in text(response)
    assert import_files(app) == files and token_of(manager) is None


def test_post_without_file_or_token_answers_200_with_a_german_error(app, manager):
    response = manager.post(BASE + "/upload", data={"csrf_token": session_csrf(manager)})
    assert response.status_code == 200 and "Bitte eine CSV- oder Excel-Datei wählen." in text(response)
    for route in ("/mapping", "/import", "/cancel"):
        response = manager.post(BASE + route, data={"csrf_token": session_csrf(manager)})
        assert response.status_code == 200, route
        assert "Es gibt keinen begonnenen Import." in text(response), route
    for route in ("/mapping", "/preview"):
        assert "Es gibt keinen begonnenen Import." in text(manager.get(BASE + route)), route


def test_post_without_csrf_is_refused(app, manager, cleanup):
    response = manager.post(BASE + "/upload", data={"file": (io.BytesIO(b"Vorname;Nachname\nA;B\n"), "k.csv")},
                            content_type="multipart/form-data")
    assert response.status_code == 400 and token_of(manager) is None


# --- access -------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["Employee", "Viewer"])
def test_employee_and_viewer_get_403(app, client_for, role, cleanup):
    client = client_for(role)
    assert client.get(BASE + "/").status_code == 403
    assert client.get(BASE + "/preview").status_code == 403
    data = {"file": (io.BytesIO(b"Vorname;Nachname\nA;B\n"), "k.csv"), "csrf_token": session_csrf(client)}
    assert client.post(BASE + "/upload", data=data, content_type="multipart/form-data").status_code == 403
    assert token_of(client) is None


def test_owner_sees_the_menu_entry(owner):
    assert f'href="{BASE}/"' in html(owner.get("/"))


def test_another_user_cannot_use_the_token(app, client_for, cleanup):
    manager, owner = client_for("Manager"), client_for("Owner")
    start(manager, csv_bytes(["Vorname|Nachname", "Mia|Importl"]))
    token = token_of(manager)
    before = customer_count(app)
    data = {"mode": "valid", "duplicates": "create", "token": token, "csrf_token": session_csrf(owner)}
    assert owner.post(BASE + "/import", data=data).status_code == 403
    assert owner.post(BASE + "/cancel", data=data).status_code == 403
    assert owner.post(BASE + "/mapping", data={**data, "col_0": "first_name", "col_1": "last_name"}).status_code == 403
    assert customer_count(app) == before and token in import_files(app)
    # while the owner has an import of their own, the manager's token is still not theirs
    start(owner, csv_bytes(["Vorname|Nachname", "Nils|Importl"]))
    assert owner.post(BASE + "/import", data={**data, "csrf_token": session_csrf(owner)}).status_code == 403
    assert customer_count(app) == before and token in import_files(app)
    assert run_import(manager).status_code == 200  # the manager's own import still works
    assert [c.first_name for c in customers_named(app, "Importl")] == ["Mia"]
    owner.post(BASE + "/cancel", data={"token": token_of(owner), "csrf_token": session_csrf(owner)})


def test_next_user_on_the_same_browser_does_not_inherit_the_import(app, client_for, cleanup):
    client = client_for("Manager")
    start(client, csv_bytes(["Vorname|Nachname", "Mia|Importm"]))
    token = token_of(client)
    client.get("/logout/")
    login(client, "owner")
    page = text(client.get(BASE + "/mapping"))
    assert "Es gibt keinen begonnenen Import." in page and "Importm" not in page
    assert token not in import_files(app) and token_of(client) is None
    assert run_import(client, token=token).status_code == 403
    assert customers_named(app, "Importm") == []


def test_upload_page_and_errors_in_english(manager, cleanup):
    assert manager.get("/lang/en").status_code == 302
    page = text(manager.get(BASE + "/"))
    assert "Import customers" in page and "Upload and map columns" in page
    response = upload(manager, PNG, "kunden.csv")
    assert "This file type is not accepted." in text(response)
    assert manager.get("/lang/de").status_code == 302
