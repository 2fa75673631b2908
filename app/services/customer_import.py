"""Customer import from CSV or XLSX: read the file (type by content), guess the column
mapping from the header, validate every row (German messages), find duplicates of
existing customers, and write the good rows in one transaction.

The uploaded bytes wait between the steps in INSTANCE_DIR/imports/<token> (never under
static); the token lives in the user's Flask session (app/views/customer_import.py)."""
from __future__ import annotations

import csv
import io
import os
import re
import secrets
import time
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from app.formatting import business_tz
from app.models import Customer
from app.models.customers import CUSTOMER_LABELS, EMOJI_MAX_LENGTH
from app.models.types import utcnow
from app.services.duplicates import REASON_EMAIL, CustomerIndex, matches_for
from app.services.phone import COUNTRY_CODES, normalize_phone

MAX_MB = 5  # own limit (not the document setting): an import file is read into memory at every step
MAX_BYTES = MAX_MB * 1024 * 1024
MAX_ROWS = 5000
MAX_COLUMNS = 50
PREVIEW_ROWS = 200
MAX_UNZIPPED = 60 * 1024 * 1024  # an XLSX is a zip: refuse a "zip bomb" before openpyxl unpacks it
MAX_NOTES = 10000
STALE_SECONDS = 24 * 3600
CHUNK = 64 * 1024
IN_CHUNK = 500  # values per IN (...) list
EMAIL_SCORE = 50  # the duplicate search's weight of a shared e-mail address
MAX_MATCHES = 5  # possible duplicates shown per row
DELIMITERS = (";", ",", "\t")
TOKEN_RE = re.compile(r"[0-9a-f]{32}")
CLAIMED = ".importing"  # suffix of a file whose import is running

SKIP = ""
# Target fields in the order of the mapping select.
FIELDS: dict[str, Any] = {key: CUSTOMER_LABELS[key] for key in (
    "first_name", "last_name", "email", "phone", "street", "postal_code", "city", "country", "birth_date", "notes",
    "emoji_marker", "consent_email", "consent_sms",
)}
REQUIRED = ("first_name", "last_name")

# Header names (normalized: lower case, umlauts spelled out, no blanks or punctuation) per field.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("vorname", "firstname", "first", "givenname", "forename", "rufname"),
    "last_name": ("nachname", "lastname", "last", "familienname", "surname", "familyname", "zuname", "name"),
    "email": ("email", "emailadresse", "mail", "emailaddress", "mailadresse"),
    "phone": ("telefon", "tel", "telefonnummer", "telnr", "phone", "phonenumber", "telephone", "mobil", "handy",
              "mobile", "mobilnummer", "handynummer", "rufnummer"),
    "street": ("strasse", "street", "strassehausnummer", "strasseundhausnummer", "strassenr", "adresse", "address",
               "anschrift"),
    "postal_code": ("plz", "postleitzahl", "zip", "zipcode", "postcode", "postalcode"),
    "city": ("ort", "stadt", "wohnort", "city", "town"),
    "country": ("land", "country", "staat", "laendercode", "countrycode"),
    "birth_date": ("geburtsdatum", "geburtstag", "geboren", "geboram", "birthdate", "dateofbirth", "birthday", "dob"),
    "notes": ("notizen", "notiz", "bemerkung", "bemerkungen", "anmerkung", "anmerkungen", "kommentar", "notes",
              "note", "comment", "comments"),
    "emoji_marker": ("markierung", "emoji", "marker", "kennzeichen"),
    "consent_email": ("einwilligungemail", "emaileinwilligung", "einwilligungmail", "consentemail", "emailconsent",
                      "newsletter"),
    "consent_sms": ("einwilligungsms", "smseinwilligung", "consentsms", "smsconsent"),
}
COUNTRY_NAMES = {
    "deutschland": "DE", "germany": "DE", "brd": "DE", "oesterreich": "AT", "austria": "AT", "schweiz": "CH",
    "switzerland": "CH", "niederlande": "NL", "netherlands": "NL", "frankreich": "FR", "france": "FR",
    "italien": "IT", "italy": "IT", "polen": "PL", "poland": "PL", "daenemark": "DK", "denmark": "DK",
    "belgien": "BE", "belgium": "BE", "luxemburg": "LU", "luxembourg": "LU", "tschechien": "CZ",
    "czechia": "CZ", "spanien": "ES", "spain": "ES",
}
POSTAL_DIGITS = {"DE": 5, "AT": 4, "CH": 4}
YES = {"ja", "j", "yes", "y", "true", "wahr", "1", "x", "ok", "✓", "✔"}
NO = {"nein", "n", "no", "false", "falsch", "0", "-", ""}
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_HEADER_JUNK = re.compile(r"[^a-z0-9]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DE_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T]00:00(?::00)?)?$")


class ImportRefused(ValueError):
    """An upload or mapping that is refused (German message); nothing is stored."""


class ImportBlocked(ValueError):
    """All or nothing, and rows have errors: nothing was written."""

    def __init__(self, count: int):
        super().__init__(_("Nichts importiert: %(count)d Zeile(n) mit Fehlern. Bitte die Datei korrigieren oder "
                           "„nur fehlerfreie Zeilen“ wählen.", count=count))
        self.count = count


# --- storage between the steps --------------------------------------------------------
def imports_dir() -> Path:
    path = Path(current_app.config["INSTANCE_DIR"]) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def import_path(token: str) -> Path:
    if not isinstance(token, str) or not TOKEN_RE.fullmatch(token):
        raise FileNotFoundError(token)
    return imports_dir() / token


def read_upload(stream: BinaryIO, limit: int = MAX_BYTES) -> bytes:
    """The upload's bytes, read in chunks; refused as soon as it is bigger than `limit`."""
    parts, size = [], 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise ImportRefused(_("Die Datei ist zu groß (höchstens %(mb)d MB).", mb=limit // (1024 * 1024)))
        parts.append(chunk)
    if size == 0:
        raise ImportRefused(_("Die Datei ist leer."))
    return b"".join(parts)


def store_import(data: bytes) -> str:
    """Check the bytes (readable CSV/XLSX with data rows) and keep them; the token."""
    read_table(data)
    purge_stale()
    token = secrets.token_hex(16)
    with import_path(token).open("xb") as out:
        out.write(data)
    return token


def load_import(token: str) -> bytes:
    return import_path(token).read_bytes()


def claimed_path(token: str) -> Path:
    path = import_path(token)
    return path.with_name(path.name + CLAIMED)


def claim_import(token: str) -> bytes:
    """Take the file for the import itself (an atomic rename): a second click on
    "Importieren" while the first runs, or after it, finds no file and is refused."""
    try:
        os.rename(import_path(token), claimed_path(token))
    except FileNotFoundError:
        raise ImportRefused(_("Dieser Import läuft schon oder ist beendet.")) from None
    return claimed_path(token).read_bytes()


def release_import(token: str) -> None:
    """Give a claimed file back (nothing was imported; the user may correct and retry)."""
    try:
        os.rename(claimed_path(token), import_path(token))
    except FileNotFoundError:
        pass


def discard_import(token: str | None) -> None:
    for path in (import_path, claimed_path):
        try:
            os.remove(path(token or ""))
        except FileNotFoundError:
            pass


def purge_stale(max_age: int = STALE_SECONDS) -> int:
    """Remove files of imports started and never finished or cancelled (older than a day)."""
    removed, cutoff = 0, time.time() - max_age
    for entry in os.scandir(imports_dir()):
        token = entry.name.removesuffix(CLAIMED)
        if TOKEN_RE.fullmatch(token) and entry.stat().st_mtime < cutoff:
            discard_import(token)
            removed += 1
    return removed


# --- reading ----------------------------------------------------------------------------
@dataclass
class Table:
    header: list[str]
    rows: list[tuple[int, list[Any]]]  # (line in the file, cell values)
    kind: str  # "csv" or "xlsx"
    delimiter: str | None = None
    encoding: str | None = None


WRONG_TYPE = _l("Dieser Dateityp wird nicht angenommen. Bitte eine CSV-Datei oder eine Excel-Datei (XLSX) hochladen.")


def detect_kind(data: bytes) -> str:
    """"xlsx" (a zip with xl/workbook.xml) or "csv" (text); ImportRefused otherwise."""
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            raise ImportRefused(str(WRONG_TYPE)) from None
        if "xl/workbook.xml" in names:
            return "xlsx"
        raise ImportRefused(str(WRONG_TYPE))
    decode_text(data)
    return "csv"


def decode_text(data: bytes) -> tuple[str, str]:
    """The text and its encoding: UTF-8 (with or without BOM) or Windows-1252. Binary
    content (NUL or other control characters) is refused."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ("utf-8-sig",)
    else:
        candidates = ("utf-8", "cp1252")
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _CONTROL.search(text):
            break
        return text, encoding
    raise ImportRefused(str(WRONG_TYPE))


def _records(text: str, delimiter: str) -> Iterable[list[str]]:
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def sniff_delimiter(text: str) -> str:
    """Of ; , and TAB the one that splits the first records into the same number (> 1) of columns."""
    best, best_score = DELIMITERS[0], (-1, -1)
    for delimiter in DELIMITERS:
        lengths = []
        try:
            for record in _records(text, delimiter):
                if any(cell.strip() for cell in record):
                    lengths.append(len(record))
                if len(lengths) >= 20:
                    break
        except csv.Error:
            continue
        if not lengths or lengths[0] < 2:
            continue
        score = (sum(1 for length in lengths if length == lengths[0]), lengths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_table(data: bytes) -> Table:
    text, encoding = decode_text(data)
    delimiter = sniff_delimiter(text)
    try:
        rows = _first_rows(enumerate(_records(text, delimiter), start=1))
    except csv.Error:
        raise ImportRefused(_("Die CSV-Datei kann nicht gelesen werden (ein Anführungszeichen nicht geschlossen "
                              "oder ein Feld zu lang?).")) from None
    return Table(header=[], rows=rows, kind="csv", delimiter=delimiter, encoding=encoding)


def _first_rows(records: Iterable[tuple[int, Sequence[Any]]]) -> list[tuple[int, list[Any]]]:
    """The non-blank rows, at most one more than header + MAX_ROWS (enough to know it is too long)."""
    rows = []
    for line, values in records:
        if not all(_blank(value) for value in values):
            rows.append((line, list(values)))
            if len(rows) > MAX_ROWS + 1:
                break
    return rows


def _xlsx_table(data: bytes) -> Table:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED:
                raise ImportRefused(_("Die Excel-Datei ist entpackt zu groß."))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ImportRefused(str(WRONG_TYPE)) from None
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            rows = _first_rows(enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1))
        finally:
            workbook.close()
    except ImportRefused:
        raise
    except Exception:  # openpyxl raises many kinds of errors on a damaged workbook
        raise ImportRefused(_("Die Excel-Datei kann nicht gelesen werden.")) from None
    return Table(header=[], rows=rows, kind="xlsx")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_table(data: bytes) -> Table:
    """The file as header + data rows (blank rows dropped). Refused: wrong type, no data
    rows, more than MAX_ROWS rows or MAX_COLUMNS columns."""
    table = _xlsx_table(data) if detect_kind(data) == "xlsx" else _csv_table(data)
    rows = table.rows
    if not rows:
        raise ImportRefused(_("Die Datei enthält keine Zeilen."))
    for _line, values in rows:
        while values and _blank(values[-1]):
            values.pop()
    width = max(len(values) for _line, values in rows)
    if width > MAX_COLUMNS:
        raise ImportRefused(_("Die Datei hat zu viele Spalten (höchstens %(max)d).", max=MAX_COLUMNS))
    (_header_line, header), data_rows = rows[0], rows[1:]
    if not data_rows:
        raise ImportRefused(_("Die Datei enthält nur die Kopfzeile und keine Kund:innen."))
    if len(data_rows) > MAX_ROWS:
        raise ImportRefused(_("Die Datei hat mehr als %(max)d Zeilen. Bitte in kleinere Dateien aufteilen.",
                              max=MAX_ROWS))
    table.header = [cell_text(value) or _("Spalte %(number)d", number=index + 1)
                    for index, value in enumerate(header + [None] * (width - len(header)))]
    table.rows = [(line, values + [None] * (width - len(values))) for line, values in data_rows]
    return table


def cell_text(value: Any) -> str:
    """A cell as text: numbers without ".0", dates as JJJJ-MM-TT, no control characters."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nein"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date() if (value.hour, value.minute, value.second) == (0, 0, 0) else value
    if isinstance(value, date | datetime):
        return value.isoformat()
    return _CONTROL.sub("", str(value)).strip()


# --- mapping ----------------------------------------------------------------------------
def normalize_header(name: str) -> str:
    text = unicodedata.normalize("NFC", str(name or "")).strip().lower().translate(_FOLD)
    return _HEADER_JUNK.sub("", text)


_ALIAS_TO_FIELD = {alias: key for key, aliases in HEADER_ALIASES.items() for alias in aliases}


def guess_mapping(header: Sequence[str]) -> list[str]:
    """Per column the field its header names (German or English), each field once; else SKIP."""
    mapping, taken = [], set()
    for name in header:
        key = _ALIAS_TO_FIELD.get(normalize_header(name), SKIP)
        if key in taken:
            key = SKIP
        taken.add(key)
        mapping.append(key)
    return mapping


def check_mapping(mapping: Sequence[str], width: int) -> list[str]:
    """German errors of a chosen mapping (empty: fine)."""
    if len(mapping) != width or any(key != SKIP and key not in FIELDS for key in mapping):
        return [_("Bitte für jede Spalte ein Feld oder „nicht importieren“ wählen.")]
    errors = []
    for key in REQUIRED:
        if key not in mapping:
            errors.append(_("Bitte eine Spalte als %(field)s zuordnen.", field=FIELDS[key]))
    for key in FIELDS:
        if mapping.count(key) > 1:
            errors.append(_("%(field)s ist mehreren Spalten zugeordnet.", field=FIELDS[key]))
    return errors


# --- validation ------------------------------------------------------------------------
@dataclass
class Match:
    customer_id: int
    score: int
    reasons: tuple[str, ...]
    name: str = ""


@dataclass
class RowResult:
    line: int
    values: dict[str, str]  # field → the file's text, for the preview
    record: dict[str, Any] = field(default_factory=dict)  # field → value to store
    errors: list[str] = field(default_factory=list)
    matches: list[Match] = field(default_factory=list)  # reasons are German msgids: translate when shown

    @property
    def duplicate(self) -> bool:
        return bool(self.matches)


def _column_length(key: str) -> int | None:
    column_type = Customer.__table__.c[key].type
    return column_type.length if isinstance(column_type, String) else None


def _text(key: str, raw: Any, errors: list[str], multiline: bool = False) -> str | None:
    text = cell_text(raw)
    if not multiline:
        text = " ".join(text.split())
    if not text:
        return None
    limit = MAX_NOTES if key == "notes" else _column_length(key)
    if limit is not None and len(text) > limit:
        errors.append(_("%(field)s ist zu lang (höchstens %(max)d Zeichen).", field=FIELDS[key], max=limit))
    return text


def parse_birth_date(raw: Any) -> date | None:
    """TT.MM.JJJJ, JJJJ-MM-TT or an Excel date; ValueError if none of these."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = cell_text(raw)
    if match := _DE_DATE.match(text):
        day, month, year = (int(part) for part in match.groups())
    elif match := _ISO_DATE.match(text):
        year, month, day = (int(part) for part in match.groups())
    else:
        raise ValueError(text)
    value = date(year, month, day)
    if year < 1900:
        raise ValueError(text)
    return value


def parse_consent(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = cell_text(raw).lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise ValueError(text)


def parse_country(raw: Any) -> str | None:
    text = cell_text(raw)
    if not text:
        return "DE"
    if re.fullmatch(r"[A-Za-z]{2}", text):
        return text.upper()
    return COUNTRY_NAMES.get(normalize_header(text))


def validate_row(line: int, cells: Sequence[Any], mapping: Sequence[str], today: date) -> RowResult:
    """One row: its values for the preview, the clean record, its German errors (no database)."""
    raw = {key: cells[index] for index, key in enumerate(mapping) if key != SKIP and index < len(cells)}
    result = RowResult(line=line, values={key: cell_text(value) for key, value in raw.items()})
    errors, record = result.errors, result.record

    for key in ("first_name", "last_name"):
        record[key] = _text(key, raw.get(key), errors)
    if not record["last_name"]:
        errors.insert(0, _("Nachname fehlt."))
    if not record["first_name"]:
        errors.insert(0, _("Vorname fehlt."))

    country = parse_country(raw.get("country"))
    if country is None:
        errors.append(_("Land „%(value)s“ nicht erkannt (bitte als Ländercode wie DE).", value=cell_text(
            raw.get("country"))))
    record["country"] = country or "DE"

    email = _text("email", raw.get("email"), errors)
    if email:
        email = email.lower()
        from email_validator import EmailNotValidError, validate_email

        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError:
            errors.append(_("E-Mail-Adresse „%(value)s“ ist ungültig.", value=email))
    record["email"] = email

    phone_text = cell_text(raw.get("phone"))
    record["phone"] = None
    if phone_text:
        phone = normalize_phone(phone_text, record["country"] if record["country"] in COUNTRY_CODES else "DE")
        if phone is None:
            errors.append(_("Telefonnummer „%(value)s“ nicht erkennbar.", value=phone_text))
        record["phone"] = phone

    for key in ("street", "city"):
        record[key] = _text(key, raw.get(key), errors)
    record["notes"] = _text("notes", raw.get("notes"), errors, multiline=True)

    postal = raw.get("postal_code")
    digits = POSTAL_DIGITS.get(record["country"])
    if isinstance(postal, int | float) and not isinstance(postal, bool) and digits:
        postal = cell_text(postal).zfill(digits)  # Excel drops the leading zero of "01067"
    postal_code = _text("postal_code", postal, errors)
    if postal_code and digits and not re.fullmatch(rf"[0-9]{{{digits}}}", postal_code):
        errors.append(_("PLZ „%(value)s“ muss aus %(digits)d Ziffern bestehen.", value=postal_code, digits=digits))
    record["postal_code"] = postal_code

    record["birth_date"] = None
    if not _blank(raw.get("birth_date")):
        try:
            birth_date = parse_birth_date(raw["birth_date"])
        except ValueError:
            errors.append(_("Geburtsdatum „%(value)s“ ungültig (TT.MM.JJJJ oder JJJJ-MM-TT).",
                            value=cell_text(raw["birth_date"])))
        else:
            if birth_date > today:
                errors.append(_("Geburtsdatum liegt in der Zukunft."))
            record["birth_date"] = birth_date

    marker = cell_text(raw.get("emoji_marker")) or None
    if marker and len(marker) > EMOJI_MAX_LENGTH:
        errors.append(_("Markierung zu lang (höchstens %(max)d Zeichen).", max=EMOJI_MAX_LENGTH))
    record["emoji_marker"] = marker

    for key in ("consent_email", "consent_sms"):
        try:
            record[key] = parse_consent(raw.get(key))
        except ValueError:
            errors.append(_("%(field)s: „%(value)s“ ist weder ja noch nein.", field=FIELDS[key],
                            value=cell_text(raw.get(key))))
            record[key] = False
    return result


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _add_match(result: RowResult, customer_id: int, score: int, reasons: Iterable[str]) -> None:
    for match in result.matches:
        if match.customer_id == customer_id:
            match.score = max(match.score, score)
            match.reasons = tuple(dict.fromkeys((*match.reasons, *reasons)))
            return
    result.matches.append(Match(customer_id, score, tuple(reasons)))


def find_duplicates(session: Session, results: Sequence[RowResult]) -> None:
    """E-mail taken (an error: the column is unique), e-mail twice in the file (an error),
    and possible duplicates of existing customers (app/services/duplicates.py: same e-mail,
    same phone in any format, similar name by spelling or Kölner Phonetik)."""
    first_line: dict[str, int] = {}
    for result in results:
        email = result.record.get("email")
        if email and email in first_line:
            result.errors.append(_("E-Mail-Adresse doppelt in der Datei (wie Zeile %(line)d).",
                                   line=first_line[email]))
        elif email:
            first_line[email] = result.line

    taken: dict[str, int] = {}  # every customer, erased too: the unique column counts them all
    for chunk in _chunks(sorted(first_line)):
        for customer_id, email in session.execute(
                select(Customer.id, func.lower(Customer.email)).where(func.lower(Customer.email).in_(chunk))):
            taken[email] = customer_id

    index = CustomerIndex.load(session)  # one SELECT for all rows
    for result in results:
        record = result.record
        if record.get("email") in taken:
            result.errors.append(_("E-Mail-Adresse schon bei einer Kund:in vorhanden."))
            _add_match(result, taken[record["email"]], EMAIL_SCORE, [REASON_EMAIL])
        if record.get("first_name") and record.get("last_name"):
            for customer_id, score, reasons in matches_for(
                    session, first_name=record["first_name"], last_name=record["last_name"],
                    email=record.get("email"), phone=record.get("phone"), index=index):
                _add_match(result, customer_id, score, reasons)
        result.matches.sort(key=lambda match: (-match.score, match.customer_id))
        del result.matches[MAX_MATCHES:]

    ids = sorted({match.customer_id for result in results for match in result.matches})
    names: dict[int, str] = {}
    for chunk in _chunks(ids):
        for customer in session.scalars(select(Customer).where(Customer.id.in_(chunk))):
            names[customer.id] = customer.display_name
    for result in results:
        for match in result.matches:
            match.name = names.get(match.customer_id, "")


def validate_table(session: Session, table: Table, mapping: Sequence[str]) -> list[RowResult]:
    today = datetime.now(business_tz()).date()
    results = [validate_row(line, cells, mapping, today) for line, cells in table.rows]
    find_duplicates(session, results)
    return results


# --- import -----------------------------------------------------------------------------
@dataclass
class Summary:
    rows: int
    errors: int  # rows with at least one error
    duplicates: int  # rows that look like an existing customer


def summarize(results: Sequence[RowResult]) -> Summary:
    return Summary(rows=len(results), errors=sum(1 for result in results if result.errors),
                   duplicates=sum(1 for result in results if result.duplicate))


@dataclass
class Outcome:
    created: int
    skipped_duplicates: int
    skipped_errors: int
    ids: list[int] = field(default_factory=list)


def import_rows(session: Session, results: Sequence[RowResult], *, all_or_nothing: bool = True,
                create_duplicates: bool = False) -> Outcome:
    """Add the customers to the session (the caller commits: one transaction). Duplicates
    are skipped unless `create_duplicates`; a row with errors is skipped, or — all or
    nothing — stops the import before anything is added (ImportBlocked)."""
    to_create, skipped_duplicates, failing = [], 0, 0
    for result in results:
        if result.duplicate and not create_duplicates:
            skipped_duplicates += 1
        elif result.errors:
            failing += 1
        else:
            to_create.append(result)
    if all_or_nothing and failing:
        raise ImportBlocked(failing)
    consent_at = utcnow()
    customers = []
    for result in to_create:
        record = dict(result.record)
        if record["consent_email"] or record["consent_sms"]:
            record["consent_at"] = consent_at
        customers.append(Customer(**record))
    session.add_all(customers)
    session.flush()
    return Outcome(created=len(customers), skipped_duplicates=skipped_duplicates, skipped_errors=failing,
                   ids=[customer.id for customer in customers])
