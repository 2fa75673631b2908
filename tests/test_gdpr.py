"""Datenschutz: Datenauskunft (JSON/XLSX) and Löschen auf Anfrage.

The big test builds a customer with a distinctive marker in every personal field, edits
it several times (several version rows), adds pets, bookings, a document with its file,
notifications, bonus points, a pass card, an issued and a draft invoice, a deleted pet
and booking, a customer merged into it — erases it through the browser form and then
scans every column of every table (version tables included) for the markers."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
import sqlalchemy as sa

from tests.conftest import post_form
from tests.helpers_perm import html, is_login_redirect, session_csrf

RETENTION = "Aufbewahrungspflicht 10 Jahre (§ 147 AO, § 14b UStG)"
BIRTH_DATE = date(1911, 11, 11)
PET_BIRTH_DATE = date(1912, 12, 12)
LAT, LON = 12.3456789, 98.7654321


@dataclass
class Marked:
    marker: str
    postal: str
    customer: int
    absorbed: int
    issued_invoice: int
    issued_number: str
    draft_invoice: int
    document_file: str
    rows: list[tuple[type, int]] = field(default_factory=list)  # for the teardown, children last


def _delete_rows(app, rows: list[tuple[type, int]]) -> None:
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer, CustomerErasure, Invoice, InvoiceLine
    from tests.helpers_invoices import delete_invoices

    with app.app_context(), acting_as():
        db.session.rollback()
        delete_invoices(db.session, [pk for model, pk in rows if model is Invoice])  # issued ones too
        rows = [(model, pk) for model, pk in rows if model not in (Invoice, InvoiceLine)]
        for model, pk in rows:
            if model is Customer:
                for erasure in db.session.scalars(sa.select(CustomerErasure).where(CustomerErasure.customer_id == pk)):
                    db.session.delete(erasure)
            row = db.session.get(model, pk)
            if row is not None:
                db.session.delete(row)
                db.session.flush()
        db.session.commit()


@pytest.fixture()
def marked(app, world):
    """A customer with markers everywhere; every row is removed again afterwards."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import (
        BonusProgram,
        BonusTransaction,
        Booking,
        Customer,
        CustomerMerge,
        Document,
        DuplicateDismissal,
        Invoice,
        InvoiceLine,
        NotificationLog,
        PassCard,
        PassCardType,
        PassRedemption,
        Pet,
    )
    from app.services.documents import document_path

    marker = f"zq{uuid4().hex[:10]}"
    postal = f"P{uuid4().hex[:8]}"
    rows: list[tuple[type, int]] = []
    with app.app_context(), acting_as():
        # a duplicate merged into the customer earlier: deleted, its data lives on in its versions
        absorbed = Customer(first_name=f"{marker}-absorbed-first", last_name=f"{marker}-absorbed-last",
                            email=f"{marker}-absorbed@example.org")
        db.session.add(absorbed)
        db.session.commit()
        absorbed_id = absorbed.id
        db.session.delete(absorbed)
        db.session.commit()

        customer = Customer(first_name=f"{marker}-first", last_name=f"{marker}-last", emoji_marker="🆕",
                            email=f"{marker}@example.org", phone=f"+49 {marker}-phone", street=f"{marker}-street",
                            postal_code=postal, city=f"{marker}-city", birth_date=BIRTH_DATE, lat=LAT, lon=LON,
                            geocode_status="ok", geocoded_at=datetime.now(timezone.utc),
                            notes=f"={marker}-notes (formula)", consent_email=True, consent_sms=True,
                            consent_at=datetime.now(timezone.utc), referred_by_id=world.customer2)
        db.session.add(customer)
        db.session.commit()
        for number in range(3):  # several version rows
            customer.notes = f"={marker}-notes edit {number}"
            customer.city = f"{marker}-city-{number}"
            db.session.commit()
        start = datetime(2032, 5, 3, 9, tzinfo=timezone.utc) + timedelta(days=uuid4().int % 300)
        booking = Booking(customer_id=customer.id, service_id=world.service, employee_id=world.employee2,
                          start_at=start, comment=f"{marker}-comment")
        deleted_booking = Booking(customer_id=customer.id, service_id=world.service, employee_id=world.employee2,
                                  start_at=start + timedelta(hours=3), comment=f"{marker}-deleted-comment")
        pet = Pet(customer_id=customer.id, name=f"{marker}-pet", breed=f"{marker}-breed", notes=f"{marker}-pet-notes",
                  birth_date=PET_BIRTH_DATE)
        deleted_pet = Pet(customer_id=customer.id, name=f"{marker}-deleted-pet")
        card_type = PassCardType(name=f"GDPR-Karte {uuid4().hex[:12]}", units=5, price=Decimal("50.00"))
        program = BonusProgram(name=f"GDPR-Bonus {uuid4().hex[:12]}", points_per_euro=Decimal("1"), threshold=100,
                               reward_name="Rabatt", reward_kind="fixed", reward_value=Decimal("5"))
        db.session.add_all([booking, deleted_booking, pet, deleted_pet, card_type, program])
        db.session.commit()
        booking.cancel_reason = f"{marker}-cancel-reason"
        pet.notes = f"{marker}-pet-notes-2"
        card = PassCard(type=card_type, customer_id=customer.id, units_total=5, units_used=1, price=Decimal("50"))
        db.session.add(card)
        db.session.flush()
        stored = uuid4().hex
        document = Document(customer_id=customer.id, title=f"{marker}-doc-title", filename=f"{marker}-file.pdf",
                            stored_name=stored, content_type="application/pdf", size_bytes=14)
        issued = Invoice(customer_id=customer.id, note=f"{marker}-issued-note")
        draft = Invoice(customer_id=customer.id, note=f"{marker}-draft-note")
        db.session.add_all([
            PassRedemption(card=card, booking=booking, units=1),
            BonusTransaction(customer_id=customer.id, program=program, kind="earn", points=10,
                             reason=f"{marker}-bonus-reason", booking_id=booking.id),
            NotificationLog(kind="reminder", channel="email", recipient=f"{marker}@example.org",
                            customer_id=customer.id, booking_id=booking.id, status="failed",
                            error=f"refused {marker}@example.org"),
            document, issued, draft,
            InvoiceLine(invoice=issued, description=f"{marker}-issued-line", unit_price=Decimal("45.00"),
                        booking_id=booking.id),
            InvoiceLine(invoice=draft, description=f"{marker}-draft-line", unit_price=Decimal("10.00")),
            DuplicateDismissal(customer_low_id=world.customer1, customer_high_id=customer.id),
            CustomerMerge(kept_id=customer.id, removed_id=absorbed_id, moved={}, filled=[]),
        ])
        db.session.commit()
        number = f"GDPR-{uuid4().hex[:8]}"
        issued.status, issued.number, issued.issued_at = "issued", number, datetime.now(timezone.utc)
        db.session.commit()
        db.session.delete(deleted_pet)
        db.session.delete(deleted_booking)
        db.session.commit()
        path = document_path(stored)
        path.write_bytes(b"%PDF-1.4 gdpr")
        ids = {
            "customer": customer.id, "booking": booking.id, "pet": pet.id, "card": card.id, "issued": issued.id,
            "draft": draft.id, "document": document.id, "card_type": card_type.id, "program": program.id,
        }
        children = [(model, row.id) for model in (NotificationLog, BonusTransaction, PassRedemption, InvoiceLine)
                    for row in db.session.scalars(sa.select(model))
                    if getattr(row, "customer_id", None) == customer.id or getattr(row, "booking_id", None)
                    == booking.id or getattr(row, "invoice_id", None) in (issued.id, draft.id)]
        merges = [(CustomerMerge, pk) for pk in db.session.scalars(
            sa.select(CustomerMerge.id).where(CustomerMerge.kept_id == customer.id))]
        dismissals = [(DuplicateDismissal, pk) for pk in db.session.scalars(
            sa.select(DuplicateDismissal.id).where(DuplicateDismissal.customer_high_id == customer.id))]
        rows = children + merges + dismissals + [
            (Invoice, ids["issued"]), (Invoice, ids["draft"]), (PassCard, ids["card"]), (Booking, ids["booking"]),
            (Pet, ids["pet"]), (Document, ids["document"]), (Customer, ids["customer"]),
            (PassCardType, ids["card_type"]), (BonusProgram, ids["program"]),
        ]
    made = Marked(marker=marker, postal=postal, customer=ids["customer"], absorbed=absorbed_id,
                  issued_invoice=ids["issued"], issued_number=number, draft_invoice=ids["draft"],
                  document_file=str(path), rows=rows)
    try:
        yield made
    finally:
        _delete_rows(app, made.rows)


def scan(app, needles: list[str]) -> list[tuple[str, dict]]:
    """Every row of every table of the database — the models' tables, version tables,
    Continuum's transactions and whatever else is there (SQLite's full-text index tables
    included) — with a value that contains one of the needles, or a marker date/number."""
    from flask_appbuilder import Model

    from app.extensions import db

    hits = []
    with app.app_context():
        names = sa.inspect(db.engine).get_table_names()
        assert {table.name for table in Model.metadata.sorted_tables} <= set(names)
        needles = [*needles, BIRTH_DATE.isoformat(), PET_BIRTH_DATE.isoformat()]  # SQLite returns dates as text
        for name in names:
            for row in db.session.execute(sa.text(f'SELECT * FROM "{name}"')):
                mapping = dict(row._mapping)
                for value in mapping.values():
                    if isinstance(value, bytes | memoryview):
                        text = needles[0] if any(n.encode() in bytes(value) for n in needles) else ""
                    elif isinstance(value, dict | list):
                        text = json.dumps(value, ensure_ascii=False)
                    elif isinstance(value, date | float):
                        text = "" if value not in (BIRTH_DATE, PET_BIRTH_DATE, LAT, LON) else needles[0]
                    else:
                        text = str(value) if value is not None else ""
                    if any(needle in text for needle in needles):
                        hits.append((name, mapping))
                        break
    return hits


def snapshot(app, world) -> dict:
    """The other customers' rows and history, to compare before and after."""
    from app.extensions import db
    from app.models import Booking, Customer, Pet
    from app.services.history import version_cls

    with app.app_context():
        result = {}
        for model in (Customer, Booking, Pet):
            for cls in (model, version_cls(model)):
                table = cls.__table__
                column = table.c.id if model is Customer else table.c.customer_id
                rows = db.session.execute(sa.select(table).where(column.in_([world.customer1, world.customer2]))
                                          .order_by(*table.primary_key.columns))
                result[table.name] = [dict(row._mapping) for row in rows]
        return result


# --- Löschen auf Anfrage ------------------------------------------------------------------------
def test_erasure_leaves_no_personal_data_in_any_table(app, world, owner, marked):
    from pathlib import Path

    from app.extensions import db
    from app.models import Booking, Customer, CustomerErasure, Invoice, InvoiceLine, Pet
    from app.services.history import version_cls

    url = f"/datenschutz/{marked.customer}/loeschen"
    before_scan = scan(app, [marked.marker, marked.postal])
    assert {name for name, _row in before_scan} >= {
        "customer", "customer_version", "pet", "pet_version", "booking", "booking_version", "document",
        "document_version", "notification_log", "notification_log_version", "bonus_transaction", "invoice",
        "invoice_line", "invoice_line_version", "invoice_version"}, "the fixture must put markers everywhere"
    others_before = snapshot(app, world)

    # the confirmation page: what goes, what stays
    page = html(owner.get(url))
    assert "Löschen auf Anfrage" in page and marked.issued_number in page and RETENTION in page
    assert 'name="confirm"' in page
    for name in ("customer", "pet", "booking", "document", "notification_log", "bonus_transaction", "invoice",
                 "invoice_line"):
        assert f'data-table="{name}"' in page, name
    assert 'data-table="pass_card"' not in page, "erasure leaves pass cards as they are: not listed"

    # a POST without the confirmation word changes nothing (200, German error)
    response = post_form(owner, url, {})
    assert response.status_code == 200
    assert "Bitte zur Bestätigung LÖSCHEN in das Feld eintragen" in html(response)
    response = post_form(owner, url, {"confirm": "ja"})
    assert response.status_code == 200 and "Es wurde nichts gelöscht" in html(response)
    assert scan(app, [marked.marker, marked.postal]) == before_scan

    response = post_form(owner, url, {"confirm": "löschen"})
    assert response.status_code == 302 and response.location.endswith(url)
    report = html(owner.get(url))
    assert "Löschbericht" in report and marked.issued_number in report and RETENTION in report
    assert "Gesetzlich aufzubewahrende Rechnungen sind unverändert geblieben." in report  # the flash
    assert marked.marker not in report

    # the scan: markers only in the retained issued invoice, its lines and their history
    hits = scan(app, [marked.marker, marked.postal])
    allowed = {("invoice", "id"), ("invoice_version", "id"), ("invoice_line", "invoice_id"),
               ("invoice_line_version", "invoice_id")}
    wrong = [(name, row) for name, row in hits
             if not any(name == table and row.get(col) == marked.issued_invoice for table, col in allowed)]
    assert not wrong, f"personal data left after erasure: {wrong}"
    assert {name for name, _row in hits} == {"invoice", "invoice_version", "invoice_line", "invoice_line_version"}

    with app.app_context():
        customer = db.session.get(Customer, marked.customer)
        assert customer.erased_at is not None
        assert (customer.first_name, customer.last_name) == ("Gelöscht", f"#{marked.customer}")
        assert customer.email is None and customer.phone is None and customer.birth_date is None
        assert customer.consent_email is False and customer.consent_sms is False and customer.referred_by_id is None
        # the retained invoice is untouched, the draft is gone
        issued = db.session.get(Invoice, marked.issued_invoice)
        assert issued.note == f"{marked.marker}-issued-note" and issued.number == marked.issued_number
        # … and keeps its addressee: the name and address it was issued to (§ 14 UStG)
        assert issued.recipient_name == f"{marked.marker}-first {marked.marker}-last"
        assert issued.recipient_address == f"{marked.marker}-street\n{marked.postal} {marked.marker}-city-2"
        assert [line.description for line in issued.lines] == [f"{marked.marker}-issued-line"]
        assert db.session.get(Invoice, marked.draft_invoice) is None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(InvoiceLine).where(
            InvoiceLine.invoice_id == marked.draft_invoice)) == 0
        # statistics stay: the booking with time, service and price
        bookings = db.session.scalars(sa.select(Booking).where(Booking.customer_id == marked.customer)).all()
        assert len(bookings) == 1 and bookings[0].price == Decimal("45.00") and bookings[0].comment is None
        # the versions of this very transaction are anonymized too
        cls = version_cls(Customer)
        newest = db.session.scalars(sa.select(cls).where(cls.id == marked.customer)
                                    .order_by(cls.transaction_id.desc())).first()
        assert newest.erased_at is not None and newest.first_name == "Gelöscht"
        assert all(v.birth_date is None and v.lat is None and v.lon is None and v.consent_email is False
                   for v in db.session.scalars(sa.select(cls).where(cls.id == marked.customer)))
        pet_cls = version_cls(Pet)
        pet_versions = db.session.scalars(sa.select(pet_cls).where(pet_cls.customer_id == marked.customer)).all()
        assert len(pet_versions) >= 4 and all(v.birth_date is None and v.name == "Gelöscht" for v in pet_versions)
        absorbed = db.session.scalars(sa.select(cls).where(cls.id == marked.absorbed)).all()
        assert absorbed and all(v.email is None and v.first_name == "Gelöscht" and v.erased_at is not None
                                for v in absorbed)
        # recorded: who and when, the retained invoice with its reason — not the erased data
        erasures = db.session.scalars(sa.select(CustomerErasure).where(
            CustomerErasure.customer_id == marked.customer)).all()
        assert len(erasures) == 1 and erasures[0].erased_by_id == world.user_owner
        assert erasures[0].retained == [{"table": "invoice", "id": marked.issued_invoice,
                                         "number": marked.issued_number, "reason": RETENTION}]
    assert not Path(marked.document_file).exists(), "the document's file must be removed"
    assert snapshot(app, world) == others_before, "other customers must stay untouched"

    # erasing twice: German message, nothing done
    response = owner.post(url, data={"confirm": "LÖSCHEN", "csrf_token": session_csrf(owner)})
    assert response.status_code == 200 and "bereits auf Anfrage gelöscht" in html(response)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CustomerErasure).where(
            CustomerErasure.customer_id == marked.customer)) == 1


def test_erase_service_refuses_twice_and_unknown(app, world, marked):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer
    from app.services.gdpr import ErasureRefused, erase_customer

    with app.app_context(), acting_as("owner"):
        with pytest.raises(LookupError):
            erase_customer(db.session, 987654321)
        erasure = erase_customer(db.session, marked.customer)
        db.session.commit()
        assert erasure.erased_by_id == world.user_owner
        erased_at = db.session.get(Customer, marked.customer).erased_at
        with pytest.raises(ErasureRefused, match="bereits auf Anfrage gelöscht"):
            erase_customer(db.session, marked.customer)
        db.session.rollback()
        assert db.session.get(Customer, marked.customer).erased_at == erased_at


def test_every_linked_table_and_text_column_has_an_erasure_decision(app):
    """A new table or text column linked to customers must be decided in ERASE."""
    from flask_appbuilder import Model

    from app.services.gdpr import ERASE, _customer_values, linked_tables

    with app.app_context():
        links = linked_tables()
    assert {"customer", "pet", "booking", "document", "notification_log", "invoice", "invoice_line",
            "pass_card", "pass_redemption", "bonus_transaction"} <= set(links)
    assert set(links) <= set(ERASE), f"linked tables without an erasure rule: {set(links) - set(ERASE)}"
    undecided = []
    for name in links:
        table = Model.metadata.tables[name]
        rule = ERASE[name]
        decided = set(rule.values) | rule.keep | (set(_customer_values(0)) if name == "customer" else set())
        for column in table.columns:
            if isinstance(column.type, sa.String | sa.JSON) and not column.foreign_keys and column.name not in decided:
                undecided.append(f"{name}.{column.name}")
    assert not undecided, f"text columns without an erasure decision: {undecided}"


# --- Datenauskunft -------------------------------------------------------------------------------
def test_datenauskunft_json_has_everything_of_the_customer_and_nothing_else(app, world, owner, marked):
    response = owner.get(f"/datenschutz/{marked.customer}/auskunft.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json" and "charset=utf-8" in response.content_type
    disposition = response.headers["Content-Disposition"]
    assert f"datenauskunft_kunde_{marked.customer}_" in disposition and marked.marker not in disposition
    data = json.loads(response.get_data(as_text=True))
    tables = data["tables"]
    assert data["customer_id"] == marked.customer
    assert [row["email"] for row in tables["customer"]] == [f"{marked.marker}@example.org"]
    assert tables["customer"][0]["birth_date"] == BIRTH_DATE.isoformat()
    datetime.fromisoformat(tables["customer"][0]["created_at"])  # ISO dates
    bookings = tables["booking"]
    assert [b["comment"] for b in bookings] == [f"{marked.marker}-comment"]
    assert bookings[0]["service_name"] == "Einzelstunde 60" and bookings[0]["employee_name"] == "Zoe Zwei"
    assert [p["name"] for p in tables["pet"]] == [f"{marked.marker}-pet"]
    assert len(tables["pass_card"]) == 1 and len(tables["pass_redemption"]) == 1
    assert len(tables["invoice"]) == 2 and len(tables["invoice_line"]) == 2
    assert len(tables["document"]) == 1 and len(tables["notification_log"]) == 1
    assert len(tables["bonus_transaction"]) == 1
    # the history: several versions of the customer, the deleted pet and booking, with time and user
    versions = tables["customer_version"]
    assert len([v for v in versions if v["id"] == marked.customer]) >= 4
    assert any(v["id"] == marked.absorbed for v in versions), "the merged duplicate's history belongs to it"
    assert all(v["transaction_issued_at"] and v["transaction_user"] == "System" for v in versions)
    assert any(v["name"] == f"{marked.marker}-deleted-pet" for v in tables["pet_version"])
    assert any(v["comment"] == f"{marked.marker}-deleted-comment" for v in tables["booking_version"])
    # nothing of any other customer
    text = response.get_data(as_text=True)
    for other in ("anna@example.org", "+49301234567", "bernd@example.org", "Erster Termin", "Termin der Kollegin",
                  "Bello", "Colleague"):
        assert other not in text, other
    for name, rows in tables.items():
        if name in ("duplicate_dismissal", "duplicate_dismissal_version"):
            continue
        for row in rows:
            assert row.get("customer_id") in (None, marked.customer, marked.absorbed), (name, row)
    assert "referred_by_name" not in tables["customer"][0], "the referrer is another customer"


def test_datenauskunft_xlsx_opens_and_has_the_sheets(app, owner, marked):
    response = owner.get(f"/datenschutz/{marked.customer}/auskunft.xlsx")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f"datenauskunft_kunde_{marked.customer}_" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(body)).namelist()
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(body))
    assert {"customer", "pet", "booking", "invoice", "customer_version", "booking_version",
            "pet_version"} <= set(workbook.sheetnames)
    sheet = workbook["customer"]
    header = [cell.value for cell in sheet[1]]
    values = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert values["email"] == f"{marked.marker}@example.org"
    assert values["notes"].startswith("'="), "a text starting with = must not become a formula"
    assert sheet.max_row == 2
    booking_versions = workbook["booking_version"]
    assert booking_versions.max_row >= 3


# --- access -------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["Manager", "Employee", "Viewer"])
def test_only_the_owner(app, client_for, marked, role):
    client = client_for(role)
    for suffix in ("loeschen", "auskunft.json", "auskunft.xlsx"):
        assert client.get(f"/datenschutz/{marked.customer}/{suffix}").status_code == 403, suffix
    response = client.post(f"/datenschutz/{marked.customer}/loeschen",
                           data={"csrf_token": session_csrf(client), "confirm": "LÖSCHEN"})
    assert response.status_code == 403
    anonymous = client_for(None)
    assert is_login_redirect(anonymous.get(f"/datenschutz/{marked.customer}/loeschen"))
    from app.extensions import db
    from app.models import Customer

    with app.app_context():
        assert db.session.get(Customer, marked.customer).erased_at is None


def test_invalid_and_missing_ids(owner):
    for suffix in ("loeschen", "auskunft.json", "auskunft.xlsx"):
        assert owner.get(f"/datenschutz/987654321/{suffix}").status_code == 404
        assert owner.get(f"/datenschutz/abc/{suffix}").status_code == 400
        assert owner.get(f"/datenschutz/99999999999999999999/{suffix}").status_code == 400
    assert owner.post("/datenschutz/987654321/loeschen",
                      data={"csrf_token": session_csrf(owner), "confirm": "LÖSCHEN"}).status_code == 404


def test_post_without_csrf_is_refused(app, owner, marked):
    from app.extensions import db
    from app.models import Customer

    response = owner.post(f"/datenschutz/{marked.customer}/loeschen", data={"confirm": "LÖSCHEN"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Customer, marked.customer).erased_at is None


def test_buttons_on_the_customer_file_for_the_owner_only(owner, manager, marked):
    page = html(owner.get(f"/customerview/show/{marked.customer}"))
    assert f"/datenschutz/{marked.customer}/loeschen" in page
    assert f"/datenschutz/{marked.customer}/auskunft.json" in page
    page = html(manager.get(f"/customerview/show/{marked.customer}"))
    assert "/datenschutz/" not in page


def test_confirmation_page_in_english(owner, marked):
    assert owner.get("/lang/en").status_code == 302
    try:
        page = html(owner.get(f"/datenschutz/{marked.customer}/loeschen"))
        assert "Erasure on request" in page and "Löschen auf Anfrage" not in page
    finally:
        owner.get("/lang/de")
