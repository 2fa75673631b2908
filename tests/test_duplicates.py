"""Dubletten: candidate pairs (e-mail, phone, Kölner Phonetik, swapped names), "Keine
Dublette", merge (every related row moves, empty fields filled, the other customer gone)
and the Owner's undo (both customers back, every row on its original customer), through
the service and over HTTP with the role rules."""
from __future__ import annotations

import itertools
import re
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import post_form
from tests.helpers_perm import pop_flashes, session_csrf

_slot = itertools.count()


def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture()
def people(app, world):
    """make(first, last, **fields) → customer id; everything made (and all rows pointing at it,
    merges included) is removed afterwards."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    made: list[int] = []

    def make(first_name: str, last_name: str, **fields) -> int:
        with app.app_context(), acting_as():
            customer = Customer(first_name=first_name, last_name=last_name, **fields)
            db.session.add(customer)
            db.session.commit()
            made.append(customer.id)
            return customer.id

    yield make
    cleanup(app, made)


def cleanup(app, ids: list[int]) -> None:
    from app.extensions import db
    from app.models import Customer, CustomerMerge
    from app.services.duplicates import customer_references

    if not ids:
        return
    with app.app_context():
        db.session.rollback()
        db.session.execute(sa.delete(CustomerMerge).where(
            CustomerMerge.removed_id.in_(ids) | CustomerMerge.kept_id.in_(ids)))
        db.session.execute(sa.update(Customer).where(Customer.referred_by_id.in_(ids)).values(referred_by_id=None))
        for table, column in customer_references():
            if table.name not in ("customer", "customer_merge"):
                db.session.execute(sa.delete(table).where(table.c[column].in_(ids)))
        db.session.execute(sa.delete(Customer).where(Customer.id.in_(ids)))
        db.session.commit()


def pairs(app) -> dict[tuple[int, int], object]:
    from app.extensions import db
    from app.services.duplicates import candidate_pairs

    with app.app_context():
        return {(c.low_id, c.high_id): c for c in candidate_pairs(db.session)}


def pair_of(app, a: int, b: int):
    return pairs(app).get((min(a, b), max(a, b)))


# --- candidate search ------------------------------------------------------------
def test_same_email_in_other_case_is_a_pair(app, people):
    tag = unique()
    a = people("Greta", "Lindqvist", email=f"greta.{tag}@example.org")
    b = people("G.", "Lindqvist", email=f" Greta.{tag}@EXAMPLE.org")
    candidate = pair_of(app, a, b)
    assert candidate is not None
    assert "gleiche E-Mail-Adresse" in candidate.reasons
    assert 0 <= candidate.score <= 100


def test_national_and_international_phone_formats_are_a_pair(app, people):
    a = people("Waltraud", "Esterházy", phone="030 7654321")
    b = people("Waltraud", "Esterhazy", phone="+49 (0)30 765 43 21")
    c = people("Waltraud", "Esterhazy", phone="+49 30 7654321")
    for x, y in ((a, b), (a, c), (b, c)):
        candidate = pair_of(app, x, y)
        assert candidate is not None and "gleiche Telefonnummer" in candidate.reasons
        assert candidate.score >= 80


@pytest.mark.parametrize(("one", "other"), [
    (("Hildegard", "Meyer"), ("Hildegard", "Maier")),
    (("Hildegard", "Mayr"), ("Hildegard", "Meier")),
    (("Jürgen", "Müller"), ("Jurgen", "Muller")),
    (("Stefan", "Schmidt"), ("Stephan", "Schmitt")),
])
def test_phonetic_spelling_variants_are_a_pair(app, people, one, other):
    a = people(*one, birth_date=date(1961, 2, 3))
    b = people(*other)
    candidate = pair_of(app, a, b)
    assert candidate is not None, (one, other)
    assert "ähnlicher Name (Kölner Phonetik)" in candidate.reasons
    assert candidate.score >= 40


def test_umlaut_and_its_spelling_are_the_same_name(app, people):
    a = people("Jürgen", "Müller")
    b = people("Juergen", "Mueller")
    candidate = pair_of(app, a, b)
    assert candidate is not None and "gleicher Name" in candidate.reasons


def test_swapped_first_and_last_name_is_a_pair(app, people):
    a = people("Friedrich", "Oberhuber", postal_code="80331")
    b = people("Oberhuber", "Friedrich", postal_code="80331")
    c = people("Oberhuber", "Friedrych")  # swapped and misspelt
    assert "Vor- und Nachname vertauscht" in pair_of(app, a, b).reasons
    assert "Vor- und Nachname vertauscht" in pair_of(app, a, c).reasons


def test_different_people_are_no_pair(app, people):
    a = people("Ottilie", "Brandstätter", email=f"o.{unique()}@example.org", phone="089 1112223")
    b = people("Konstantin", "Wegener", email=f"k.{unique()}@example.org", phone="089 9998887")
    # a family: same phone and e-mail domain, different first names
    c = people("Ralf", "Kessler", phone="040 5556667")
    d = people("Monika", "Kessler", phone="040 5556667")
    # same name, but born on different days and with different phones
    e = people("Thomas", "Nachtigall", birth_date=date(1970, 1, 1), phone="0221 121212")
    f = people("Thomas", "Nachtigall", birth_date=date(1985, 6, 6), phone="0221 343434")
    found = pairs(app)
    for x, y in ((a, b), (c, d), (e, f)):
        assert (min(x, y), max(x, y)) not in found


def test_dismissed_pair_never_returns_and_erased_customers_are_left_out(app, people):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer
    from app.services.duplicates import dismiss_pair, duplicate_customer_ids

    a = people("Eleonore", "Pfannenstiel", phone="0711 4443332")
    b = people("Eleonore", "Pfannenstil", phone="0711 4443332")
    c = people("Eleonore", "Pfannenstiel")
    assert pair_of(app, a, b) is not None
    with app.app_context(), acting_as():
        assert {a, b, c} <= duplicate_customer_ids(db.session)
        first = dismiss_pair(db.session, b, a)
        assert (first.customer_low_id, first.customer_high_id) == (min(a, b), max(a, b))
        assert dismiss_pair(db.session, a, b).id == first.id  # dismissing twice is harmless
        with pytest.raises(ValueError, match="keine Dublette von sich selbst"):
            dismiss_pair(db.session, a, a)
        db.session.commit()
    assert pair_of(app, a, b) is None
    assert pair_of(app, a, c) is not None
    with app.app_context(), acting_as():
        db.session.get(Customer, c).erased_at = datetime.now(timezone.utc)
        db.session.commit()
        ids = duplicate_customer_ids(db.session)
    assert pair_of(app, a, c) is None and pair_of(app, b, c) is None
    assert c not in ids


def test_candidates_are_sorted_and_limited(app, people):
    from app.extensions import db
    from app.services.duplicates import candidate_pairs

    people("Kunigunde", "Zwirnmeier", phone="0351 717171")
    people("Kunigunde", "Zwirnmaier", phone="0351 717171")
    people("Kunigunde", "Zwirnmayr")
    with app.app_context():
        found = candidate_pairs(db.session)
        assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
        assert candidate_pairs(db.session, limit=2) == found[:2]
        assert all(c.low_id < c.high_id and c.reasons for c in found)


def test_matches_for_a_new_record(app, people):
    from app.extensions import db
    from app.services.duplicates import CustomerIndex, matches_for

    tag = unique()
    a = people("Bartholomäus", "Quendel", email=f"bq.{tag}@example.org")
    b = people("Hannelore", "Vogelsang", phone="0611 2223334")
    with app.app_context():
        found = matches_for(db.session, first_name="Bartholomaeus", last_name="Quendel")
        assert [m[0] for m in found] == [a] and "gleicher Name" in found[0][2]
        by_mail = matches_for(db.session, first_name="B.", last_name="Quendel", email=f"BQ.{tag}@example.org ")
        assert by_mail[0][0] == a and "gleiche E-Mail-Adresse" in by_mail[0][2]
        by_phone = matches_for(db.session, first_name="Hannelore", last_name="Vogelsang-Kühn", phone="+49 611 2223334")
        assert by_phone[0][0] == b and "gleiche Telefonnummer" in by_phone[0][2]
        assert matches_for(db.session, first_name="Kasimir", last_name="Xylander") == []
        index = CustomerIndex.load(db.session)
        index.add(-1, first_name="Kasimir", last_name="Xylander")
        assert [m[0] for m in index.matches(first_name="Kasimir", last_name="Xylandr")] == [-1]


# --- merge and undo ------------------------------------------------------------------
def test_every_foreign_key_to_customer_is_handled(app):
    """The merge finds its tables through the metadata; the database must not have a
    reference the metadata does not know (a table added by a migration only)."""
    from app.extensions import db
    from app.services.duplicates import customer_references
    from app.views.duplicates import KIND_LABELS

    known = {(table.name, column) for table, column in customer_references()}
    with app.app_context():
        inspector = sa.inspect(db.engine)
        in_db = {
            (table, column)
            for table in inspector.get_table_names()
            for fk in inspector.get_foreign_keys(table) if fk["referred_table"] == "customer"
            for column in fk["constrained_columns"]
        }
    assert in_db == known
    expected = {("booking", "customer_id"), ("pet", "customer_id"), ("pass_card", "customer_id"),
                ("bonus_transaction", "customer_id"), ("document", "customer_id"), ("invoice", "customer_id"),
                ("notification_log", "customer_id"), ("customer", "referred_by_id")}
    assert expected <= known
    from app.services.duplicates import reference_key
    assert all(reference_key(table, column) in KIND_LABELS for table, column in customer_references())


@pytest.fixture()
def merge_case(app, world, people):
    """Two customers of the same person; the removed one (b) has a row in every table
    that references customers, plus a customer it referred and a dismissed pair."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import (
        BonusProgram,
        BonusTransaction,
        Booking,
        Document,
        Invoice,
        NotificationLog,
        PassCard,
        PassCardType,
        Pet,
    )

    tag = unique()
    a = people("Rosalinde", "Hufnagel", notes="Stammkundin", birth_date=date(1958, 4, 1))
    b = people("Rosalinde", "Hufnagl", email=f"rosalinde.{tag}@example.org", phone="0761 3334445",
               street="Hauptstr. 1", postal_code="79098", city="Freiburg", birth_date=date(1958, 4, 1),
               notes="alte Karteikarte")
    referred = people("Leopold", f"Geworben{tag}", referred_by_id=b)
    other = people("Irmgard", f"Anders{tag}")
    start = datetime(2041, 1, 5, 9, tzinfo=timezone.utc) + timedelta(days=next(_slot) * 3)
    with app.app_context(), acting_as():
        card_type = PassCardType(name=f"10er {tag}", units=10, price=Decimal("100"))
        program = BonusProgram(name=f"Bonus {tag}", points_per_euro=Decimal("1"), threshold=100,
                               reward_name="Rabatt", reward_value=Decimal("10"))
        db.session.add_all([card_type, program])
        db.session.flush()
        rows = [
            Booking(customer_id=a, service_id=world.service, employee_id=world.employee1, start_at=start),
            Booking(customer_id=b, service_id=world.service, employee_id=world.employee1,
                    start_at=start + timedelta(hours=2)),
            Booking(customer_id=b, service_id=world.service, employee_id=world.employee2,
                    start_at=start + timedelta(hours=4)),
            Pet(customer_id=b, name="Struppi"),
            Pet(customer_id=a, name="Bello"),
            PassCard(customer_id=b, type_id=card_type.id, units_total=10, price=Decimal("100")),
            BonusTransaction(customer_id=b, program_id=program.id, kind="earn", points=5, reason="Termin"),
            Document(customer_id=b, title="Vertrag", filename="v.pdf", stored_name=f"merge-{tag}",
                     content_type="application/pdf", size_bytes=0),
            Invoice(customer_id=b),
            NotificationLog(customer_id=b, kind="reminder", channel="email", recipient="x@example.org"),
        ]
        db.session.add_all(rows)
        db.session.commit()
        from app.services.duplicates import dismiss_pair
        dismiss_pair(db.session, b, other)
        db.session.commit()
        extra = {"card_type": card_type.id, "program": program.id}
    yield {"a": a, "b": b, "referred": referred, "other": other, **extra}
    with app.app_context():
        cleanup(app, [a, b, referred, other])
        db.session.execute(sa.delete(PassCardType).where(PassCardType.id == extra["card_type"]))
        db.session.execute(sa.delete(BonusProgram).where(BonusProgram.id == extra["program"]))
        db.session.commit()


def rows_by_customer(app, ids: list[int]) -> dict[str, dict[int, set[int]]]:
    """For every referencing table: customer id → ids of its rows (the customers in `ids`)."""
    from app.extensions import db
    from app.services.duplicates import customer_references, reference_key

    found: dict[str, dict[int, set[int]]] = {}
    with app.app_context():
        for table, column in customer_references():
            if table.name == "customer_merge":  # the merge's own record
                continue
            for pk, owner in db.session.execute(sa.select(table.c.id, table.c[column])
                                                .where(table.c[column].in_(ids))):
                found.setdefault(reference_key(table, column), {}).setdefault(owner, set()).add(pk)
    return found


def test_merge_moves_every_row_fills_empty_fields_and_undo_restores_both(app, merge_case):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer, CustomerMerge, DuplicateDismissal
    from app.services.duplicates import merge_customers, undo_merge

    a, b, other = merge_case["a"], merge_case["b"], merge_case["other"]
    before = rows_by_customer(app, [a, b])
    tables = {"booking", "pet", "pass_card", "bonus_transaction", "document", "invoice", "notification_log",
              "customer.referred_by_id", "duplicate_dismissal.customer_low_id",
              "duplicate_dismissal.customer_high_id"}
    assert tables - {"duplicate_dismissal.customer_low_id", "duplicate_dismissal.customer_high_id"} <= set(before)
    with app.app_context(), acting_as("manager"):
        b_before = {c.name: getattr(db.session.get(Customer, b), c.name) for c in Customer.__table__.columns}
        merge = merge_customers(db.session, a, b)
        db.session.commit()
        merge_id = merge.id
        assert merge.transaction_id is not None
        assert set(merge.filled) == {"email", "phone", "street", "postal_code", "city"}
        assert len(merge.moved["booking"]) == 2
    after = rows_by_customer(app, [a, b])
    for key, owners in before.items():
        if key.startswith("duplicate_dismissal"):
            continue
        assert set(after[key]) == {a}, key  # nothing left on the removed customer
        assert after[key][a] == set().union(*owners.values()), key  # count before = after, same rows
    with app.app_context():
        assert db.session.get(Customer, b) is None
        kept = db.session.get(Customer, a)
        assert kept.email == b_before["email"] and kept.phone == b_before["phone"]
        assert (kept.street, kept.city) == ("Hauptstr. 1", "Freiburg")
        assert kept.notes == "Stammkundin"  # filled only when empty
        assert db.session.get(Customer, merge_case["referred"]).referred_by_id == a
        dismissal = db.session.scalar(sa.select(DuplicateDismissal).where(
            DuplicateDismissal.customer_low_id == min(a, other), DuplicateDismissal.customer_high_id == max(a, other)))
        assert dismissal is not None  # "not the same person" carries over to the kept customer
        assert db.session.get(CustomerMerge, merge_id).merged_by_id == merge_case_user(app, "manager")

    with app.app_context(), acting_as("owner"):
        undo_merge(db.session, merge_id)
        db.session.commit()
    assert rows_by_customer(app, [a, b]) == before  # every row back on its original customer
    with app.app_context(), acting_as("owner"):
        restored = db.session.get(Customer, b)
        assert restored is not None
        assert {c.name: getattr(restored, c.name) for c in Customer.__table__.columns} == b_before
        kept = db.session.get(Customer, a)
        assert (kept.email, kept.phone, kept.street, kept.city) == (None, None, None, None)
        assert kept.notes == "Stammkundin"
        assert db.session.get(Customer, merge_case["referred"]).referred_by_id == b
        merge = db.session.get(CustomerMerge, merge_id)
        assert merge.undone_at is not None and merge.undone_by_id == merge_case_user(app, "owner")
        with pytest.raises(ValueError, match="schon rückgängig gemacht"):
            undo_merge(db.session, merge_id)
        db.session.rollback()
        with pytest.raises(LookupError):
            undo_merge(db.session, 987654321)


def merge_case_user(app, username: str) -> int:
    with app.app_context():
        return app.appbuilder.sm.find_user(username=username).id


def test_merge_refuses_itself_missing_and_erased(app, people):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer, CustomerMerge
    from app.services.duplicates import merge_customers

    a = people("Adelheid", "Sommerfeld")
    b = people("Adelheid", "Sommerfeldt", erased_at=datetime.now(timezone.utc))
    with app.app_context(), acting_as():
        merges = db.session.scalar(sa.select(sa.func.count()).select_from(CustomerMerge))
        with pytest.raises(ValueError, match="nicht mit sich selbst"):
            merge_customers(db.session, a, a)
        with pytest.raises(LookupError):
            merge_customers(db.session, a, 987654321)
        with pytest.raises(ValueError, match="anonymisierte"):
            merge_customers(db.session, a, b)
        db.session.rollback()
        assert db.session.get(Customer, a) is not None and db.session.get(Customer, b) is not None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CustomerMerge)) == merges


def test_merge_where_the_kept_was_referred_by_the_removed(app, people):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer
    from app.services.duplicates import merge_customers, undo_merge

    b = people("Gottfried", "Wendelin")
    a = people("Gottfried", "Wendelin", referred_by_id=b)
    with app.app_context(), acting_as():
        merge = merge_customers(db.session, a, b)
        db.session.commit()
        assert db.session.get(Customer, a).referred_by_id is None  # never refers to itself
        undo_merge(db.session, merge.id)
        db.session.commit()
        assert db.session.get(Customer, a).referred_by_id == b


# --- screens ---------------------------------------------------------------------------
def test_employee_and_viewer_get_403(client_for):
    for role in ("Employee", "Viewer"):
        client = client_for(role)
        assert client.get("/dubletten/").status_code == 403
        assert client.get("/dubletten/compare/?a=1&b=2").status_code == 403
        assert client.get("/dubletten/merges/").status_code == 403


def test_list_and_compare_for_the_manager(app, client_for, people):
    a = people("Wilhelmine", "Krautwurst", phone="0341 9090901")
    b = people("Wilhelmine", "Krautwurscht", phone="0341 909 09 01")
    manager = client_for("Manager")
    html = manager.get("/dubletten/?page=0").get_data(as_text=True)
    assert f'data-low="{min(a, b)}" data-high="{max(a, b)}"' in html or "Seite 1 von" in html
    response = manager.get(f"/dubletten/compare/?a={a}&b={b}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Krautwurscht" in html and "gleiche Telefonnummer" in html and "Zusammenführen" in html
    assert "Keine Dublette" in html
    assert manager.get("/dubletten/compare/").status_code == 200
    assert "Bitte zwei Kund:innen zum Vergleichen wählen." in manager.get("/dubletten/compare/").get_data(True)
    assert manager.get(f"/dubletten/compare/?a={a}&b=x1").status_code == 400
    assert manager.get(f"/dubletten/compare/?a={a}&b=987654321").status_code == 404


def test_merge_and_undo_over_http(app, client_for, merge_case):
    from app.extensions import db
    from app.models import Customer, CustomerMerge

    a, b = merge_case["a"], merge_case["b"]
    before = rows_by_customer(app, [a, b])
    manager = client_for("Manager")
    compare = f"/dubletten/compare/?a={a}&b={b}"
    # before the merge the page names what the other customer has filled differently (not taken over)
    page = manager.get(compare).get_data(as_text=True)
    lost_a = re.search(rf'id="lost-{a}">([^<]*)<', page).group(1)
    assert "Nachname" in lost_a and "Notizen" in lost_a and "E-Mail" not in lost_a  # e-mail: filled, not lost
    with app.app_context():  # the same number in another format is no difference
        db.session.get(Customer, a).phone = "+49 761 3334445"
        db.session.commit()
    page = manager.get(compare).get_data(as_text=True)
    assert "Telefon" not in re.search(rf'id="lost-{a}">([^<]*)<', page).group(1)
    # no CSRF token: refused, nothing changed
    assert manager.post("/dubletten/merge/", data={"a": a, "b": b, "kept": a}).status_code == 400
    # no choice of the kept customer: the page again with a German error
    response = post_form(manager, "/dubletten/merge/", {"a": a, "b": b}, form_url=compare)
    assert response.status_code == 200
    assert "Bitte wählen, welche Kund:in behalten wird." in response.get_data(as_text=True)
    response = post_form(manager, "/dubletten/merge/", {"a": a, "b": a, "kept": a}, form_url=compare)
    assert "nicht mit sich selbst zusammengeführt" in response.get_data(as_text=True)
    assert rows_by_customer(app, [a, b]) == before

    response = post_form(manager, "/dubletten/merge/", {"a": a, "b": b, "kept": b}, form_url=compare)
    assert response.status_code == 302 and response.location.endswith(f"/customerview/show/{b}")
    assert any(f"(#{a}) wurde mit" in text and f"(#{b})" in text for _c, text in pop_flashes(manager))
    with app.app_context():
        assert db.session.get(Customer, a) is None
        merge_id = db.session.scalar(sa.select(CustomerMerge.id).where(CustomerMerge.removed_id == a))
    html = manager.get("/dubletten/merges/").get_data(as_text=True)
    assert f'data-id="{merge_id}"' in html and "Rückgängig machen" not in html  # the Manager cannot undo
    assert manager.post("/dubletten/undo/", data={"merge": merge_id, "confirm": "1",
                                                  "csrf_token": session_csrf(manager)}).status_code == 403

    owner = client_for("Owner")
    html = owner.get("/dubletten/merges/").get_data(as_text=True)
    assert "Rückgängig machen" in html
    token = session_csrf(owner)

    def undo(**data):
        return owner.post("/dubletten/undo/", data={"csrf_token": token, **data})

    response = undo(merge=merge_id)
    assert response.status_code == 200 and "Rückgängig machen bestätigen" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Customer, a) is None  # only the confirmation changes anything
    assert owner.post("/dubletten/undo/", data={"merge": merge_id, "confirm": "1"}).status_code == 400  # no CSRF
    response = undo(merge=merge_id, confirm="1")
    assert response.status_code == 302
    assert rows_by_customer(app, [a, b]) == before
    with app.app_context():
        assert db.session.get(Customer, a).last_name == "Hufnagel"
    response = undo(merge=merge_id, confirm="1")
    assert "schon rückgängig gemacht" in response.get_data(as_text=True)
    assert undo(merge="x").status_code == 400
    assert undo(merge="987654321").status_code == 404
    response = undo()
    assert response.status_code == 200 and "Bitte eine Zusammenführung wählen." in response.get_data(as_text=True)


def test_dismiss_over_http(app, client_for, people):
    a = people("Apollonia", "Fichtenhain", phone="0228 6566676")
    b = people("Apollonia", "Fichtenhein", phone="0228 6566676")
    assert pair_of(app, a, b) is not None
    manager = client_for("Manager")
    compare = f"/dubletten/compare/?a={a}&b={b}"
    assert manager.post("/dubletten/dismiss/", data={"a": a, "b": b}).status_code == 400  # no CSRF
    assert pair_of(app, a, b) is not None
    response = post_form(manager, "/dubletten/dismiss/", {}, form_url=compare)
    assert response.status_code == 200 and "Bitte zwei Kund:innen wählen." in response.get_data(as_text=True)
    response = post_form(manager, "/dubletten/dismiss/", {"a": a, "b": b}, form_url=compare)
    assert response.status_code == 302
    assert pair_of(app, a, b) is None
    assert f'data-low="{min(a, b)}"' not in manager.get("/dubletten/").get_data(as_text=True)


def test_pages_in_english(client_for, people):
    a = people("Roswitha", "Birnbaum", phone="0201 4445556")
    b = people("Roswitha", "Birnbaum", phone="0201 4445556")
    owner = client_for("Owner")
    assert owner.get("/lang/en").status_code == 302
    try:
        html = owner.get(f"/dubletten/compare/?a={a}&b={b}").get_data(as_text=True)
        assert "same phone number" in html and "Merge" in html and "Not a duplicate" in html
        assert "Merges" in owner.get("/dubletten/merges/").get_data(as_text=True)
    finally:
        owner.get("/lang/de")


def test_candidate_search_compares_within_blocks_only(monkeypatch):
    """5,000 customers called "Anna Müller" without contact data: no pair is scored (the name
    alone is too common to mean anything), while the two sharing a phone are found."""
    from app.services import duplicates

    people = [duplicates.person_record(i, "Anna", "Müller", None, None) for i in range(5000)]
    people += [duplicates.person_record(i, f"Vorname{i}", f"Nachname{i}", f"p{i}@example.org", None)
               for i in range(5000, 10000)]
    people.append(duplicates.person_record(10001, "Anna", "Mueller", None, "030 5554443"))
    people.append(duplicates.person_record(10002, "Anna", "Müller", None, "+49 30 5554443"))
    calls = []
    real = duplicates.score_pair
    monkeypatch.setattr(duplicates, "score_pair", lambda *args: calls.append(args) or real(*args))
    found = duplicates._candidates(people, set())
    assert [(c.low_id, c.high_id) for c in found] == [(10001, 10002)]
    assert found[0].reasons == ("gleiche Telefonnummer", "gleicher Name")
    assert len(calls) < 100  # not 50 million


def test_undo_of_an_earlier_merge_waits_for_the_later_one(app, people):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer
    from app.services.duplicates import merge_customers, undo_merge

    a = people("Notburga", "Eichhorn")
    b = people("Notburga", "Eichhorn")
    c = people("Notburga", "Eichhoorn")
    with app.app_context(), acting_as():
        first = merge_customers(db.session, b, a).id  # a → b
        db.session.commit()
        second = merge_customers(db.session, c, b).id  # b (with a's rows) → c
        db.session.commit()
        with pytest.raises(ValueError, match="später noch einmal zusammengeführt"):
            undo_merge(db.session, first)
        db.session.rollback()
        undo_merge(db.session, second)
        undo_merge(db.session, first)
        db.session.commit()
        assert all(db.session.get(Customer, pk) is not None for pk in (a, b, c))


def test_an_issued_invoice_keeps_its_addressee_when_its_customer_is_merged_away(app, merge_case):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Invoice
    from app.services.duplicates import merge_customers, undo_merge
    from tests.helpers_invoices import delete_invoices

    a, b = merge_case["a"], merge_case["b"]
    with app.app_context(), acting_as("manager"):
        issued = Invoice(customer_id=b, status="issued", year=2041, sequence=9041 + a % 1000,
                         number=f"2041-{a:06d}", issued_at=datetime(2041, 1, 2, tzinfo=timezone.utc))
        db.session.add(issued)
        db.session.commit()
        merge = merge_customers(db.session, a, b)
        db.session.commit()
        db.session.refresh(issued)
        assert issued.customer_id == a
        assert issued.recipient_name == "Rosalinde Hufnagl"
        assert issued.recipient_address == "Hauptstr. 1\n79098 Freiburg"
        undo_merge(db.session, merge.id)
        db.session.commit()
        db.session.refresh(issued)
        assert issued.customer_id == b and issued.recipient_name == "Rosalinde Hufnagl"
        delete_invoices(db.session, [issued.id])  # an issued invoice: only the test clean-up removes it
        db.session.commit()
