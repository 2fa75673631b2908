"""Active-customer metrics (issue 4, point 4): customers with a future, not cancelled
booking per service category and in total, under the row rules; every number on the
customer list and the start page links to a list of exactly the customers it counts."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.models.services import SERVICE_CATEGORIES

KEYS = ("total", *SERVICE_CATEGORIES)
FUTURE = datetime(2041, 6, 3, 8, 0, tzinfo=timezone.utc)  # a Monday, after every world booking
PAST = datetime(2020, 6, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def data(app, world):
    """Customers of employee1: `both` (future Kurs + Gruppe), `past` (Kurs in the past),
    `cancelled` (future Kurs, cancelled); of employee2: `colleague` (future Seminar)."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, BookingStatus, Customer, Service

    with app.app_context(), acting_as():
        services = {
            cat: Service(name=f"Metrik {cat}", category=cat, duration_minutes=60, price=Decimal("10.00"))
            for cat in ("kurs", "gruppe", "seminar")
        }
        customers = {name: Customer(first_name="Metrik", last_name=name.capitalize())
                     for name in ("both", "past", "cancelled", "colleague")}
        cancel = db.session.scalars(sa.select(BookingStatus).where(BookingStatus.kind == "cancellation")
                                    .order_by(BookingStatus.position)).first()
        bookings = [
            Booking(customer=customers["both"], service=services["kurs"], employee_id=world.employee1,
                    start_at=FUTURE),
            Booking(customer=customers["both"], service=services["gruppe"], employee_id=world.employee1,
                    start_at=FUTURE + timedelta(hours=2)),
            Booking(customer=customers["past"], service=services["kurs"], employee_id=world.employee1,
                    start_at=PAST),
            Booking(customer=customers["cancelled"], service=services["kurs"], employee_id=world.employee1,
                    start_at=FUTURE + timedelta(hours=4), status=cancel),
            Booking(customer=customers["colleague"], service=services["seminar"], employee_id=world.employee2,
                    start_at=FUTURE),
        ]
        db.session.add_all([*services.values(), *customers.values(), *bookings])
        db.session.commit()
        ids = {name: c.id for name, c in customers.items()}
        booking_ids = [b.id for b in bookings]
        service_ids = [s.id for s in services.values()]
    yield ids
    with app.app_context(), acting_as():
        for pk in booking_ids:
            db.session.delete(db.session.get(Booking, pk))
        db.session.flush()
        for pk in ids.values():
            db.session.delete(db.session.get(Customer, pk))
        for pk in service_ids:
            db.session.delete(db.session.get(Service, pk))
        db.session.commit()


def page_numbers(html: str) -> dict[str, tuple[int, str]]:
    """{key: (number, link)} of the active-customer numbers on a page."""
    found = {}
    for key in KEYS:
        count = re.search(rf'id="count-active-{key}">(\d+)<', html)
        link = re.search(rf'id="link-active-{key}" href="([^"]+)"', html)
        assert count and link, f"number {key} missing"
        found[key] = (int(count.group(1)), link.group(1).replace("&amp;", "&"))
    return found


def listed_ids(client, url: str) -> set[int]:
    response = client.get(f"{url}&psize_CustomerView=100")
    assert response.status_code == 200
    ids = {int(pk) for pk in re.findall(r'href="/customerview/show/(\d+)', response.get_data(as_text=True))}
    assert len(ids) < 100
    return ids


def numbers_match_lists(client, page: str) -> dict[str, set[int]]:
    response = client.get(page)
    assert response.status_code == 200
    numbers = page_numbers(response.get_data(as_text=True))
    rows = {}
    for key, (count, link) in numbers.items():
        rows[key] = listed_ids(client, link)
        assert count == len(rows[key]), f"{page} {key}: {count} shown, {len(rows[key])} behind the link"
    return rows


@pytest.mark.parametrize("page", ["/customerview/list/", "/"])
def test_owner_numbers_are_the_rows_behind_the_links(client_for, data, world, page):
    rows = numbers_match_lists(client_for("Owner"), page)
    assert data["both"] in rows["kurs"] and data["both"] in rows["gruppe"] and data["both"] in rows["total"]
    assert data["colleague"] in rows["seminar"] and data["colleague"] in rows["total"]
    for key in KEYS:
        assert data["past"] not in rows[key] and data["cancelled"] not in rows[key]
    assert data["both"] not in rows["seminar"] | rows["einzelstunde"]
    # the total is the union: a customer with two categories counts once
    assert rows["total"] == set().union(*(rows[cat] for cat in SERVICE_CATEGORIES))
    assert len(rows["total"]) < sum(len(rows[cat]) for cat in SERVICE_CATEGORIES)


@pytest.mark.parametrize("page", ["/customerview/list/", "/"])
def test_employee_counts_only_own_bookings_customers(client_for, data, world, page):
    rows = numbers_match_lists(client_for("Employee"), page)
    assert data["colleague"] not in rows["total"] and rows["seminar"] == set()
    assert data["both"] in rows["kurs"] and data["both"] in rows["total"]
    assert world.customer2 not in rows["total"]  # booking2 belongs to employee2
    other = numbers_match_lists(client_for("employee2"), page)
    assert data["colleague"] in other["seminar"] and data["both"] not in other["total"]


def test_service_counts_once_and_follows_now(app, data, world):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.services.metrics import active_customer_counts

    with app.test_request_context(), acting_as():
        before = active_customer_counts(db.session, now=FUTURE - timedelta(minutes=1))
        assert before == {"total": 2, "kurs": 1, "gruppe": 1, "seminar": 1, "einzelstunde": 0}
        # one hour on, the 08:00 bookings have started: only the Gruppe booking at 10:00 is left
        later = active_customer_counts(db.session, now=FUTURE + timedelta(hours=1))
        assert later == {"total": 1, "kurs": 0, "gruppe": 1, "seminar": 0, "einzelstunde": 0}
    with app.test_request_context(), acting_as("employee1"):
        own = active_customer_counts(db.session, now=FUTURE - timedelta(minutes=1))
        assert own == {"total": 1, "kurs": 1, "gruppe": 1, "seminar": 0, "einzelstunde": 0}


def test_service_uses_one_statement(app, data, world, statements):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.security import employee_scope
    from app.services.metrics import active_customer_counts

    with app.test_request_context(), acting_as("employee1"):
        assert employee_scope() == world.employee1  # the scope lookup is cached per request
        with statements() as seen:
            active_customer_counts(db.session)
        assert seen.n == 1


@pytest.mark.parametrize("value", ["unbekannt", "", "KURS", "alle'; --"])
def test_bad_filter_values_list_nothing(client_for, data, value):
    response = client_for("Owner").get(f"/customerview/list/?_flt_0_active_category={value}")
    assert response.status_code == 200
    assert not re.findall(r'href="/customerview/show/(\d+)', response.get_data(as_text=True))


def test_bad_filter_index_is_400(client_for, data):
    response = client_for("Owner").get("/customerview/list/?_flt_5_active_category=kurs")
    assert response.status_code == 400


def test_filter_is_offered_in_german_and_export_follows_it(client_for, data):
    owner = client_for("Owner")
    html = owner.get("/customerview/list/").get_data(as_text=True)
    assert "Aktive Kund:innen mit zukünftigem Termin" in html
    assert "aktiv in Kategorie" in html
    export = owner.get("/customerview/export/csv?_flt_0_active_category=gruppe").get_data(as_text=True)
    assert "Both" in export and "Colleague" not in export and "Past" not in export
