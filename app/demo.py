"""Demo data: a believable German business ("Pfote & Schere", a hair salon with
a dog school) for `flask demo seed`.

The data set is planned completely in Python first, from `random.Random` and
`Faker("de_DE")` instances seeded from `seed`, relative to a reference day
(today at midnight in the business time zone unless `today` is given). The
same seed and day give the same rows with the same ids.

Primary keys are assigned here (continuing after the highest existing id), so
foreign keys are known without reading anything back. On PostgreSQL the id
sequences are moved past the new rows at the end.

Two write paths produce the same result — every row once in its table and
once in its `*_version` table as an INSERT (operation_type 0) of a Continuum
transaction whose user is the `system` user:

* ``orm`` (default for up to ``ORM_MAX_BOOKINGS`` bookings): rows go through the
  ORM session in chunks; SQLAlchemy-Continuum writes the versions itself, one
  Continuum transaction per committed chunk.
* ``core`` (the fast path for big data sets, e.g. 100,000 customers and
  1,000,000 bookings): Core ``insert()`` executemany in chunks into each table
  and, with the same values, into its version table, under one Continuum
  transaction per table, written through Core as well. ORM events do not run
  on this path, so the rows are complete here (end time, price, status,
  location, created_at) rather than derived by model listeners.

Chunks are committed as they go (memory stays flat), so a seed that fails half
way leaves a partly filled database: recreate it and seed again.

Group services (Kurs, Gruppe, Seminar) get one booking per participant, each in
its own slot of the employee's day (places of one group session may share a
slot — see the group-slots migration — but the seeder keeps them apart). Cancelled bookings may overlap others (the
slot was given to someone else).

The default size is a busy business: 40,000 bookings for 8 employees are
about 9 a day each, which nearly fills their working hours. When the requested
bookings do not fit (above roughly 42,000), more locations with 4 employees
each are added; the demo logins stay owner, manager, viewer and
employee1…employee8.
"""
from __future__ import annotations

import bisect
import math
import random
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from faker import Faker
from flask import current_app
from sqlalchemy import func, insert, select, text
from sqlalchemy_continuum import Operation, version_class, versioning_manager
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.jobs.base import acting_as
from app.models import (
    Absence,
    BonusProgram,
    BonusTransaction,
    Booking,
    BookingStatus,
    Customer,
    Employee,
    Invoice,
    Location,
    NotificationLog,
    PassCard,
    PassCardType,
    PassRedemption,
    Pet,
    Resource,
    Service,
    Setting,
    WorkingHours,
)
from app.models.customers import EMOJI_MARKERS
from app.security import EMPLOYEE, MANAGER, OWNER, SYSTEM_USERNAME, VIEWER
from app.services.bonus import HOOK_OFF as BONUS_HOOK_OFF
from app.services.geocoding import HOOK_OFF as GEOCODE_HOOK_OFF

UTC = timezone.utc
ORM_MAX_BOOKINGS = 100_000
ORM_CHUNK = 5_000
CORE_CHUNK = 10_000
HISTORY_DAYS = 730
REMINDED_DAYS = 14
FUTURE_DAYS = 61
MAX_FILL = 0.97  # at most this share of the possible slots is booked
CANCELLED_SHARE = 0.085
DUPLICATE_SHARE = 0.02
EMOJI_SHARE = 0.10
BUSINESS_NAME = "Pfote & Schere – Friseursalon und Hundeschule"
BUSINESS_DOMAIN = "pfote-und-schere.example"
# Reserved example domains (RFC 2606/6761): demo e-mails can never reach anybody.
MAIL_DOMAINS = [
    ("web.example", 24), ("gmx.example", 22), ("t-online.example", 14), ("gmail.example", 16),
    ("posteo.example", 4), ("icloud.example", 6), ("outlook.example", 6), ("example.org", 4),
    ("example.com", 4),
]

# ---------------------------------------------------------------------------
# Catalogue
# ---------------------------------------------------------------------------
SALON, DOG = "salon", "dog"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    kind: str
    category: str
    duration: int
    buffer: int
    price: str
    weight: float
    capacity: int = 1
    workflow: bool = False
    resource: str | None = None
    description: str | None = None


SERVICES: list[ServiceSpec] = [
    ServiceSpec("Haarschnitt Damen", SALON, "einzelstunde", 45, 10, "49.00", 24),
    ServiceSpec("Haarschnitt Herren", SALON, "einzelstunde", 30, 0, "28.00", 34),
    ServiceSpec("Kinderhaarschnitt", SALON, "einzelstunde", 30, 0, "18.00", 10),
    ServiceSpec("Waschen, Schneiden, Föhnen", SALON, "einzelstunde", 60, 10, "59.00", 10),
    ServiceSpec("Färben Ansatz", SALON, "einzelstunde", 90, 10, "65.00", 6, resource="Färbeplatz"),
    ServiceSpec("Strähnchen", SALON, "einzelstunde", 120, 10, "89.00", 3, resource="Färbeplatz"),
    ServiceSpec("Balayage", SALON, "einzelstunde", 180, 15, "149.00", 1, workflow=True, resource="Färbeplatz"),
    ServiceSpec("Dauerwelle", SALON, "einzelstunde", 120, 10, "79.00", 0.8),
    ServiceSpec("Bartpflege", SALON, "einzelstunde", 30, 0, "19.00", 9),
    ServiceSpec("Hochsteckfrisur", SALON, "einzelstunde", 60, 10, "55.00", 1.2, workflow=True),
    ServiceSpec("Brautstyling", SALON, "einzelstunde", 150, 30, "189.00", 0.4, workflow=True,
                description="Probetermin und Styling am Hochzeitstag nach Absprache."),
    ServiceSpec("Styling-Workshop", SALON, "seminar", 180, 30, "79.00", 0.3, capacity=8, workflow=True,
                resource="Seminarraum"),
    ServiceSpec("Lockenpflege-Kurs", SALON, "kurs", 90, 15, "39.00", 0.5, capacity=6, resource="Seminarraum"),
    ServiceSpec("Erstgespräch Hundetraining", DOG, "einzelstunde", 30, 0, "35.00", 6),
    ServiceSpec("Einzeltraining", DOG, "einzelstunde", 60, 0, "55.00", 16),
    ServiceSpec("Einzeltraining kurz", DOG, "einzelstunde", 30, 0, "32.00", 20),
    ServiceSpec("Verhaltensberatung", DOG, "einzelstunde", 90, 15, "89.00", 2, workflow=True),
    ServiceSpec("Welpenkurs", DOG, "kurs", 45, 0, "25.00", 12, capacity=6, resource="Trainingsplatz"),
    ServiceSpec("Junghundekurs", DOG, "kurs", 45, 0, "25.00", 8, capacity=6, resource="Trainingsplatz"),
    ServiceSpec("Rückruftraining", DOG, "kurs", 60, 0, "29.00", 4, capacity=6, resource="Trainingsplatz"),
    ServiceSpec("Alltagstraining Gruppe", DOG, "gruppe", 45, 0, "18.00", 10, capacity=8, resource="Trainingsplatz"),
    ServiceSpec("Social Walk", DOG, "gruppe", 60, 15, "15.00", 5, capacity=10),
    ServiceSpec("Agility Gruppe", DOG, "gruppe", 45, 0, "22.00", 7, capacity=6, resource="Agility-Parcours"),
    ServiceSpec("Mantrailing", DOG, "gruppe", 90, 15, "35.00", 2, capacity=5),
    ServiceSpec("Agility Seminar", DOG, "seminar", 180, 30, "95.00", 0.5, capacity=10, workflow=True,
                resource="Agility-Parcours"),
    ServiceSpec("Erste Hilfe am Hund", DOG, "seminar", 180, 30, "69.00", 0.4, capacity=12, workflow=True),
    ServiceSpec("Hundeführerschein Theorie", DOG, "seminar", 120, 15, "49.00", 0.6, capacity=15),
]
# name, kind of the location it stands in, capacity
RESOURCES = [("Färbeplatz", SALON, 2), ("Seminarraum", SALON, 12), ("Trainingsplatz", DOG, 10),
             ("Agility-Parcours", DOG, 8)]

# Weekly shifts per employee slot in a location (weekday 0 = Monday → blocks).
_MO_FR, _DI_FR = range(5), range(1, 5)
SALON_SHIFTS: list[dict[int, list[tuple[str, str]]]] = [
    {**{d: [("08:30", "13:00"), ("13:30", "18:30")] for d in _MO_FR}},
    {**{d: [("10:00", "14:00"), ("14:30", "20:00")] for d in _DI_FR}, 5: [("08:00", "15:00")]},
    {**{d: [("08:00", "17:00")] for d in (0, 2, 3, 4)}, 5: [("08:30", "15:00")]},
    {**{d: [("09:00", "16:00")] for d in range(4)}, 5: [("09:00", "15:00")]},
]
DOG_SHIFTS: list[dict[int, list[tuple[str, str]]]] = [
    {**{d: [("08:00", "12:30"), ("14:30", "20:00")] for d in _MO_FR}},
    {**{d: [("12:00", "20:00")] for d in _DI_FR}, 5: [("08:00", "16:00")]},
    {**{d: [("08:00", "12:00"), ("15:00", "20:00")] for d in (0, 1, 2, 4)}, 5: [("09:00", "15:00")]},
    {**{d: [("10:00", "18:00")] for d in _DI_FR}, 5: [("08:00", "16:00")]},
]
EMPLOYEES_PER_LOCATION = 4
LOCATION_NAMES = ["Filiale Mitte", "Filiale Süd", "Filiale Nord", "Filiale West", "Filiale Ost",
                  "Filiale Pankow", "Filiale Spandau", "Filiale Köpenick", "Filiale Potsdam",
                  "Filiale Steglitz", "Filiale Lichtenberg", "Filiale Wedding"]
LOCATION_ADDRESSES = [("Torstraße 140", "10119", "Berlin", 52.5296, 13.4010),
                      ("Mariendorfer Damm 45", "12109", "Berlin", 52.4456, 13.3874)]
EMPLOYEE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                   "#17becf", "#bcbd22", "#7f7f7f"]

# Share of the geocoded demo customers placed at their postcode centroid ("approx", the
# offline fallback); the others lie a few hundred metres around it ("ok").
APPROX_SHARE = 0.1
# Postcode centroids (approximate) of the catchment area: plz, place, lat, lon, weight.
REGIONS = [
    ("10115", "Berlin", 52.532, 13.385, 6), ("10119", "Berlin", 52.530, 13.405, 7),
    ("10178", "Berlin", 52.521, 13.409, 4), ("10243", "Berlin", 52.511, 13.444, 5),
    ("10245", "Berlin", 52.500, 13.464, 4), ("10405", "Berlin", 52.538, 13.424, 6),
    ("10435", "Berlin", 52.537, 13.410, 5), ("10437", "Berlin", 52.545, 13.414, 5),
    ("10551", "Berlin", 52.530, 13.336, 3), ("10585", "Berlin", 52.513, 13.304, 3),
    ("10827", "Berlin", 52.484, 13.352, 4), ("10961", "Berlin", 52.493, 13.402, 5),
    ("10997", "Berlin", 52.500, 13.435, 4), ("12043", "Berlin", 52.481, 13.435, 5),
    ("12099", "Berlin", 52.466, 13.397, 6), ("12101", "Berlin", 52.477, 13.379, 5),
    ("12103", "Berlin", 52.466, 13.374, 4), ("12105", "Berlin", 52.448, 13.370, 6),
    ("12107", "Berlin", 52.435, 13.385, 6), ("12109", "Berlin", 52.444, 13.396, 7),
    ("12157", "Berlin", 52.468, 13.340, 3), ("12163", "Berlin", 52.457, 13.322, 3),
    ("12247", "Berlin", 52.437, 13.350, 4), ("12277", "Berlin", 52.416, 13.373, 4),
    ("12305", "Berlin", 52.405, 13.405, 3), ("12347", "Berlin", 52.449, 13.438, 3),
    ("12435", "Berlin", 52.488, 13.464, 3), ("12555", "Berlin", 52.445, 13.575, 2),
    ("13187", "Berlin", 52.569, 13.402, 3), ("13347", "Berlin", 52.548, 13.360, 3),
    ("13597", "Berlin", 52.536, 13.199, 1), ("14163", "Berlin", 52.434, 13.259, 1),
    ("14467", "Potsdam", 52.400, 13.058, 1), ("14513", "Teltow", 52.400, 13.272, 2),
    ("14532", "Kleinmachnow", 52.407, 13.223, 1), ("15831", "Blankenfelde-Mahlow", 52.345, 13.412, 2),
    ("12529", "Schönefeld", 52.389, 13.507, 1), ("15732", "Eichwalde", 52.372, 13.616, 1),
]
COMMON_LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner",
    "Krause", "Meier", "Lehmann", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer",
    "Huber", "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Vogel",
]
LAST_NAME_VARIANTS = {
    "Meyer": ["Maier", "Meier", "Mayer"], "Maier": ["Meyer", "Meier"], "Meier": ["Meyer", "Maier"],
    "Mayer": ["Meyer", "Maier"], "Schmidt": ["Schmitt", "Schmid"], "Schmitt": ["Schmidt"],
    "Schmid": ["Schmidt"], "Hoffmann": ["Hofmann"], "Hofmann": ["Hoffmann"], "Schulz": ["Schultz"],
    "Schulze": ["Schultze"], "Fischer": ["Fischer-Lang"], "Weiß": ["Weiss"], "Lang": ["Lange"],
    "Lange": ["Lang"], "Koch": ["Koh"], "Peters": ["Petersen"],
}
FIRST_NAME_VARIANTS = {
    "Stefan": "Stephan", "Stephan": "Stefan", "Christian": "Chris", "Katharina": "Kathrin",
    "Michael": "Micha", "Alexander": "Alex", "Alexandra": "Alex", "Elisabeth": "Lisa", "Johannes": "Hannes",
    "Thomas": "Tom", "Susanne": "Susi", "Daniela": "Dani", "Matthias": "Mathias", "Claudia": "Klaudia",
    "Carsten": "Karsten", "Nicole": "Nikole", "Sandra": "Sandy", "Andreas": "Andi",
}
DOG_NAMES = [
    "Bello", "Luna", "Balu", "Emma", "Sammy", "Paul", "Kira", "Lucky", "Amy", "Rocky", "Buddy", "Nala",
    "Sam", "Leo", "Frieda", "Max", "Charly", "Jack", "Bruno", "Mia", "Lotte", "Ella", "Bella", "Milo",
    "Oskar", "Lilly", "Anton", "Hugo", "Henry", "Ronja", "Smilla", "Finn", "Maja", "Emil", "Paula",
    "Rudi", "Kalle", "Fiete", "Wilma", "Motte", "Krümel", "Flocke", "Benny", "Susi", "Gustav", "Toni",
]
DOG_BREEDS = [
    ("Mischling", 30), ("Labrador Retriever", 9), ("Golden Retriever", 5), ("Deutscher Schäferhund", 5),
    ("Dackel", 5), ("Französische Bulldogge", 5), ("Australian Shepherd", 6), ("Border Collie", 4),
    ("Chihuahua", 3), ("Jack Russell Terrier", 4), ("Yorkshire Terrier", 2), ("Berner Sennenhund", 2),
    ("Magyar Vizsla", 3), ("Havaneser", 3), ("Malteser", 2), ("Beagle", 3), ("Boxer", 2),
    ("Cocker Spaniel", 2), ("Pudel", 2), ("Rhodesian Ridgeback", 1), ("Weimaraner", 1),
    ("Zwergschnauzer", 3), ("Podenco (Tierschutz)", 2), ("Labradoodle", 3),
]
PET_NOTES = ["Zieht stark an der Leine", "Unsicher bei fremden Hunden", "Allergie: kein Huhn als Leckerli",
             "Kastriert", "Aus dem Tierschutz, braucht Zeit", "Sehr verfressen – Futterbeutel mitbringen",
             "Reagiert auf Fahrräder", "Läuft an der Schleppleine"]
CUSTOMER_NOTES = ["Bevorzugt Termine am Vormittag", "Bitte nicht vor 10 Uhr anrufen", "Zahlt gern bar",
                  "Allergie gegen Latex", "Kommt oft mit Kinderwagen", "Empfindliche Kopfhaut",
                  "Möchte Rechnungen per E-Mail", "Kommt mit dem Rad, braucht keinen Parkplatz",
                  "Stammkundin seit der Eröffnung", "Hat Gutschein zum Geburtstag bekommen"]
SALON_COMMENTS = ["Bitte wieder wie beim letzten Mal", "Möchte kürzer als sonst", "Erstbesuch",
                  "Farbe: Nr. 7.3 wie letztes Mal", "Kommt evtl. 10 Minuten später", "Mit Kopfmassage",
                  "Bitte an die Allergie denken", "Möchte zu derselben Friseurin wie immer"]
DOG_COMMENTS = ["Kommt mit beiden Hunden", "Hund ist läufig – bitte Abstand", "Erstes Training nach OP",
                "Leckerlis mitbringen", "Trainingsziel: Rückruf", "Übt noch Leinenführigkeit",
                "Bitte Treffpunkt am Parkplatz", "Hat den Kurs von einer Freundin empfohlen bekommen"]
CANCEL_REASONS = ["Krankheit", "Terminüberschneidung (beruflich)", "Kund:in hat telefonisch abgesagt",
                  "Kurzfristig verhindert", "Kinderbetreuung fällt aus", "Umzug", "Auto in der Werkstatt",
                  "Mitarbeiter:in erkrankt – Termin wird neu vereinbart", "Doppelt gebucht"]
DOG_CANCEL_REASONS = ["Hund ist krank", "Hund ist läufig", "Unwetter – Training im Freien fällt aus"]
ABSENCE_NOTES = {"vacation": ["Sommerurlaub", "Urlaub", "Brückentage", "Winterurlaub"],
                 "sick": [None, "Krankmeldung liegt vor", "AU bis Ende der Woche"],
                 "training": ["Fortbildung Farbtechnik", "Fortbildung Hundeverhalten", "Erste-Hilfe-Kurs"]}
CARD_TYPES = [
    # name, units, validity days, price, category, no-show costs a unit, service names
    ("10er-Karte Einzeltraining", 10, 365, "495.00", "einzelstunde", True, ["Einzeltraining"]),
    ("5er-Karte Einzeltraining kurz", 5, 180, "150.00", "einzelstunde", True, ["Einzeltraining kurz"]),
    ("10er-Karte Gruppentraining", 10, 365, "160.00", "gruppe", True,
     ["Alltagstraining Gruppe", "Agility Gruppe", "Social Walk"]),
    ("Welpenkurs-Karte (8 Stunden)", 8, 120, "180.00", "kurs", False, ["Welpenkurs", "Junghundekurs"]),
    ("5er-Karte Herrenhaarschnitt", 5, 365, "125.00", "einzelstunde", False, ["Haarschnitt Herren"]),
]
BONUS_PROGRAMS = [
    # name, kind, points per euro, threshold, reward, reward kind, value, referral points
    ("Treuepunkte Salon", SALON, "1.00", 300, "10 % Rabatt auf die nächste Behandlung", "percent", "10.00", 50),
    ("Pfotenpunkte Hundeschule", DOG, "2.00", 500, "Eine Einzelstunde gratis", "fixed", "55.00", 100),
]
SOURCES = {SALON: [("online", 33), ("phone", 35), ("walk_in", 12), ("backoffice", 20)],
           DOG: [("online", 45), ("phone", 30), ("backoffice", 25)]}


# ---------------------------------------------------------------------------
# Row collection
# ---------------------------------------------------------------------------
_REQUIRED = object()


class Rows:
    """Rows for one model as tuples in table column order, complete with the
    column defaults, so the ORM and the Core path write the same values."""

    def __init__(self, model: type, first_id: int) -> None:
        self.model = model
        self.table = model.__table__
        self.columns = [c.name for c in self.table.columns]
        self.defaults: list[Any] = []
        for column in self.table.columns:
            default = column.default
            if column.primary_key or (default is not None and not default.is_scalar) or (
                default is None and column.server_default is not None
            ):
                self.defaults.append(_REQUIRED)
            else:
                self.defaults.append(default.arg if default is not None else None)
        self.index = {name: i for i, name in enumerate(self.columns)}
        self.next_id = first_id
        self.rows: list[tuple] = []

    def new_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def add(self, **values: Any) -> int:
        if "id" not in values:
            values["id"] = self.new_id()
        unknown = values.keys() - self.index.keys()
        if unknown:
            raise KeyError(f"{self.table.name}: unknown columns {sorted(unknown)}")
        row = tuple(values.get(name, default) for name, default in zip(self.columns, self.defaults, strict=True))
        if any(value is _REQUIRED for value in row):
            missing = [n for n, v in zip(self.columns, row, strict=True) if v is _REQUIRED]
            raise ValueError(f"{self.table.name}: give {missing} explicitly")
        self.rows.append(row)
        return values["id"]

    def __len__(self) -> int:
        return len(self.rows)

    def dicts(self, start: int, stop: int) -> list[dict[str, Any]]:
        columns = self.columns
        return [dict(zip(columns, row, strict=True)) for row in self.rows[start:stop]]


@dataclass
class Plan:
    tables: dict[type, Rows] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    employee_logins: list[tuple[int, str, str, str]] = field(default_factory=list)  # id, first, last, email
    program_services: dict[int, list[int]] = field(default_factory=dict)  # bonus program → services it covers

    def rows(self, model: type) -> Rows:
        return self.tables[model]


WRITE_ORDER = [Location, Resource, Service, Employee, WorkingHours, Absence, Customer, Pet, Booking, NotificationLog,
               PassCardType, PassCard, PassRedemption, BonusProgram, BonusTransaction]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _ascii(value: str) -> str:
    value = value.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    value = value.replace("Ä", "Ae").replace("Ö", "Oe").replace("Ü", "Ue")
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return "".join(ch for ch in value.lower() if ch.isalnum() or ch in ".-")


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month = (h + l_ - 7 * m + 90) // 25
    day = (h + l_ - 7 * m + 33 * month + 19) % 32
    return date(year, month, day)


def closed_days(years: range) -> set[date]:
    """Public holidays in Berlin plus Christmas Eve and New Year's Eve."""
    days: set[date] = set()
    for year in years:
        easter = _easter(year)
        days.update({date(year, 1, 1), date(year, 3, 8), date(year, 5, 1), date(year, 10, 3),
                     date(year, 12, 24), date(year, 12, 25), date(year, 12, 26), date(year, 12, 31)})
        days.update(easter + timedelta(days=n) for n in (-2, 1, 39, 50))
    return days


class PhoneNumber:
    """A German phone number that can be written in several customary formats."""

    MOBILE = ["0151", "0152", "0157", "0160", "0162", "0170", "0171", "0172", "0173", "0174", "0175",
              "0176", "0177", "0178", "0179"]

    def __init__(self, rng: random.Random) -> None:
        if rng.random() < 0.75:
            self.area = rng.choice(self.MOBILE)
            self.number = str(rng.randint(1_000_000, 99_999_999))
        else:
            self.area = rng.choice(["030", "030", "030", "0331", "03328", "03379"])
            self.number = str(rng.randint(200_000, 9_999_999))

    def format(self, style: int) -> str:
        area, number = self.area, self.number
        return [
            f"{area} {number}",
            f"+49 {area[1:]} {number}",
            f"{area}/{number}",
            f"{area}-{number[:3]} {number[3:]}",
            f"+49{area[1:]}{number}",
        ][style]


# ---------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------
@dataclass
class StaffMember:
    id: int
    kind: str
    location_id: int
    shift: dict[int, list[tuple[int, int]]]
    off_days: set[date]


class Planner:
    def __init__(self, *, customers: int, bookings: int, seed: int, today: date, tz: ZoneInfo,
                 system_user_id: int, first_ids: dict[type, int], statuses: dict[str, int]) -> None:
        if customers < 0 or bookings < 0:
            raise ValueError("customers and bookings must not be negative")
        if bookings and not customers:
            raise ValueError("bookings need customers")
        self.n_customers, self.n_bookings, self.seed = customers, bookings, seed
        self.today, self.tz = today, tz
        self.now = datetime.combine(today, time(0), tzinfo=tz).astimezone(UTC)
        self.first_day = today - timedelta(days=HISTORY_DAYS)
        self.last_day = today + timedelta(days=FUTURE_DAYS)
        self.system_user_id = system_user_id
        self.statuses = statuses
        self.plan = Plan(tables={model: Rows(model, first_ids[model]) for model in WRITE_ORDER})

    def rng(self, stage: str) -> random.Random:
        """One independent generator per stage: a stage's data does not change
        when another stage draws more or fewer numbers."""
        return random.Random(f"terminbuch-demo:{self.seed}:{stage}")

    def faker(self, stage: str) -> Faker:
        fake = Faker("de_DE")
        fake.seed_instance(f"terminbuch-demo:{self.seed}:{stage}")
        return fake

    def utc(self, day: date, minute: int) -> datetime:
        return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.tz).astimezone(UTC)

    # -- build ----------------------------------------------------------------
    def build(self) -> Plan:
        self.catalogue()
        locations = 2
        while True:
            self.staff(locations)
            slots = self.slots()
            kept = self.n_bookings - round(self.n_bookings * CANCELLED_SHARE)
            needed = kept / MAX_FILL
            # The 2 base locations may be booked up to the last slot before more are added.
            if len(slots) >= needed or (locations == 2 and len(slots) >= kept):
                break
            factor = needed / max(len(slots), 1)
            locations = max(locations + 2, 2 * math.ceil(locations * factor / 2))
        self.service_rows()
        self.customers()
        self.bookings(slots)
        del slots
        self.finish_customers()
        self.reminder_log()
        self.cards()
        self.bonus()
        self.plan.settings = {"business_name": BUSINESS_NAME,
                              "business_address": "Torstraße 140, 10119 Berlin"}
        return self.plan

    def reminder_log(self) -> None:
        """The notification log of the reminders sent before the bookings of the last
        REMINDED_DAYS (the Erinnerungsübersicht's "davon versandt"): to customers who agreed
        to e-mail or SMS, a day ahead; a few failed with the gateway's reason."""
        rng, rows = self.rng("reminder-log"), self.plan.rows(NotificationLog)
        for booking_id, person_index, employee_id, start in self.reminded:
            person = self.people[person_index]
            if person["consent_email"] and person["email"]:
                channel, recipient = "email", person["email"]
            elif person["consent_sms"] and person["phone"]:
                channel, recipient = "sms", person["phone"]
            else:
                continue
            queued = start - timedelta(hours=24, minutes=rng.randint(0, 4))
            failed = rng.random() < 0.03
            rows.add(kind="reminder", channel=channel, recipient=recipient, customer_id=person["id"],
                     employee_id=employee_id, booking_id=booking_id, status="failed" if failed else "sent",
                     error="Der Versanddienst ist nicht erreichbar." if failed else None, created_at=queued,
                     sent_at=None if failed else queued + timedelta(seconds=rng.randint(2, 90)))
        del self.reminded

    def catalogue(self) -> None:
        plan = self.plan
        services = plan.rows(Service)
        self.services: list[tuple[int, ServiceSpec]] = []
        for spec in SERVICES:
            service_id = services.new_id()
            self.services.append((service_id, spec))
        self.service_pick: dict[str, tuple[list[int], list[float]]] = {}
        for kind in (SALON, DOG):
            indexes = [i for i, (_, spec) in enumerate(self.services) if spec.kind == kind]
            cumulative, total = [], 0.0
            for i in indexes:
                total += self.services[i][1].weight
                cumulative.append(total)
            self.service_pick[kind] = (indexes, cumulative)

    def service_rows(self) -> None:
        """Services use the resources of the first location of their kind."""
        first_location = {kind: min(lid for lid, k in self.location_kind.items() if k == kind)
                          for kind in (SALON, DOG)}
        rows = self.plan.rows(Service)
        for service_id, spec in self.services:
            resource_id = self.resource_ids.get((spec.resource, first_location[spec.kind])) if spec.resource else None
            rows.add(id=service_id, name=spec.name, category=spec.category, description=spec.description,
                     duration_minutes=spec.duration, buffer_minutes=spec.buffer, price=Decimal(spec.price),
                     vat_rate=Decimal("19.00"), capacity=spec.capacity, status_workflow=spec.workflow,
                     reminder_default=spec.kind == DOG or spec.duration >= 60, resource_id=resource_id,
                     active=True)

    def staff(self, n_locations: int) -> None:
        """Locations, resources, employees, working hours and absences."""
        rng, fake = self.rng("staff"), self.faker("staff")
        plan = self.plan
        for model in (Location, Resource, Employee, WorkingHours, Absence):
            rows = plan.rows(model)
            rows.next_id -= len(rows)
            rows.rows.clear()
        plan.employee_logins.clear()
        self.location_kind: dict[int, str] = {}
        self.resource_ids: dict[tuple[str, int], int] = {}
        self.staff_members: list[StaffMember] = []
        used_emails: set[str] = set()
        for loc_index in range(n_locations):
            kind = SALON if loc_index % 2 == 0 else DOG
            if loc_index < len(LOCATION_ADDRESSES):
                street, plz, city, lat, lon = LOCATION_ADDRESSES[loc_index]
            else:
                plz, city, lat, lon, _ = rng.choice(REGIONS)
                street = f"{fake.street_name()} {rng.randint(1, 160)}"
            name = LOCATION_NAMES[loc_index] if loc_index < len(LOCATION_NAMES) else f"Filiale {loc_index + 1}"
            location_id = plan.rows(Location).add(
                name=name, street=street, postal_code=plz, city=city, lat=lat, lon=lon,
                phone=f"030 {rng.randint(2000000, 9999999)}", email=f"filiale{loc_index + 1}@{BUSINESS_DOMAIN}",
                active=True)
            self.location_kind[location_id] = kind
            for res_name, res_kind, capacity in RESOURCES:
                if res_kind == kind:
                    self.resource_ids[(res_name, location_id)] = plan.rows(Resource).add(
                        name=f"{res_name} ({name.removeprefix('Filiale ')})", location_id=location_id,
                        capacity=capacity, active=True)
            shifts = SALON_SHIFTS if kind == SALON else DOG_SHIFTS
            for slot in range(EMPLOYEES_PER_LOCATION):
                female = rng.random() < (0.8 if kind == SALON else 0.65)
                first = fake.first_name_female() if female else fake.first_name_male()
                last = fake.last_name()
                email = f"{_ascii(first)}.{_ascii(last)}@{BUSINESS_DOMAIN}"
                while email in used_emails:
                    email = f"{_ascii(first)}.{_ascii(last)}{rng.randint(2, 99)}@{BUSINESS_DOMAIN}"
                used_emails.add(email)
                employee_id = plan.rows(Employee).new_id()
                plan.rows(Employee).add(
                    id=employee_id, first_name=first, last_name=last, email=email,
                    phone=PhoneNumber(rng).format(0), color=EMPLOYEE_COLORS[len(self.staff_members) % 10],
                    location_id=location_id, user_id=None, active=True, telegram_chat_id=None)
                plan.employee_logins.append((employee_id, first, last, email))
                shift = {day: [(_minutes(a), _minutes(b)) for a, b in blocks]
                         for day, blocks in shifts[slot].items()}
                for weekday, blocks in shift.items():
                    for start, end in blocks:
                        plan.rows(WorkingHours).add(
                            employee_id=employee_id, location_id=location_id, weekday=weekday,
                            start_time=time(start // 60, start % 60), end_time=time(end // 60, end % 60))
                off_days = self.absences(rng, employee_id)
                self.staff_members.append(StaffMember(employee_id, kind, location_id, shift, off_days))

    def absences(self, rng: random.Random, employee_id: int) -> set[date]:
        """Two to three vacations a year, some sick days, a training day; returns the days off."""
        off: set[date] = set()
        rows = self.plan.rows(Absence)
        day = self.first_day + timedelta(days=rng.randint(10, 60))
        while day < self.last_day + timedelta(days=30):
            r = rng.random()
            if r < 0.45:
                kind, length = "vacation", rng.choice([5, 7, 10, 12, 14])
            elif r < 0.85:
                kind, length = "sick", rng.choice([1, 1, 2, 3, 5])
            else:
                kind, length = "training", 1
            if kind == "sick" and day >= self.today:
                kind, length = "vacation", rng.choice([3, 5, 7])
            start_utc = datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)
            end_utc = datetime.combine(day + timedelta(days=length), time(0), tzinfo=self.tz).astimezone(UTC)
            rows.add(employee_id=employee_id, kind=kind, start_at=start_utc, end_at=end_utc,
                     note=rng.choice(ABSENCE_NOTES[kind]))
            off.update(day + timedelta(days=n) for n in range(length))
            day += timedelta(days=length + rng.randint(30, 120))
        return off

    def slots(self) -> list[int]:
        """Every bookable slot of every employee, packed tightly with the odd idle
        gap, as ints: ((staff_index * days + day_offset) * 1440 + minute) * 64 + service_index."""
        rng = self.rng("slots")
        n_days = (self.last_day - self.first_day).days
        closed = closed_days(range(self.first_day.year, self.last_day.year + 1))
        days = [self.first_day + timedelta(days=n) for n in range(n_days)]
        durations = [(spec.duration, spec.buffer) for _, spec in self.services]
        slots: list[int] = []
        append, random_ = slots.append, rng.random
        for staff_index, member in enumerate(self.staff_members):
            indexes, cumulative = self.service_pick[member.kind]
            total = cumulative[-1]
            shortest = min(durations[i][0] for i in indexes)
            for offset, day in enumerate(days):
                blocks = member.shift.get(day.weekday())
                if not blocks or day in closed or day in member.off_days:
                    continue
                base = (staff_index * n_days + offset) * 1440
                for block_start, block_end in blocks:
                    t = block_start
                    while t + shortest <= block_end:
                        service_index = indexes[bisect.bisect_left(cumulative, random_() * total)]
                        duration, buffer = durations[service_index]
                        r = random_()
                        start = t + (0 if r < 0.94 else 15 if r < 0.99 else 30)
                        if start + duration > block_end:
                            t += 15
                            continue
                        append(((base + start) * 64) + service_index)
                        t = start + duration + buffer
                        t = -(-t // 5) * 5
        self.n_days, self.days = n_days, days
        return slots

    def _decode(self, slot: int) -> tuple[int, date, int, int]:
        service_index = slot % 64
        rest = slot // 64
        minute = rest % 1440
        rest //= 1440
        return rest // self.n_days, self.days[rest % self.n_days], minute, service_index

    # -- customers --------------------------------------------------------------
    def customers(self) -> None:
        rng, fake = self.rng("customers"), self.faker("customers")
        geo = self.rng("geo")  # the house's offset from the postcode centroid: its own stream
        rows = self.plan.rows(Customer)
        region_pairs = [(r, r[4]) for r in REGIONS]
        used_emails: set[str] = set()
        people: list[dict[str, Any]] = []
        phones: list[PhoneNumber | None] = []

        def email_for(first: str, last: str) -> str:
            domain = _weighted(rng, MAIL_DOMAINS)
            f, la = _ascii(first), _ascii(last)
            style = rng.random()
            if style < 0.45:
                local = f"{f}.{la}"
            elif style < 0.6:
                local = f"{f[0]}.{la}"
            elif style < 0.75:
                local = f"{f}{la}{rng.randint(60, 99) if rng.random() < 0.5 else ''}"
            elif style < 0.9:
                local = f"{la}.{f}"
            else:
                local = f"{f}_{la[:3]}{rng.randint(1, 999)}"
            email = f"{local}@{domain}"
            while email in used_emails:
                email = f"{local}{rng.randint(1, 9999)}@{domain}"
            used_emails.add(email)
            return email

        for index in range(self.n_customers):
            if index > 20 and rng.random() < DUPLICATE_SHARE:
                original_index = rng.randrange(index)
                while people[original_index]["_duplicate"]:
                    original_index -= 1
                people.append(self._duplicate(rng, people[original_index], phones[original_index], email_for))
                phones.append(phones[original_index])
                continue
            female = rng.random() < 0.6
            first = fake.first_name_female() if female else fake.first_name_male()
            last = rng.choice(COMMON_LAST_NAMES) if rng.random() < 0.4 else fake.last_name()
            plz, city, lat, lon, _ = _weighted(rng, region_pairs)
            r = rng.random()
            kinds = (SALON,) if r < 0.55 else (DOG,) if r < 0.9 else (SALON, DOG)
            phone = PhoneNumber(rng) if rng.random() < 0.92 else None
            email = email_for(first, last) if rng.random() < 0.85 else None
            geocoded = rng.random() < 0.95
            lat, lon, geocode_status = self.position(geo, lat, lon)
            house = f"{rng.randint(1, 180)}{rng.choice('abc') if rng.random() < 0.08 else ''}"
            person = {
                "id": rows.new_id(), "first_name": first, "last_name": last,
                "email": email, "phone": phone.format(_weighted(rng, [(0, 6), (1, 3), (2, 2)])) if phone else None,
                "street": f"{fake.street_name()} {house}",
                "postal_code": plz, "city": city, "country": "DE",
                "birth_date": (self.today - timedelta(days=rng.randint(18 * 365, 82 * 365)))
                if rng.random() < 0.55 else None,
                "lat": lat if geocoded else None, "lon": lon if geocoded else None,
                "geocoded_at": self.now - timedelta(days=rng.randint(1, 300)) if geocoded else None,
                "geocode_status": geocode_status if geocoded else None,
                "notes": rng.choice(CUSTOMER_NOTES) if rng.random() < 0.08 else None,
                "consent_email": bool(email) and rng.random() < 0.65,
                "consent_sms": bool(phone) and rng.random() < 0.3,
                "referred_by_id": people[rng.randrange(index)]["id"] if index > 5 and rng.random() < 0.06 else None,
                "emoji_marker": None,
                "_kinds": kinds, "_weight": min(rng.paretovariate(1.3), 40.0), "_duplicate": False,
            }
            # the address the (simulated) geocoder was given, as app.services.geocoding.address_of writes it
            person["geocoded_address"] = f"{person['street']}, {plz} {city}, DE" if geocoded else None
            if rng.random() < EMOJI_SHARE:
                markers = [(m, 1.0) for m in EMOJI_MARKERS if m != "🐕"]
                if DOG in kinds:
                    markers.append(("🐕", 4.0))
                person["emoji_marker"] = _weighted(rng, markers)
            people.append(person)
            phones.append(phone)
        self.people = people

    @staticmethod
    def position(geo: random.Random, lat: float, lon: float) -> tuple[float, float, str]:
        """Where the geocoder put the house: most a few hundred metres around the postcode
        centroid ("ok"), APPROX_SHARE exactly at it (the offline fallback: "approx")."""
        approx, distance, angle = geo.random() < APPROX_SHARE, min(abs(geo.gauss(0, 450)), 1200), geo.random()
        if approx:
            return lat, lon, "approx"
        north, east = distance * math.sin(2 * math.pi * angle), distance * math.cos(2 * math.pi * angle)
        return (round(lat + north / 111_320, 6), round(lon + east / (111_320 * math.cos(math.radians(lat))), 6),
                "ok")

    def _duplicate(self, rng: random.Random, original: dict[str, Any], phone: PhoneNumber | None,
                   email_for: Any) -> dict[str, Any]:
        """The same person entered again: a spelling variant of the name, swapped
        names, the phone in another format, the e-mail empty or different."""
        first, last = original["first_name"], original["last_name"]

        def spelled(name: str) -> str:
            return name.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")

        variants: list[tuple[str, str]] = [(first, rng.choice(LAST_NAME_VARIANTS[last]))] * 3 \
            if last in LAST_NAME_VARIANTS else []
        if spelled(last) != last:
            variants += [(first, spelled(last))] * 3
        if first in FIRST_NAME_VARIANTS:
            variants += [(FIRST_NAME_VARIANTS[first], last)] * 2
        if spelled(first) != first:
            variants += [(spelled(first), last)] * 2
        variants += [(last, first)] * 2 + [(first, last), (first, last.upper())]
        first, last = rng.choice(variants)
        duplicate = dict(original)
        duplicate.update({
            "id": self.plan.rows(Customer).new_id(), "first_name": first, "last_name": last,
            "email": email_for(first, last) if rng.random() < 0.35 else None,
            "phone": phone.format(rng.choice([3, 4, 1 if original["phone"] and "+" not in original["phone"] else 2]))
            if phone and rng.random() < 0.85 else None,
            "street": original["street"] if rng.random() < 0.6 else None,
            "notes": None, "emoji_marker": None, "referred_by_id": None,
            "consent_email": False, "consent_sms": False,
            "_weight": 0.15, "_duplicate": True,
        })
        if duplicate["street"] is None:
            duplicate.update(postal_code=None, city=None, lat=None, lon=None, geocoded_at=None, geocode_status=None,
                             geocoded_address=None)
        return duplicate

    # -- bookings ---------------------------------------------------------------
    def bookings(self, slots: list[int]) -> None:
        rng = self.rng("bookings")
        n_cancelled = round(self.n_bookings * CANCELLED_SHARE)
        n_kept = self.n_bookings - n_cancelled
        # Weighted sample without replacement (Efraimidis–Spirakis): busier on
        # Fridays/Saturdays, seasonal, thinner the further ahead.
        day_weight = []
        for day in self.days:
            ahead = (day - self.today).days
            w = 1.0 + 0.2 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 160) / 365)
            w *= {4: 1.15, 5: 1.3}.get(day.weekday(), 1.0)
            if ahead >= 0:
                w *= max(0.12, 1.0 - ahead / 70)
            day_weight.append(1.0 / w)
        n_days, random_ = self.n_days, rng.random
        keys = [random_() ** day_weight[(slot // 92160) % n_days] for slot in slots]  # 92160 = 64 * 1440
        order = sorted(range(len(slots)), key=keys.__getitem__, reverse=True)
        chosen = [slots[i] for i in order[:n_kept]]
        del keys, order
        chosen.extend((slots[rng.randrange(len(slots))] | (1 << 62)) for _ in range(n_cancelled) if slots)
        decoded = []
        for slot in chosen:
            cancelled = bool(slot >> 62)
            staff_index, day, minute, service_index = self._decode(slot & ((1 << 62) - 1))
            decoded.append((day, minute, staff_index, service_index, cancelled))
        decoded.sort()

        pools: dict[str, tuple[list[int], list[float]]] = {}
        for kind in (SALON, DOG):
            members = [i for i, p in enumerate(self.people) if kind in p["_kinds"]] or list(range(len(self.people)))
            cumulative, total = [], 0.0
            for i in members:
                total += self.people[i]["_weight"]
                cumulative.append(total)
            pools[kind] = (members, cumulative)

        rows = self.plan.rows(Booking)
        status = self.statuses
        recent = self.now - timedelta(days=3)
        first_contact: dict[int, datetime] = {}
        self.booking_log: list[tuple[int, int, int, str, datetime, Decimal]] = []
        # bookings of the last REMINDED_DAYS whose reminder went out (app/jobs/reminders.py's log)
        self.reminded: list[tuple[int, int, int, datetime]] = []
        reminded_since = self.now - timedelta(days=REMINDED_DAYS)
        prices = [Decimal(spec.price) for _, spec in self.services]
        resource_free_at: dict[int, datetime] = {}
        for day, minute, staff_index, service_index, cancelled in decoded:
            member = self.staff_members[staff_index]
            service_id, spec = self.services[service_index]
            members, cumulative = pools[spec.kind]
            person_index = members[bisect.bisect_left(cumulative, random_() * cumulative[-1])]
            person = self.people[person_index]
            start = self.utc(day, minute)
            end = start + timedelta(minutes=spec.duration)
            source = _weighted(rng, SOURCES[spec.kind])
            if source == "walk_in" and start >= self.now:
                source = "phone"
            if source == "walk_in":
                created = start - timedelta(minutes=rng.randint(2, 40))
            else:
                created = start - timedelta(hours=1 + rng.expovariate(1 / 240))
                if created >= self.now:
                    created = self.now - timedelta(hours=rng.randint(1, 24 * 21))
            cancel_reason = None
            if cancelled:
                kind = "cancellation"
                reasons = CANCEL_REASONS + (DOG_CANCEL_REASONS * 2 if spec.kind == DOG else [])
                cancel_reason = rng.choice(reasons)
            elif start < self.now:
                r = random_()
                if start >= recent and r < 0.35:
                    kind = "confirmation"
                elif r < 0.045:
                    kind = "no_show"
                else:
                    kind = "completed"
            elif (spec.workflow and random_() < 0.4) or (source == "online" and random_() < 0.25):
                kind = "start"
            else:
                kind = "confirmation"
            comments = SALON_COMMENTS if spec.kind == SALON else DOG_COMMENTS
            resource = self.resource_ids.get((spec.resource, member.location_id)) if spec.resource else None
            if resource is not None and not cancelled:
                # A room holds one booking at a time (the database refuses an
                # overlap): sorted by start, it is free once the last one ended.
                if resource_free_at.get(resource, start) > start:
                    resource = None
                else:
                    resource_free_at[resource] = end
            has_contact = bool(person["email"] or person["phone"])
            comment = rng.choice(comments) if random_() < 0.12 else None
            reminder = has_contact and random_() < 0.8
            booking_id = rows.add(
                customer_id=person["id"], service_id=service_id, employee_id=member.id,
                resource_id=resource, location_id=member.location_id, status_id=status[kind],
                start_at=start, end_at=end, price=prices[service_index],
                comment=comment, cancel_reason=cancel_reason,
                source=source, reminder=reminder, created_at=created,
                cancelled=cancelled, shared_slot=spec.capacity > 1)
            if reminder and not cancelled and reminded_since <= start < self.now:
                self.reminded.append((booking_id, person_index, member.id, start))
            self.booking_log.append((booking_id, person_index, service_index, kind, end, prices[service_index]))
            if person["id"] not in first_contact or created < first_contact[person["id"]]:
                first_contact[person["id"]] = created
        self.first_contact = first_contact

    # -- customers and pets, written after the bookings fix their created_at ----
    def finish_customers(self) -> None:
        rng = self.rng("customer-dates")
        language_rng = self.rng("customer-language")  # a few customers get their mails in English
        customers, pets = self.plan.rows(Customer), self.plan.rows(Pet)
        for person in self.people:
            first = self.first_contact.get(person["id"])
            if first is not None:
                created = first - timedelta(minutes=rng.randint(0, 60 * 24 * 20))
            else:
                created = self.now - timedelta(minutes=rng.randint(60, HISTORY_DAYS * 1440))
            values = {k: v for k, v in person.items() if not k.startswith("_")}
            values.update(created_at=created, created_by_id=self.system_user_id,
                          consent_at=created if (person["consent_email"] or person["consent_sms"]) else None,
                          language="en" if language_rng.random() < 0.03 else "de")
            customers.add(**values)
            if DOG in person["_kinds"] and not person["_duplicate"]:
                for _ in range(1 if rng.random() < 0.88 else 2):
                    pets.add(customer_id=person["id"], name=rng.choice(DOG_NAMES), species="Hund",
                             breed=_weighted(rng, DOG_BREEDS),
                             birth_date=self.today - timedelta(days=rng.randint(90, 14 * 365)),
                             notes=rng.choice(PET_NOTES) if rng.random() < 0.2 else None)

    # -- pass cards -------------------------------------------------------------
    def cards(self) -> None:
        rng = self.rng("cards")
        types, cards, redemptions = (self.plan.rows(m) for m in (PassCardType, PassCard, PassRedemption))
        by_customer: dict[tuple[int, int], list[int]] = {}
        service_to_type: dict[int, int] = {}
        for type_index, (name, units, validity, price, category, no_show_costs, services) in enumerate(CARD_TYPES):
            types.add(name=name, units=units, validity_days=validity, price=Decimal(price),
                      category=category, no_show_costs_unit=no_show_costs, active=True)
            for service_name in services:
                service_index = next(i for i, (_, s) in enumerate(self.services) if s.name == service_name)
                service_to_type[service_index] = type_index
        for log_index, (_, person_index, service_index, kind, _, _) in enumerate(self.booking_log):
            type_index = service_to_type.get(service_index)
            if type_index is not None and kind in ("completed", "no_show"):
                by_customer.setdefault((type_index, person_index), []).append(log_index)
        type_ids = list(range(types.next_id - len(CARD_TYPES), types.next_id))
        for (type_index, person_index), log_indexes in by_customer.items():
            if len(log_indexes) < 3 or rng.random() > 0.4:
                continue
            _, units, validity, price, _, no_show_costs, _ = CARD_TYPES[type_index]
            card: dict[str, Any] | None = None
            for log_index in log_indexes:
                booking_id, _, _, kind, end, _ = self.booking_log[log_index]
                if kind == "no_show" and not no_show_costs:
                    continue
                if card is not None and (card["units_used"] >= units or end >= card["expires_at"]):
                    cards.add(**card)
                    card = None
                    if rng.random() < 0.3:
                        break
                if card is None:
                    duration = self.services[self.booking_log[log_index][2]][1].duration
                    purchased = end - timedelta(days=rng.randint(0, 7), minutes=duration + rng.randint(1, 20))
                    card = {"id": cards.new_id(), "type_id": type_ids[type_index],
                            "customer_id": self.people[person_index]["id"], "units_total": units, "units_used": 0,
                            "price": Decimal(price), "purchased_at": purchased,
                            "expires_at": purchased + timedelta(days=validity)}
                card["units_used"] += 1
                redemptions.add(card_id=card["id"], booking_id=booking_id, units=1, redeemed_at=end)
            if card is not None:
                cards.add(**card)

    # -- bonus ------------------------------------------------------------------
    def bonus(self) -> None:
        rng = self.rng("bonus")
        programs, ledger = self.plan.rows(BonusProgram), self.plan.rows(BonusTransaction)

        def book(**values: Any) -> int:
            return ledger.add(created_by_id=self.system_user_id, **values)

        program_by_kind: dict[str, tuple[int, tuple]] = {}
        for spec in BONUS_PROGRAMS:
            name, kind, per_euro, threshold, reward, reward_kind, value, referral = spec
            program_id = programs.add(name=name, points_per_euro=Decimal(per_euro), threshold=threshold,
                                reward_name=reward, reward_kind=reward_kind, reward_value=Decimal(value),
                                referral_points=referral, active=True)
            program_by_kind[kind] = (program_id, spec)
            self.plan.program_services[program_id] = [sid for sid, service in self.services if service.kind == kind]
        members = {(i, kind) for i, p in enumerate(self.people) for kind in p["_kinds"]
                   if not p["_duplicate"] and rng.random() < 0.4}
        balance: dict[tuple[int, str], int] = {}
        last_visit: dict[tuple[int, str], datetime] = {}
        first_visit: dict[int, tuple[datetime, str]] = {}
        expiry = timedelta(days=365)
        for booking_id, person_index, service_index, kind, end, price in self.booking_log:
            if kind != "completed":
                continue
            spec_kind = self.services[service_index][1].kind
            first_visit.setdefault(person_index, (end, spec_kind))
            key = (person_index, spec_kind)
            if key not in members:
                continue
            program_id, (_, _, per_euro, threshold, reward, *_rest) = program_by_kind[spec_kind]
            customer_id = self.people[person_index]["id"]
            previous = last_visit.get(key)
            if previous is not None and end - previous > expiry and balance.get(key, 0) > 0:
                book(customer_id=customer_id, program_id=program_id, booking_id=None, kind="expiry",
                     points=-balance[key], reason="Punkte verfallen (12 Monate ohne Besuch)",
                     created_at=previous + expiry)
                balance[key] = 0
            last_visit[key] = end
            if balance.get(key, 0) >= threshold and rng.random() < 0.7:
                book(customer_id=customer_id, program_id=program_id, booking_id=booking_id, kind="redeem",
                     points=-threshold, reason=f"Prämie eingelöst: {reward}", created_at=end)
                balance[key] -= threshold
            points = int(price * Decimal(per_euro))
            if points > 0:
                service_name = self.services[service_index][1].name
                book(customer_id=customer_id, program_id=program_id, booking_id=booking_id, kind="earn",
                     points=points, reason=f"Termin: {service_name}", created_at=end + timedelta(minutes=5))
                balance[key] = balance.get(key, 0) + points
            if rng.random() < 0.004:
                fix = rng.choice([10, 20, 25, 50])
                sign = -1 if balance.get(key, 0) >= fix and rng.random() < 0.5 else 1
                book(customer_id=customer_id, program_id=program_id, booking_id=None, kind="correction",
                     points=sign * fix, reason="Korrektur: doppelt gutgeschrieben" if sign < 0
                     else "Korrektur: Punkte nachgetragen", created_at=end + timedelta(days=1))
                balance[key] = balance.get(key, 0) + sign * fix
        for key, visit in last_visit.items():
            if self.now - visit > expiry and balance.get(key, 0) > 0:
                program_id = program_by_kind[key[1]][0]
                book(customer_id=self.people[key[0]]["id"], program_id=program_id, booking_id=None,
                     kind="expiry", points=-balance[key], reason="Punkte verfallen (12 Monate ohne Besuch)",
                     created_at=visit + expiry)
        index_by_id = {p["id"]: i for i, p in enumerate(self.people)}
        for person_index, person in enumerate(self.people):
            referrer = person["referred_by_id"]
            if referrer is None or person_index not in first_visit:
                continue
            visit, spec_kind = first_visit[person_index]
            if (index_by_id[referrer], spec_kind) not in members:
                continue
            program_id, spec = program_by_kind[spec_kind]
            book(customer_id=referrer, program_id=program_id, booking_id=None, kind="referral", points=spec[7],
                 referred_customer_id=person["id"],
                 reason=f"Empfehlung: erster Termin von Kund:in #{person['id']} abgeschlossen",
                 created_at=visit + timedelta(minutes=10))


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------
def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(start + size, total)


def _write_orm(plan: Plan) -> None:
    """Every row through the ORM; Continuum versions each one."""
    session = db.session()
    services: list[Any] = []
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    session.info[BONUS_HOOK_OFF] = True  # the plan has its ledger: earning again would double it
    session.info[GEOCODE_HOOK_OFF] = True  # planned positions; fake addresses never go to a geocoder
    try:
        _write_orm_tables(session, plan, services)
    finally:
        session.expire_on_commit = expire_on_commit
        session.info.pop(BONUS_HOOK_OFF, None)
        session.info.pop(GEOCODE_HOOK_OFF, None)
    del services


def _write_orm_tables(session: Any, plan: Plan, services: list[Any]) -> None:
    for model in WRITE_ORDER:
        rows = plan.rows(model)
        if model is Booking:
            # The booking listener looks each booking's service up: keep the
            # services loaded in the identity map (no expiry between chunks).
            services.extend(session.scalars(select(Service)))
        for start, stop in _chunks(len(rows), ORM_CHUNK):
            session.add_all([model(**values) for values in rows.dicts(start, stop)])
            session.commit()
        if model is Booking:
            services.clear()


def _write_core(plan: Plan, system_user_id: int) -> None:
    """Core executemany into each table and its version table (one Continuum
    transaction per table, attributed to the system user)."""
    session = db.session
    transaction_table = versioning_manager.transaction_cls.__table__
    for model in WRITE_ORDER:
        rows = plan.rows(model)
        if not len(rows):
            continue
        version_table = version_class(model).__table__
        transaction_id = session.execute(
            insert(transaction_table).values(user_id=system_user_id).returning(transaction_table.c.id)
        ).scalar_one()
        extra = {"transaction_id": transaction_id, "operation_type": Operation.INSERT}
        for start, stop in _chunks(len(rows), CORE_CHUNK):
            values = rows.dicts(start, stop)
            session.execute(insert(rows.table), values)
            session.execute(insert(version_table), [{**row, **extra} for row in values])
            session.commit()


def _fix_sequences(plan: Plan) -> None:
    """PostgreSQL: move each id sequence past the ids assigned here."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for model in WRITE_ORDER:
        table = model.__table__.name
        sequence = db.session.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
        db.session.execute(text(
            f"SELECT setval('{sequence}', GREATEST((SELECT COALESCE(MAX(id), 0) FROM \"{table}\"), "
            f"(SELECT last_value FROM {sequence})))"
        ))
    db.session.commit()


def _id_floor(table: str) -> int:
    """The last id the database has handed out for `table` (its sequence), 0 if none."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        sequence = db.session.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
        if sequence:
            last, called = db.session.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
            return last if called else last - 1
    elif dialect == "sqlite" and db.session.scalar(
        text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'")
    ):
        return db.session.scalar(text("SELECT seq FROM sqlite_sequence WHERE name = :t"), {"t": table}) or 0
    return 0


def _first_ids() -> dict[type, int]:
    """The first free id per table: after the highest id in the table, in its
    version table and in its id sequence, so a new row never takes the id (and
    with it the version history) of a deleted one."""
    first: dict[type, int] = {}
    for model in WRITE_ORDER:
        version_table = version_class(model).__table__
        highest = max(db.session.scalar(select(func.max(model.__table__.c.id))) or 0,
                      db.session.scalar(select(func.max(version_table.c.id))) or 0,
                      _id_floor(model.__table__.name))
        first[model] = highest + 1
    return first


DEMO_USERS = [("owner", OWNER), ("manager", MANAGER), ("viewer", VIEWER)]


def seed_demo(customers: int = 2000, bookings: int = 40000, seed: int = 42, password: str = "",
              *, today: date | None = None, fast: bool | None = None) -> list[str]:
    """Fill an empty database with a demo business; return the demo login names.

    `today` pins the reference day (default: today in the business time zone);
    `fast` picks the Core write path (default: only above ORM_MAX_BOOKINGS bookings).
    """
    if not password:
        raise ValueError("a password for the demo logins is required")
    tz = ZoneInfo(current_app.config.get("TIMEZONE", "Europe/Berlin"))
    today = today or datetime.now(tz).date()
    sm = current_app.appbuilder.sm
    system = sm.find_user(username=SYSTEM_USERNAME)
    if system is None:
        raise RuntimeError("system user missing: run `flask init` first")
    statuses: dict[str, int] = {}
    for status in db.session.scalars(select(BookingStatus).order_by(BookingStatus.position)):
        statuses.setdefault(status.kind, status.id)
    missing = {"start", "confirmation", "cancellation", "completed", "no_show"} - statuses.keys()
    if missing:
        raise RuntimeError(f"booking statuses missing ({', '.join(sorted(missing))}): run `flask init` first")
    if db.session.scalar(select(func.count(Customer.id))):
        raise RuntimeError("the database already has customers: demo data only into an empty database")

    usernames = [name for name, _ in DEMO_USERS] + [f"employee{i}" for i in range(1, 9)]
    taken = [name for name in usernames if sm.find_user(username=name) is not None]
    if taken:
        raise RuntimeError(f"demo logins exist already: {', '.join(taken)}")

    planner = Planner(customers=customers, bookings=bookings, seed=seed, today=today, tz=tz,
                      system_user_id=system.id, first_ids=_first_ids(), statuses=statuses)
    plan = planner.build()
    fake = planner.faker("logins")
    # One hash for the shared demo password (scrypt costs ~0.15 s per call).
    hashed = generate_password_hash(
        password, method=current_app.config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"),
        salt_length=current_app.config.get("FAB_PASSWORD_HASH_SALT_LENGTH", 16))
    created: list[str] = []
    for username, role in DEMO_USERS:
        first, last = fake.first_name_female(), fake.last_name()
        email = f"{username}@{BUSINESS_DOMAIN}"
        _add_user(sm, username, first, last, email, role, hashed)
        created.append(username)
    login_of: dict[int, int] = {}
    for number, (employee_id, first, last, email) in enumerate(plan.employee_logins[:8], start=1):
        user = _add_user(sm, f"employee{number}", first, last, email, EMPLOYEE, hashed)
        login_of[employee_id] = user.id
        created.append(f"employee{number}")
    employees = plan.rows(Employee)
    user_column = employees.index["user_id"]
    employees.rows = [row[:user_column] + (login_of.get(row[0]),) + row[user_column + 1:] for row in employees.rows]

    with acting_as():
        if (bookings > ORM_MAX_BOOKINGS) if fast is None else fast:
            _write_core(plan, system.id)
        else:
            _write_orm(plan)
        _fix_sequences(plan)
        for program_id, service_ids in plan.program_services.items():  # through the ORM: versioned
            program = db.session.get(BonusProgram, program_id)
            program.services = list(db.session.scalars(select(Service).where(Service.id.in_(service_ids))))
        db.session.flush()
        _demo_invoices(planner.now)
        for key, value in plan.settings.items():
            setting = db.session.scalar(select(Setting).where(Setting.key == key))
            if setting is None:
                db.session.add(Setting(key=key, value=value))
            elif not setting.value or setting.value == "Terminbuch Demo":
                setting.value = value
        db.session.commit()
    return created


DEMO_INVOICES = 24  # customers with an invoice of their last visits: paid, open, one draft, one Storno
INVOICE_WINDOW = timedelta(days=45)


def _demo_invoices(now: datetime) -> None:
    """A few invoices through the same services as the screens (numbers, immutability, Storno):
    customers who visited in the last weeks get one for up to three completed bookings, issued
    the day after the last of them; most are paid a week later, some stay open ("Offene
    Posten"), the newest stays a draft, one is cancelled by Storno."""
    from app.services.invoices import (
        add_billable_lines,
        billable_bookings,
        cancel_invoice,
        issue_invoice,
        set_paid,
    )

    completed = select(Booking.customer_id).join(BookingStatus, Booking.status_id == BookingStatus.id).where(
        BookingStatus.kind == "completed", Booking.start_at >= now - INVOICE_WINDOW, Booking.start_at < now)
    visited = sorted(set(db.session.scalars(completed)))
    customers = visited[::max(1, len(visited) // DEMO_INVOICES)][:DEMO_INVOICES]
    drafts = []
    for customer_id in customers:
        invoice = Invoice(customer_id=customer_id)
        db.session.add(invoice)
        db.session.flush()
        bookings = [b for b in billable_bookings(db.session, customer_id) if b.start_at >= now - INVOICE_WINDOW]
        if not bookings:
            db.session.delete(invoice)
            continue
        bookings = bookings[-3:]
        add_billable_lines(db.session, invoice, [b.id for b in bookings], [])
        invoice.created_at = bookings[-1].end_at + timedelta(hours=1)
        drafts.append((invoice.created_at, invoice))
    drafts.sort(key=lambda pair: (pair[0], pair[1].id))  # numbers in the order of the dates
    for index, (created, invoice) in enumerate(drafts[:-1]):
        issued = min(created + timedelta(days=1), now - timedelta(hours=1))
        issue_invoice(db.session, invoice, now=issued)
        if index % 3 != 2 and issued + timedelta(days=7) < now:
            set_paid(db.session, invoice, True, now=issued + timedelta(days=7))
    if len(drafts) > 3:  # the last number of all: issued just now
        cancel_invoice(db.session, drafts[2][1], now=now - timedelta(minutes=30))


def _add_user(sm: Any, username: str, first: str, last: str, email: str, role: str, hashed: str) -> Any:
    user = sm.add_user(username, first, last, email, sm.find_role(role), hashed_password=hashed)
    if not user:
        raise RuntimeError(f"could not create demo login {username!r} (see the log)")
    return user
