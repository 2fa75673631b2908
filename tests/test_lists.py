"""List screens: every menu list answers, speaks German, shows customers with
their emoji marker and times in Berlin time, and costs the same number of SQL
statements whatever the page size (no N+1)."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from markupsafe import escape

from tests.conftest import PASSWORD

N = 30  # rows per table: more than the largest page size compared below
SMALL, LARGE = 5, 25


def menu_views() -> list[type]:
    """The model lists of the menu (pages such as the calendar are no model lists)."""
    from flask_appbuilder import ModelView

    from app.views import MENU

    return [view for view, *_ in MENU if issubclass(view, ModelView)]


def view_instance(app, view_cls):
    return next(v for v in app.appbuilder.baseviews if type(v) is view_cls)


ALL_YEARS = "_flt_1_start_at=2000-01-01+00:00:00"  # the booking list defaults to a window around today


def list_url(app, view_cls, page_size: int | None = None) -> str:
    view = view_instance(app, view_cls)
    url = f"{view.route_base}/list/?" + (f"{ALL_YEARS}&" if view_cls.__name__ == "BookingView" else "")
    return f"{url}psize_{view_cls.__name__}={page_size}" if page_size else url


def shown_ids(app, view_cls, html: str) -> set[str]:
    """Ids of the rows on a list page (each row links to its show page)."""
    route = re.escape(view_instance(app, view_cls).route_base)
    return set(re.findall(rf'href="{route}/show/(\d+)', html))


# --- data: N rows in every listed table, removed again afterwards ---------------
@pytest.fixture(scope="module")
def many(app, world):
    """N rows per listed table, created by the system user. None of them belongs
    to a world employee or customer, so other modules' row-level expectations hold;
    all are deleted at the end of the module."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import (
        Absence,
        BonusProgram,
        BonusTransaction,
        Booking,
        BookingStatus,
        Customer,
        Document,
        Employee,
        ExportFile,
        Invoice,
        InvoiceLine,
        Lens,
        Location,
        NotificationLog,
        PassCard,
        PassCardType,
        Pet,
        Resource,
        Service,
        Setting,
        WorkingHours,
    )

    created: list = []

    def add(*rows):
        db.session.add_all(rows)
        created.extend(rows)

    with app.app_context(), acting_as():
        base = datetime(2029, 1, 8, 8, 0, tzinfo=timezone.utc)
        for i in range(N):
            location = Location(name=f"Liste Filiale {i:02d}", city="Leipzig")
            resource = Resource(name=f"Liste Raum {i:02d}", location=location)
            service = Service(name=f"Liste Dienst {i:02d}", duration_minutes=30 + i, price=Decimal("20.00"),
                              resource=resource)
            employee = Employee(first_name="Liste", last_name=f"Mitarbeiterin {i:02d}", location=location)
            customer = Customer(first_name="Zora", last_name=f"Zz-Liste {i:02d}",
                                emoji_marker="🐕" if i % 2 == 0 else None, email=f"zora{i}@liste.example")
            status = BookingStatus(name=f"Liste Status {i:02d}", kind="neutral", position=1000 + i)
            add(location, resource, service, employee, customer, status)
            add(WorkingHours(employee=employee, weekday=i % 5, start_time=time(8), end_time=time(12)))
            add(Absence(employee=employee, kind="vacation", start_at=base + timedelta(days=i),
                        end_at=base + timedelta(days=i, hours=8)))
            add(Pet(customer=customer, name=f"Liste Hund {i:02d}"))
            add(Document(customer=customer, title=f"Liste Dokument {i:02d}", filename=f"doc{i}.pdf",
                         stored_name=f"liste-{i:02d}", content_type="application/pdf",
                         size_bytes=1000 + i))
            booking = Booking(customer=customer, service=service, employee=employee, resource=resource,
                              status=status, location=location, start_at=base + timedelta(days=i, hours=1))
            add(booking)
            add(NotificationLog(kind="reminder", channel="email", recipient=customer.email, customer=customer,
                                employee=employee, booking=booking, status="sent"))
            card_type = PassCardType(name=f"Liste Karte {i:02d}", units=10, price=Decimal("90.00"))
            add(card_type, PassCard(type=card_type, customer=customer, units_total=10, units_used=i % 10,
                                    price=Decimal("90.00")))
            program = BonusProgram(name=f"Liste Bonus {i:02d}", points_per_euro=Decimal("1.00"), threshold=100,
                                   reward_name="Rabatt", reward_kind="percent", reward_value=Decimal("10.00"))
            add(program, BonusTransaction(customer=customer, program=program, kind="earn", points=10 + i,
                                          reason="Liste"))
            invoice = Invoice(customer=customer, note=f"Liste {i:02d}")
            add(invoice, InvoiceLine(invoice=invoice, description=f"Liste Position {i:02d}",
                                     unit_price=Decimal("10.00"), quantity=Decimal("1.00")))
            add(Lens(name=f"Liste Linse {i:02d}", view_name="BookingView", query_string=""))
            add(Setting(key=f"liste_einstellung_{i:02d}", value=str(i)))
            add(ExportFile(user_id=world.user_owner, view_name="BookingView", format="csv",  # "Meine Exporte"
                           filename=f"liste-{i:02d}.csv"))
        db.session.commit()
        ids = [(type(row), row.id) for row in created]
    yield ids
    with app.app_context(), acting_as():
        for model, pk in reversed(ids):  # children were added after their parents
            row = db.session.get(model, pk)
            if row is not None:
                db.session.delete(row)
        db.session.commit()


@pytest.fixture(scope="module")
def owner_client(app, world, many):
    from tests.conftest import login

    return login(app.test_client(), "owner")


@pytest.fixture(scope="module")
def owner_token(app, world):
    response = app.test_client().post("/api/v1/security/login", json={
        "username": "owner", "password": PASSWORD, "provider": "db", "refresh": False,
    })
    assert response.status_code == 200
    return response.json["access_token"]


# --- no N+1 ------------------------------------------------------------------------
@pytest.mark.parametrize("view_cls", menu_views(), ids=lambda v: v.__name__)
def test_list_statement_count_does_not_grow_with_page_size(app, owner_client, statements, view_cls):
    owner_client.get(list_url(app, view_cls, SMALL))  # warm-up: first-use caches are not the list's cost
    counts, rows = {}, {}
    for size in (SMALL, LARGE):
        with statements() as count:
            response = owner_client.get(list_url(app, view_cls, size))
        assert response.status_code == 200
        counts[size] = count.n
        rows[size] = len(shown_ids(app, view_cls, response.get_data(as_text=True)))
    assert rows == {SMALL: SMALL, LARGE: LARGE}, "the page sizes were not applied — nothing compared"
    assert counts[LARGE] == counts[SMALL], (
        f"{view_cls.__name__}: {counts[SMALL]} statements for {SMALL} rows, {counts[LARGE]} for {LARGE} (N+1)"
    )


@pytest.mark.parametrize("resource", ["booking", "customer"])
def test_api_statement_count_does_not_grow_with_page_size(app, many, owner_token, statements, resource):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {owner_token}"}
    client.get(f"/api/v1/{resource}/?q=(page_size:{SMALL})", headers=headers)
    counts = {}
    for size in (SMALL, LARGE):
        with statements() as count:
            response = client.get(f"/api/v1/{resource}/?q=(page_size:{size})", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        assert len(response.json["result"]) == size
        assert response.json["count"] >= N
        counts[size] = count.n
    assert counts[LARGE] == counts[SMALL], f"/api/v1/{resource}/: {counts} (N+1)"


def test_statement_counter_sees_an_n_plus_1(app, many, statements):
    """The counter would catch an N+1: touching a lazy relation per row costs a statement per row."""
    from app.extensions import db
    from app.models import Booking

    counts = {}
    with app.app_context():
        for size in (SMALL, LARGE):
            db.session.expire_all()
            with statements() as count:
                # one booking per service, so every row's lazy `service` is another statement
                # (the identity map would serve a repeated service without one)
                first_per_service = sa.select(sa.func.min(Booking.id)).group_by(Booking.service_id)
                bookings = db.session.scalars(
                    sa.select(Booking).where(Booking.id.in_(first_per_service)).order_by(Booking.id).limit(size)
                ).all()
                assert len(bookings) == size
                [booking.service.name for booking in bookings]
            counts[size] = count.n
    assert counts[LARGE] > counts[SMALL]


# --- every list answers in German --------------------------------------------------
@pytest.mark.parametrize("view_cls", menu_views(), ids=lambda v: v.__name__)
def test_list_answers_with_german_column_labels(app, owner_client, view_cls):
    response = owner_client.get(list_url(app, view_cls))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    declared = view_cls.label_columns
    for column in view_cls.list_columns:
        assert column in declared, f"{view_cls.__name__}.{column} has no German label"
        assert str(escape(declared[column])) in html, f"{view_cls.__name__}: label {declared[column]!r} not shown"
    assert view_cls.list_title and str(escape(view_cls.list_title)) in html


def test_booking_list_labels(app, owner_client):
    html = owner_client.get(f"/bookingview/list/?{ALL_YEARS}").get_data(as_text=True)
    for label in ("Beginn", "Kund:in", "Dienstleistung", "Mitarbeiter:in", "Status", "Filiale", "Preis"):
        assert label in html
    for english in ("Start At", "Customer", "Employee"):
        assert english not in html


# --- customers with their marker, times in Berlin --------------------------------------
def test_booking_list_shows_marker_and_berlin_time(app, owner_client, world):
    html = owner_client.get(f"/bookingview/list/?psize_BookingView=100&{ALL_YEARS}").get_data(as_text=True)
    assert "⭐ Anna Berg" in html
    # booking1 starts 2030-03-04 09:00 UTC = 10:00 in Berlin (CET)
    assert "04.03.2030 10:00" in html
    assert "04.03.2030 09:00" not in html
    assert "2030-03-04" not in html  # no ISO/UTC leftovers
    # the module's rows: 2029-01-08 09:00 UTC, winter time
    assert "08.01.2029 10:00" in html


def test_summer_times_show_in_cest(app, owner_client, world):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        booking = Booking(customer_id=world.customer1, service_id=world.service,
                          start_at=datetime(2032, 7, 1, 6, 30, tzinfo=timezone.utc), comment="Sommer")
        db.session.add(booking)
        db.session.commit()
        pk = booking.id
    try:
        html = owner_client.get(f"/bookingview/list/?psize_BookingView=10&{ALL_YEARS}").get_data(as_text=True)
        assert "01.07.2032 08:30" in html
        show = owner_client.get(f"/bookingview/show/{pk}").get_data(as_text=True)
        assert "01.07.2032 08:30" in show and "01.07.2032 09:30" in show  # start and end
    finally:
        with app.app_context(), acting_as():
            db.session.delete(db.session.get(Booking, pk))
            db.session.commit()


def test_customer_list_shows_display_name_with_marker(app, owner_client, world):
    html = owner_client.get("/customerview/list/?psize_CustomerView=100").get_data(as_text=True)
    assert "⭐ Anna Berg" in html
    assert "🐕 Zora Zz-Liste 00" in html
    assert "Zora Zz-Liste 01" in html and "🐕 Zora Zz-Liste 01" not in html  # no marker, no emoji


@pytest.mark.parametrize("view_cls_name", [
    "BookingView", "PetView", "DocumentView", "NotificationLogView", "PassCardView", "BonusTransactionView",
    "InvoiceView",
])
def test_every_list_with_a_customer_shows_the_marker(app, owner_client, many, view_cls_name):
    view_cls = next(v for v in menu_views() if v.__name__ == view_cls_name)
    assert "customer" in view_cls.list_columns
    html = owner_client.get(list_url(app, view_cls, 100)).get_data(as_text=True)
    assert "🐕 Zora Zz-Liste 00" in html, f"{view_cls_name} shows the customer without the marker"


def test_psize_is_capped(app, owner_client):
    html = owner_client.get("/customerview/list/?psize_CustomerView=20000").get_data(as_text=True)
    assert len(shown_ids(app, next(v for v in menu_views() if v.__name__ == "CustomerView"), html)) <= 100


def test_a_booking_names_itself_in_berlin_time_with_the_marker(app, world):
    """Where a booking is shown as a related row (redemptions, invoice lines, notifications)."""
    from app.extensions import db
    from app.models import Booking

    with app.app_context():
        assert str(db.session.get(Booking, world.booking1)) == "04.03.2030 10:00 ⭐ Anna Berg"


def test_date_search_takes_business_local_time(app, world, owner_client):
    """A typed-in search time is Berlin wall-clock time (booking1 starts 10:00, booking2 12:00
    local on 2030-03-04); FAB's naive value used to hit the UTC column type as a 500."""
    window = "_flt_1_start_at=2030-03-04+11:30:00&_flt_2_start_at=2030-03-04+13:00:00"
    response = owner_client.get(f"/bookingview/list/?{window}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Bernd Colleague" in html
    assert "Anna Berg" not in html
    earlier = owner_client.get("/bookingview/list/?_flt_1_start_at=2030-03-04+09:30:00"
                               "&_flt_2_start_at=2030-03-04+10:30:00").get_data(as_text=True)
    assert "Anna Berg" in earlier and "Bernd Colleague" not in earlier
