"""The notification log: overall and per customer, read-only, German labels (English
on the switch), filters, row rules (an employee sees only the entries of their own
bookings) and never a message body."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_token, login

LIST = "/notificationlogview/list/"
BULK = 12  # extra rows to compare page sizes


@pytest.fixture(scope="module")
def log(app, world):
    """Entries on the world's bookings; recipients name them. Removed at the end."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import NotificationLog

    t0 = datetime(2030, 3, 1, 10, 0, tzinfo=timezone.utc)
    specs = {
        # name: kind, channel, status, customer, employee, booking, created_at, error
        "own-confirmed": ("booking_confirmed", "email", "sent", "customer1", "employee1", "booking1", t0, None),
        # 22:30 UTC is 23:30 on 3 March in Berlin
        "own-reminder": ("reminder", "sms", "failed", "customer1", "employee1", "booking1",
                         datetime(2030, 3, 3, 22, 30, tzinfo=timezone.utc), "Nummer nicht erreichbar"),
        "colleague-cancelled": ("booking_cancelled", "email", "queued", "customer2", "employee2", "booking2",
                                t0 + timedelta(days=1), None),
        "colleague-on-anna": ("booking_moved", "telegram", "sent", "customer1", "employee2", None,
                              t0 + timedelta(days=1, hours=1), None),
        "unknown-kind": ("legacy_fax", "email", "sent", "customer1", None, None, t0 - timedelta(days=1), None),
    }
    ids = {}
    with app.app_context(), acting_as():
        for name, (kind, channel, status, customer, employee, booking, created, error) in specs.items():
            entry = NotificationLog(
                kind=kind, channel=channel, status=status, recipient=f"{name}@log.example",
                customer_id=getattr(world, customer), employee_id=getattr(world, employee) if employee else None,
                booking_id=getattr(world, booking) if booking else None, created_at=created, error=error,
            )
            db.session.add(entry)
            db.session.flush()
            ids[name] = entry.id
        for i in range(BULK):
            entry = NotificationLog(kind="reminder", channel="email", status="sent", recipient=f"bulk{i}@log.example",
                                    customer_id=world.customer2, employee_id=world.employee2,
                                    booking_id=world.booking2, created_at=t0 - timedelta(days=10, minutes=i))
            db.session.add(entry)
            db.session.flush()
            ids[f"bulk{i}"] = entry.id
        db.session.commit()
    yield ids
    with app.app_context(), acting_as():
        db.session.execute(sa.delete(NotificationLog).where(NotificationLog.id.in_(ids.values())))
        db.session.commit()


def shown(html: str, names=None) -> set[str]:
    names = names or ["own-confirmed", "own-reminder", "colleague-cancelled", "colleague-on-anna", "unknown-kind"]
    return {name for name in names if f"{name}@log.example" in html}


def get(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


# --- the model ---------------------------------------------------------------------
def test_the_log_has_no_column_for_a_message_body():
    from app.models import NotificationLog

    columns = {column.name for column in NotificationLog.__table__.columns}
    assert not columns & {"body", "text", "message", "content", "subject", "html"}
    assert columns >= {"kind", "channel", "recipient", "status", "error", "created_at"}


# --- labels --------------------------------------------------------------------------
def test_every_kind_in_the_code_has_a_german_label(app):
    from app.services.notifications import NOTIFICATION_KINDS, kind_label

    with app.test_request_context():
        assert kind_label("booking_confirmed") == "Buchungsbestätigung"
        assert kind_label("booking_cancelled") == "Absage"
        assert kind_label("booking_moved") == "Terminänderung"
        assert kind_label("reminder") == "Erinnerung"
        assert all(kind_label(kind) != kind for kind in NOTIFICATION_KINDS)
        assert kind_label("legacy_fax") == "Sonstige (legacy_fax)"


def test_overall_list_in_german(owner, log):
    html = get(owner, LIST)
    assert shown(html) == {"own-confirmed", "own-reminder", "colleague-cancelled", "colleague-on-anna",
                           "unknown-kind"}
    for text in ("Zeitpunkt", "Art", "Kanal", "Empfänger", "Kund:in", "Termin", "Ergebnis",
                 "Buchungsbestätigung", "Erinnerung", "Absage", "Terminänderung", "Sonstige (legacy_fax)",
                 "E-Mail", "SMS", "Telegram", "In Warteschlange", "Gesendet", "Fehlgeschlagen",
                 "Nummer nicht erreichbar", "03.03.2030 23:30"):
        assert text in html, text
    assert not re.search(r">\s*(booking_confirmed|reminder|queued|failed)\s*<", html)  # no raw value in a cell


def test_overall_list_in_english_and_back(owner, log):
    assert owner.get("/lang/en").status_code == 302
    try:
        html = get(owner, LIST)
        for text in ("Booking confirmation", "Reminder", "Cancellation", "Appointment change", "Other (legacy_fax)",
                     "Queued", "Sent", "Failed", "Time", "Type", "Channel", "Result"):
            assert text in html, text
        assert "Buchungsbestätigung" not in html
    finally:
        assert owner.get("/lang/de").status_code == 302
    assert "Buchungsbestätigung" in get(owner, LIST)


def test_newest_first(owner, log):
    html = get(owner, LIST)
    positions = [html.index(f"{name}@log.example") for name in
                 ("own-reminder", "colleague-on-anna", "colleague-cancelled", "own-confirmed", "unknown-kind")]
    assert positions == sorted(positions)


def test_failed_entry_shows_its_error_but_a_sent_one_none(owner, log):
    html = get(owner, f"/notificationlogview/show/{log['own-reminder']}")
    assert "Fehlgeschlagen" in html and "Nummer nicht erreichbar" in html
    html = get(owner, f"/notificationlogview/show/{log['own-confirmed']}")
    assert "Gesendet" in html and "Nummer nicht erreichbar" not in html


def test_booking_column_links_to_the_booking(owner, world, log):
    html = get(owner, LIST)
    assert f'href="/bookingview/show/{world.booking1}"' in html


# --- filters -------------------------------------------------------------------------
def test_filter_by_kind(owner, log):
    assert shown(get(owner, f"{LIST}?_flt_0_kind=reminder")) == {"own-reminder"}
    assert shown(get(owner, f"{LIST}?_flt_0_kind=booking_moved")) == {"colleague-on-anna"}
    assert shown(get(owner, f"{LIST}?_flt_0_kind=nothing_like_it")) == set()


def test_filter_by_status_and_channel(owner, log):
    assert shown(get(owner, f"{LIST}?_flt_0_status=failed")) == {"own-reminder"}
    assert shown(get(owner, f"{LIST}?_flt_0_status=queued")) == {"colleague-cancelled"}
    assert shown(get(owner, f"{LIST}?_flt_0_channel=telegram")) == {"colleague-on-anna"}


def test_filter_by_business_local_date_range(owner, log):
    # from 3 March 23:00 Berlin (22:00 UTC) to 4 March: only the reminder at 23:30 Berlin
    url = f"{LIST}?_flt_1_created_at=2030-03-03+23:00:00&_flt_2_created_at=2030-03-04+00:00:00"
    assert shown(get(owner, url)) == {"own-reminder"}
    # from 3 March 23:45 Berlin the reminder (23:30 Berlin) is out, though 22:30 UTC would be "after 23:45" nowhere
    url = f"{LIST}?_flt_1_created_at=2030-03-03+23:45:00&_flt_2_created_at=2030-03-04+00:00:00"
    assert shown(get(owner, url)) == set()


def test_filter_by_customer_name(owner, log):
    assert shown(get(owner, f"{LIST}?_flt_0_customer_name=berg")) == {
        "own-confirmed", "own-reminder", "colleague-on-anna", "unknown-kind"}
    assert shown(get(owner, f"{LIST}?_flt_0_customer_name=colleague")) == {"colleague-cancelled"}
    assert shown(get(owner, f"{LIST}?_flt_0_customer_name=niemand")) == set()


def test_bad_filter_index_is_refused(owner, log):
    assert owner.get(f"{LIST}?_flt_7_kind=reminder").status_code == 400


# --- row rules -----------------------------------------------------------------------
def test_employee_sees_only_own_bookings_entries(employee, log):
    assert shown(get(employee, LIST)) == {"own-confirmed", "own-reminder"}


def test_colleague_sees_only_hers(client_for, log):
    assert shown(get(client_for("employee2"), LIST)) == {"colleague-cancelled", "colleague-on-anna"}


def test_employee_cannot_open_a_colleagues_entry(employee, log):
    assert employee.get(f"/notificationlogview/show/{log['own-confirmed']}").status_code == 200
    for name in ("colleague-cancelled", "colleague-on-anna", "unknown-kind"):
        assert employee.get(f"/notificationlogview/show/{log[name]}").status_code == 404, name


def test_customer_tab_follows_the_row_rules(owner, employee, world, log):
    url = f"/customerview/show/{world.customer1}"
    assert shown(get(owner, url)) == {"own-confirmed", "own-reminder", "colleague-on-anna", "unknown-kind"}
    assert shown(get(employee, url)) == {"own-confirmed", "own-reminder"}


def test_customer_tab_is_newest_first_and_holds_only_that_customer(owner, world, log):
    html = get(owner, f"/customerview/show/{world.customer1}")
    assert "Benachrichtigungen" in html
    assert "colleague-cancelled@log.example" not in html
    assert html.index("own-reminder@log.example") < html.index("colleague-on-anna@log.example") \
        < html.index("own-confirmed@log.example") < html.index("unknown-kind@log.example")


def test_customer_tabs_in_the_order_of_the_customer_file(app):
    from app.views.customers import CustomerView

    names = [view.__name__ for view in CustomerView.related_views]
    assert names == ["BookingView", "PassCardView", "PetView", "BonusTransactionView", "InvoiceView",
                     "DocumentView", "NotificationLogView"]


def test_viewer_has_no_access(viewer, log):
    assert viewer.get(LIST).status_code in (302, 403)


# --- read-only -----------------------------------------------------------------------
def test_no_write_permissions_exist(app):
    from app.views.notifications import NotificationLogView

    view = next(v for v in app.appbuilder.baseviews if type(v) is NotificationLogView)
    assert set(view.base_permissions) == {"can_list", "can_show"}
    with app.app_context():
        perms = {p.action.name for p in app.appbuilder.sm.get_all_permissions()
                 if p.view_menu.name == "NotificationLogView"} if hasattr(app.appbuilder.sm, "get_all_permissions") \
            else None
    if perms is not None:
        assert perms <= {"can_list", "can_show"}


def test_owner_cannot_add_edit_or_delete(app, owner, log):
    from app.extensions import db
    from app.models import NotificationLog

    pk = log["own-confirmed"]
    token = csrf_token(owner, "/customerview/add")  # a valid token: CSRF is not what stops these
    with app.app_context():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(NotificationLog))
    for method, url in (("get", "/notificationlogview/add"), ("post", "/notificationlogview/add"),
                        ("get", f"/notificationlogview/edit/{pk}"), ("post", f"/notificationlogview/edit/{pk}"),
                        ("get", f"/notificationlogview/delete/{pk}"), ("post", f"/notificationlogview/delete/{pk}")):
        response = getattr(owner, method)(url, data={"recipient": "changed@log.example", "csrf_token": token})
        assert response.status_code in (302, 403, 404, 405), (method, url)
    with app.app_context():
        entry = db.session.get(NotificationLog, pk)
        assert entry is not None and entry.recipient == "own-confirmed@log.example"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(NotificationLog)) == before


# --- cost ------------------------------------------------------------------------------
def test_statement_count_does_not_grow_with_page_size(app, world, log, statements):
    client = login(app.test_client(), "owner")
    client.get(f"{LIST}?psize_NotificationLogView=3")
    counts = {}
    for size in (3, 15):
        with statements() as count:
            html = get(client, f"{LIST}?psize_NotificationLogView={size}")
        counts[size] = count.n
        assert len(set(re.findall(r"[\w-]+@log\.example", html))) == size, "page size not applied"
    assert counts[3] == counts[15], counts
