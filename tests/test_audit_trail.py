"""Audit trail UI: the "Verlauf" tab, revert, Gelöschte Einträge with restore, and
the retention purge — through the real screens, on the real database."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import count

import pytest
import sqlalchemy as sa

from tests.helpers_perm import html, session_csrf
from tests.test_validation import form_values

# Each test books its own day (2032, weekdays), so tests never collide with each other or the world.
_DAYS = count()
OVERLAP = "überschneidet sich mit einem anderen Termin"
REVERT_FORM = re.compile(
    r'<form method="post" action="/history/revert/">.*?name="version" value="(\d+)"', re.S)


def next_day(hour: int = 9) -> datetime:
    day = datetime(2032, 3, 1, tzinfo=timezone.utc) + timedelta(days=next(_DAYS))
    while day.weekday() >= 5:
        day += timedelta(days=1)
        next(_DAYS)
    return day.replace(hour=hour)


def make_booking(app, world, start: datetime, comment: str = "Verlaufstest", employee=None, customer=None) -> int:
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        booking = Booking(customer_id=customer or world.customer1, service_id=world.service,
                          employee_id=employee or world.employee1, start_at=start, comment=comment,
                          reminder=True)  # set, not derived (customer1 gave no consent)
        db.session.add(booking)
        db.session.commit()
        return booking.id


def change(app, model, pk: int, username: str = "manager", **values) -> int:
    """Change a row as `username` (a Continuum transaction of that user); returns the transaction id."""
    from sqlalchemy_continuum import version_class

    from app.extensions import db
    from app.jobs.base import acting_as

    with app.app_context(), acting_as(username):
        row = db.session.get(model, pk)
        for key, value in values.items():
            setattr(row, key, value)
        db.session.commit()
        cls = version_class(model)
        return db.session.scalar(sa.select(sa.func.max(cls.transaction_id)).where(cls.id == pk))


def versions(app, model, pk: int) -> list[tuple[int, int, int | None]]:
    """(transaction id, operation type, user id) of the row's versions, oldest first."""
    from sqlalchemy_continuum import transaction_class, version_class

    from app.extensions import db

    cls, tx = version_class(model), transaction_class(model)
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            sa.select(cls.transaction_id, cls.operation_type, tx.user_id)
            .join(tx, tx.id == cls.transaction_id).where(cls.id == pk).order_by(cls.transaction_id))]


def row(app, model, pk: int):
    from app.extensions import db

    with app.app_context():
        item = db.session.get(model, pk)
        return None if item is None else {c.key: getattr(item, c.key) for c in sa.inspect(model).columns}


def verlauf(response) -> str:
    page = html(response)
    assert response.status_code == 200
    assert 'id="Verlauf"' in page, "no Verlauf tab"
    return page.split('id="Verlauf"', 1)[1]


def post(client, url: str, **data):
    return client.post(url, data={**data, "csrf_token": session_csrf(client)})


def delete_via_form(client, view: str, pk: int) -> None:
    response = post(client, f"/{view}/delete/{pk}")
    assert response.status_code == 302


@pytest.fixture()
def retention(app):
    """Set history_retention_days for a test; back to empty (keep forever) afterwards."""
    from app.extensions import db
    from app.models import Setting

    def set_value(value: str) -> None:
        with app.app_context():
            db.session.execute(sa.update(Setting).where(Setting.key == "history_retention_days").values(value=value))
            db.session.commit()

    yield set_value
    set_value("")


def age_transactions(app, tx_ids, days: int) -> None:
    from sqlalchemy_continuum import versioning_manager

    from app.extensions import db

    tx = versioning_manager.transaction_cls
    old = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days)
    with app.app_context():
        db.session.execute(sa.update(tx).where(tx.id.in_(list(tx_ids))).values(issued_at=old))
        db.session.commit()


# --- Verlauf ----------------------------------------------------------------------------------------------------
def test_verlauf_shows_who_when_and_old_to_new_with_german_labels(app, world, client_for):
    from app.formatting import fmt_datetime, to_local

    start = next_day()
    pk = make_booking(app, world, start, comment="alter Kommentar")
    manager = client_for("Manager")
    edit_url = f"/bookingview/edit/{pk}"
    data = form_values(html(manager.get(edit_url)), "comment")
    assert data["comment"] == "alter Kommentar"
    data.update(comment="neuer Kommentar", price="50.00")
    response = manager.post(edit_url, data=data)
    assert response.status_code == 302, html(response)[:2000]

    pane = verlauf(client_for("Owner").get(f"/bookingview/show/{pk}"))
    rows = pane.split('class="tb-version"')[1:]
    assert len(rows) == 2, "one version for the create, one for the edit"
    newest, first = rows
    assert "Manager Test" in newest and "geändert" in newest
    assert "Kommentar:</strong> alter Kommentar → neuer Kommentar" in newest
    assert "Preis:</strong> 45,00 € → 50,00 €" in newest
    assert "Beginn" not in newest, "unchanged fields are not listed"
    with app.app_context():
        assert to_local(datetime.now(timezone.utc)).strftime("%d.%m.%Y") in newest
    assert "System" in first and "angelegt" in first
    assert "Mitarbeiter:in:</strong> – → Eva Eins" in first, "a foreign key shows the related row"
    with app.app_context():
        assert f"Beginn:</strong> – → {fmt_datetime(start)}" in first, "business-local time"
    assert "Erinnerung:</strong> – → Ja" in first
    assert "Quelle:</strong> – → Büro" in first, "a stored choice shows its German name"
    assert "customer_id" not in pane and "employee_id" not in pane, "German labels, not column names"


CHANGE = re.compile(r"<li><strong>(.*?):</strong> (.*?) → (.*?)</li>", re.S)


def version_rows(pane: str) -> list[str]:
    return pane.split('class="tb-version"')[1:]


def changes_of(version_row: str) -> dict[str, tuple[str, str]]:
    return {label: (old.strip(), new.strip()) for label, old, new in CHANGE.findall(version_row)}


def no_column_names(app, model, pane: str) -> None:
    from app.services.history import data_columns

    with app.app_context():
        raw = [key for key in data_columns(model) if f"<strong>{key}:" in pane]
    assert not raw, f"column names instead of labels: {raw}"


def status_named(app, kind: str) -> tuple[int, str]:
    from app.extensions import db
    from app.models import BookingStatus

    with app.app_context():
        status = db.session.scalars(sa.select(BookingStatus).where(BookingStatus.kind == kind)
                                    .order_by(BookingStatus.position)).first()
        return status.id, status.name


def test_booking_verlauf_labels_every_field_in_german_and_english(app, world, client_for):
    from app.models import Booking

    pk = make_booking(app, world, next_day(10), comment="Etiketten")
    with app.app_context():
        from app.extensions import db

        before = db.session.get(Booking, pk).status.name
    cancel_id, cancel_name = status_named(app, "cancellation")
    change(app, Booking, pk, status_id=cancel_id, cancel_reason="krank")
    with app.app_context():
        from app.extensions import db

        assert db.session.get(Booking, pk).cancelled is True, "the derived column did change"

    owner = client_for("Owner")
    pane = verlauf(owner.get(f"/bookingview/show/{pk}"))
    no_column_names(app, Booking, pane)
    newest, first = version_rows(pane)
    assert changes_of(newest) == {"Status": (before, cancel_name), "Absagegrund": ("–", "krank")}, \
        "a foreign key by its relation's label and the status name; `cancelled` is hidden"
    created = changes_of(first)
    assert {"Kund:in", "Dienstleistung", "Mitarbeiter:in", "Status", "Beginn", "Ende", "Preis", "Quelle",
            "Erinnerung", "Kommentar"} <= set(created)
    assert created["Kund:in"][1].endswith("Anna Berg") and created["Quelle"] == ("–", "Büro")
    assert "cancelled" not in pane and "shared_slot" not in pane

    assert owner.get("/lang/en").status_code == 302
    pane = verlauf(owner.get(f"/bookingview/show/{pk}"))
    no_column_names(app, Booking, pane)
    newest, first = version_rows(pane)
    assert set(changes_of(newest)) == {"Status", "Cancellation reason"}
    created = changes_of(first)
    assert {"Customer", "Service", "Employee", "Status", "Price", "Source", "Reminder", "Comment"} <= set(created)
    assert created["Source"] == ("–", "Back office") and created["Price"][1] == "45,00 €"
    assert "created" in first and "changed" in newest


def make_customer(app, **values) -> int:
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context(), acting_as("manager"):
        customer = Customer(first_name="Gerda", last_name="Geo", **values)
        db.session.add(customer)
        db.session.commit()
        return customer.id


def test_customer_verlauf_labels_every_field_in_german_and_english(app, world, client_for):
    from app.models import Customer

    pk = make_customer(app, street="Hauptstraße 1", city="Berlin", phone="030 123", notes="ruhig",
                       email=f"gerda{next(_DAYS)}@example.org", lat=52.5, lon=13.4,
                       geocoded_at=datetime(2032, 1, 2, 12, tzinfo=timezone.utc))
    change(app, Customer, pk, lat=48.1, city="München")

    owner = client_for("Owner")
    pane = verlauf(owner.get(f"/customerview/show/{pk}"))
    no_column_names(app, Customer, pane)
    newest, first = version_rows(pane)
    assert changes_of(newest) == {"Breitengrad": ("52.5", "48.1"), "Ort": ("Berlin", "München")}
    created = changes_of(first)
    assert created["Angelegt von"] == ("–", "Manager Test"), "the user's name, not the id"
    assert created["Längengrad"] == ("–", "13.4") and "Geokodiert am" in created
    assert {"Vorname", "Nachname", "E-Mail", "Telefon", "Straße", "Ort", "Land", "Notizen"} <= set(created)

    assert owner.get("/lang/en").status_code == 302
    pane = verlauf(owner.get(f"/customerview/show/{pk}"))
    no_column_names(app, Customer, pane)
    newest, first = version_rows(pane)
    assert set(changes_of(newest)) == {"Latitude", "City"}
    created = changes_of(first)
    assert created["Created by"] == ("–", "Manager Test")
    assert {"First name", "Email", "Phone", "Street", "City", "Country", "Notes", "Longitude", "Geocoded at"} \
        <= set(created)


def test_verlauf_labels_of_every_history_view_come_from_the_view_or_the_history_service(app):
    """No versioned column of any model with a detail page falls back to its name, in either language."""
    from flask_babel import force_locale

    import app.models as models
    from app.models import Booking
    from app.services.history import field_label, foreign_keys, shown_columns
    from app.views.history import show_view_for
    from tests.test_versioning import UNVERSIONED

    with app.test_request_context():
        for name in sorted(set(models.__all__) - set(UNVERSIONED)):
            model = getattr(models, name)
            view = show_view_for(app.appbuilder, model)
            if view is None:
                continue
            for locale in ("de", "en"):
                with force_locale(locale):
                    labels = view.history_labels()
                    raw = [key for key in shown_columns(model) if field_label(labels, key, foreign_keys(model)) == key]
                    assert not raw, (model.__name__, locale, raw)
        assert "cancelled" not in shown_columns(Booking) and "shared_slot" not in shown_columns(Booking)


def test_customer_detail_page_has_verlauf_and_its_related_lists(app, world, client_for):
    page = html(client_for("Owner").get(f"/customerview/show/{world.customer2}"))
    assert 'id="Verlauf"' in page
    assert "Bello" in page, "the related lists of the cascade layout are still shown"


def test_verlauf_costs_the_same_queries_for_few_and_many_versions(app, world, client_for, statements):
    from app.models import Booking

    owner = client_for("Owner")
    pk = make_booking(app, world, next_day())
    for n in range(2):
        change(app, Booking, pk, comment=f"Änderung {n}")
    owner.get(f"/bookingview/show/{pk}")
    with statements() as few:
        owner.get(f"/bookingview/show/{pk}")
    for n in range(12):
        change(app, Booking, pk, comment=f"Weitere Änderung {n}", price=Decimal(40 + n))
    with statements() as many:
        page = verlauf(owner.get(f"/bookingview/show/{pk}"))
    assert page.count('class="tb-version"') == 15
    assert many.n == few.n


def test_verlauf_is_bounded_with_a_link_to_older_versions(app, world, client_for):
    from app.models import Booking
    from app.views.history import HistoryMixin

    pk = make_booking(app, world, next_day())
    limit = HistoryMixin.history_limit
    for n in range(limit):
        change(app, Booking, pk, comment=f"Stand {n}")
    owner = client_for("Owner")
    pane = verlauf(owner.get(f"/bookingview/show/{pk}"))
    assert pane.count('class="tb-version"') == limit
    older = re.search(r'href="\?history_before=(\d+)"', pane)
    assert older, "no link to older versions"
    pane = verlauf(owner.get(f"/bookingview/show/{pk}?history_before={older.group(1)}"))
    assert pane.count('class="tb-version"') == 1 and "angelegt" in pane
    assert "history_before" not in pane.split("</table>")[1]


def test_employee_never_sees_a_colleagues_booking_history(app, world, client_for):
    employee = client_for("Employee")
    assert employee.get(f"/bookingview/show/{world.booking2}").status_code == 404
    assert employee.get(f"/bookingview/show/{world.booking2}?history_before=999999999").status_code == 404
    response = post(employee, "/history/revert/", view="BookingView", pk=world.booking2, version=1)
    assert response.status_code == 403
    assert employee.get("/history/list/").status_code == 403
    own = verlauf(employee.get(f"/bookingview/show/{world.booking1}"))
    assert "tb-version" in own
    assert "Auf diesen Stand zurücksetzen" not in own, "only the Owner reverts"


def test_verlauf_of_an_own_booking_names_no_row_the_employee_may_not_see(app, world, client_for):
    from app.models import Booking

    pk = make_booking(app, world, next_day(), customer=world.customer2)
    change(app, Booking, pk, customer_id=world.customer1)
    pane = verlauf(client_for("Employee").get(f"/bookingview/show/{pk}"))
    assert f"Kund:in:</strong> #{world.customer2} → ⭐ Anna Berg" in pane
    assert "Bernd" not in pane, "the colleague's customer stays hidden"
    assert "Bernd Colleague" in verlauf(client_for("Manager").get(f"/bookingview/show/{pk}"))


# --- revert -----------------------------------------------------------------------------------------------------
def test_owner_reverts_to_an_earlier_version_and_the_revert_is_versioned(app, world, client_for):
    from app.models import Booking

    pk = make_booking(app, world, next_day(), comment="ursprünglich")
    change(app, Booking, pk, comment="geändert vom Manager", price=Decimal("60.00"))
    owner = client_for("Owner")
    forms = REVERT_FORM.findall(verlauf(owner.get(f"/bookingview/show/{pk}")))
    first_tx = versions(app, Booking, pk)[0][0]
    assert [int(tx) for tx in forms] == [first_tx], "a revert button on every version but the current one"

    response = post(owner, "/history/revert/", view="BookingView", pk=pk, version=first_tx)
    page = html(response)
    assert response.status_code == 200 and "Zurücksetzen bestätigen" in page
    assert "geändert vom Manager" in page and "ursprünglich" in page and "60,00 €" in page
    assert row(app, Booking, pk)["comment"] == "geändert vom Manager", "the confirmation step changes nothing"

    response = owner.post("/history/revert/", data={"view": "BookingView", "pk": pk, "version": first_tx,
                                                    "confirm": "1"})
    assert response.status_code == 400, "no CSRF token: refused"
    assert row(app, Booking, pk)["comment"] == "geändert vom Manager"

    before = len(versions(app, Booking, pk))
    response = post(owner, "/history/revert/", view="BookingView", pk=pk, version=first_tx, confirm="1")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/bookingview/show/{pk}")
    stored = row(app, Booking, pk)
    assert stored["comment"] == "ursprünglich" and stored["price"] == Decimal("45.00")
    history = versions(app, Booking, pk)
    assert len(history) == before + 1
    assert history[-1][1:] == (1, world.user_owner), "the revert is an update by the Owner"
    pane = verlauf(owner.get(f"/bookingview/show/{pk}"))
    assert "Owner Test" in pane.split('class="tb-version"')[1]


def test_revert_of_a_booking_into_an_overlap_is_refused_and_stores_nothing(app, world, client_for):
    from app.models import Booking

    start = next_day(10)
    pk = make_booking(app, world, start)
    first_tx = versions(app, Booking, pk)[0][0]
    change(app, Booking, pk, start_at=start + timedelta(hours=3), end_at=start + timedelta(hours=4))
    make_booking(app, world, start, comment="belegt jetzt den alten Platz")
    before, history = row(app, Booking, pk), versions(app, Booking, pk)

    response = post(client_for("Owner"), "/history/revert/", view="BookingView", pk=pk, version=first_tx,
                    confirm="1")
    assert response.status_code == 200
    assert f"{OVERLAP} von Eva Eins." in html(response)
    assert row(app, Booking, pk) == before
    assert versions(app, Booking, pk) == history


def test_revert_answers_404_for_versions_of_other_rows_and_a_page_for_an_empty_form(app, world, client_for):
    from app.models import Booking

    owner = client_for("Owner")
    other_tx = versions(app, Booking, make_booking(app, world, next_day()))[0][0]
    response = post(owner, "/history/revert/", view="BookingView", pk=world.booking1, version=other_tx)
    assert response.status_code == 404
    assert post(owner, "/history/revert/", view="NoSuchView", pk=1, version=1).status_code == 200
    response = post(owner, "/history/revert/")
    assert response.status_code == 200 and "Bitte eine Version wählen." in html(response)


@pytest.mark.parametrize("role", ["Manager", "Employee", "Viewer"])
def test_only_the_owner_reverts_restores_purges_or_sees_deleted_entries(app, world, client_for, role):
    from app.models import Booking

    client = client_for(role)
    tx = versions(app, Booking, world.booking1)[0][0]
    assert client.get("/history/list/").status_code == 403
    assert post(client, "/history/revert/", view="BookingView", pk=world.booking1, version=tx,
                confirm="1").status_code == 403
    assert post(client, "/history/restore/", kind="booking", pk=world.booking1, confirm="1").status_code == 403
    assert post(client, "/history/purge/", confirm="1").status_code == 403
    assert "/history/list/" not in html(client.get("/"))


def revert_offers(pane: str) -> list[int]:
    return [int(tx) for tx in REVERT_FORM.findall(pane)]


def test_restored_row_says_wiederhergestellt_and_every_older_version_offers_revert(app, world, client_for):
    from app.models import Booking

    pk = make_booking(app, world, next_day(15), comment="vor dem Löschen")
    change(app, Booking, pk, comment="geändert vor dem Löschen")
    delete_via_form(client_for("Manager"), "bookingview", pk)
    owner = client_for("Owner")
    assert post(owner, "/history/restore/", kind="booking", pk=pk, confirm="1").status_code == 302
    change(app, Booking, pk, comment="nach der Wiederherstellung")
    txs = [tx for tx, _op, _user in versions(app, Booking, pk)][::-1]  # newest first

    pane = verlauf(owner.get(f"/bookingview/show/{pk}"))
    rows = version_rows(pane)
    operations = [re.findall(r"<td>(angelegt|geändert|gelöscht|wiederhergestellt)</td>", r)[0] for r in rows]
    assert operations == ["geändert", "wiederhergestellt", "gelöscht", "geändert", "angelegt"]
    assert "Owner Test" in rows[1], "the restore is recorded for the restorer"
    assert revert_offers(pane) == [txs[1], txs[3], txs[4]], \
        "every version but the current state and the delete offers the revert"
    assert revert_offers(verlauf(client_for("Manager").get(f"/bookingview/show/{pk}"))) == [], "Owner only"

    # on the page of older versions none of them is the current state
    pane = verlauf(owner.get(f"/bookingview/show/{pk}?history_before={txs[0]}"))
    assert revert_offers(pane) == [txs[1], txs[3], txs[4]]
    pane = verlauf(owner.get(f"/bookingview/show/{pk}?history_before={txs[1]}"))
    assert revert_offers(pane) == [txs[3], txs[4]]

    response = post(owner, "/history/revert/", view="BookingView", pk=pk, version=txs[3], confirm="1")
    assert response.status_code == 302
    assert row(app, Booking, pk)["comment"] == "geändert vor dem Löschen"


def test_revert_preview_uses_the_labels_and_hides_derived_columns(app, world, client_for):
    from app.models import Booking

    pk = make_booking(app, world, next_day(16))
    first = versions(app, Booking, pk)[0][0]
    cancel_id, cancel_name = status_named(app, "cancellation")
    change(app, Booking, pk, status_id=cancel_id, cancel_reason="Urlaub", source="online")
    page = html(post(client_for("Owner"), "/history/revert/", view="BookingView", pk=pk, version=first))
    table = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = {label: (now, then) for label, now, then in
            re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table)}
    assert set(rows) == {"Status", "Absagegrund", "Quelle"}, "no `cancelled`, no column names"
    assert rows["Status"][0] == cancel_name and rows["Quelle"] == ("Online", "Büro")


# --- detail page tabs -------------------------------------------------------------------------------------------
TAB_SCRIPT = re.compile(r'<script nonce="[^"]*" class="tb-tab-choice">(.*?)</script>', re.S)
TAB_HARNESS = r"""
const script = require("fs").readFileSync(0, "utf8");
const cases = JSON.parse(process.argv[1]);
const out = cases.map(([hash, search, hrefs]) => {
  let shown = null, replaced = null, handler = null;
  const tabs = hrefs.map((href) => ({href}));
  const wrap = (list) => ({
    length: list.length,
    filter(fn) { return wrap(list.filter((el) => fn.call(el))); },
    tab() { shown = list[0].href; },
    on(event, fn) { handler = fn; },
    attr() { return list[0].href; },
  });
  global.$ = (arg) => typeof arg === "function" ? arg() : wrap(typeof arg === "object" ? [arg] : tabs);
  global.location = {hash, search, pathname: "/x/show/1"};
  global.history = {replaceState(state, title, url) { replaced = url; }};
  eval(script);
  handler.call(tabs[tabs.length - 1]);
  return [shown, replaced];
});
console.log(JSON.stringify(out));
"""


def test_detail_page_opens_on_detail_unless_the_url_names_a_tab(app, world, client_for):
    import json
    import subprocess

    owner = client_for("Owner")
    page = html(owner.get(f"/bookingview/show/{world.booking1}"))
    assert "ab_keep_tab.js" not in page, "FAB's script remembers the last tab for every page"
    assert '<li class="active"><a href="#Home"' in page and 'id="Home" class="tab-pane active"' in page
    assert 'id="status-aendern"' in page.split('id="Home"', 1)[1].split('id="Verlauf"', 1)[0]
    older = html(owner.get(f"/bookingview/show/{world.booking1}?history_before=999999999"))
    assert '<li class="active"><a href="#Verlauf"' in older, "paging the Verlauf stays on it"

    script = TAB_SCRIPT.search(page).group(1)
    tabs = ["#Home", "#InvoiceLineView", "#Verlauf"]
    cases = [
        ["", "", tabs],                                      # nothing asked: Detail (the server's default)
        ["#Verlauf", "", tabs],                              # a link or reload with #Verlauf
        ["", "?page_InvoiceLineView=1&psize_InvoiceLineView=25", tabs],  # related-list paging
        ["", "?_oc_InvoiceLineView=price&_od_InvoiceLineView=asc", tabs],  # related-list ordering
        ["#Unbekannt", "?page_Fremd=1", tabs],               # unknown tabs are ignored
        ['#Verlauf"]', "", tabs],                            # no selector injection
    ]
    result = subprocess.run(["node", "-e", TAB_HARNESS, json.dumps(cases)], input=script, capture_output=True,
                            text=True, timeout=30, check=True)
    shown = json.loads(result.stdout)
    assert [tab for tab, _url in shown] == [None, "#Verlauf", "#InvoiceLineView", "#InvoiceLineView", None, None]
    assert [url for _tab, url in shown] == [f"/x/show/1{search}#Verlauf" for _hash, search, _tabs in cases], \
        "a click keeps the tab in the URL"


def test_booking_detail_shows_the_source_by_its_name(app, world, client_for):
    from app.models import Booking

    pk = make_booking(app, world, next_day(11))
    change(app, Booking, pk, source="online")
    page = html(client_for("Manager").get(f"/bookingview/show/{pk}"))
    home = page.split('id="Home"', 1)[1].split('id="Verlauf"', 1)[0]
    assert "Online" in home and ">online<" not in home
    owner = client_for("Owner")
    assert owner.get("/lang/en").status_code == 302
    change(app, Booking, pk, source="backoffice")
    home = html(owner.get(f"/bookingview/show/{pk}")).split('id="Home"', 1)[1].split('id="Verlauf"', 1)[0]
    assert "Back office" in home and "backoffice" not in home

# --- Gelöschte Einträge ------------------------------------------------------------------------------------------
def test_deleted_booking_is_listed_and_restored_with_the_same_id(app, world, client_for):
    from app.models import Booking

    start = next_day(13)
    pk = make_booking(app, world, start, comment="wird gelöscht")
    change(app, Booking, pk, comment="zuletzt so", price=Decimal("42.50"))
    before = row(app, Booking, pk)
    delete_via_form(client_for("Manager"), "bookingview", pk)
    assert row(app, Booking, pk) is None

    owner = client_for("Owner")
    page = html(owner.get("/history/list/"))
    entry = page.split(f'data-kind="booking" data-id="{pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Manager Test" in entry and "Anna Berg" in entry and "Einzelstunde 60" in entry
    from app.formatting import fmt_datetime

    with app.app_context():
        assert fmt_datetime(start) in entry, "the local start time"

    response = post(owner, "/history/restore/", kind="booking", pk=pk)
    assert response.status_code == 200 and "Wiederherstellen bestätigen" in html(response)
    assert row(app, Booking, pk) is None, "the confirmation step restores nothing"

    response = post(owner, "/history/restore/", kind="booking", pk=pk, confirm="1")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/bookingview/show/{pk}")
    assert row(app, Booking, pk) == before
    assert versions(app, Booking, pk)[-1][1:] == (0, world.user_owner), "recorded as a new version of the Owner"
    assert f'data-id="{pk}"' not in html(owner.get("/history/list/"))
    assert post(owner, "/history/restore/", kind="booking", pk=pk, confirm="1").status_code == 404


def test_booking_restore_into_an_overlap_is_refused_and_stores_nothing(app, world, client_for):
    from app.models import Booking

    start = next_day(14)
    pk = make_booking(app, world, start)
    delete_via_form(client_for("Manager"), "bookingview", pk)
    make_booking(app, world, start + timedelta(minutes=30), comment="hat den Platz bekommen")
    history = versions(app, Booking, pk)

    response = post(client_for("Owner"), "/history/restore/", kind="booking", pk=pk, confirm="1")
    assert response.status_code == 200
    assert f"{OVERLAP} von Eva Eins." in html(response)
    assert row(app, Booking, pk) is None
    assert versions(app, Booking, pk) == history


def test_booking_restore_is_refused_when_its_customer_is_gone(app, world, client_for):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, Customer

    with app.app_context(), acting_as():
        customer = Customer(first_name="Gerda", last_name="Gegangen")
        db.session.add(customer)
        db.session.commit()
        customer_id = customer.id
    pk = make_booking(app, world, next_day(), customer=customer_id)
    manager = client_for("Manager")
    delete_via_form(manager, "bookingview", pk)
    delete_via_form(manager, "customerview", customer_id)

    owner = client_for("Owner")
    entry = html(owner.get("/history/list/")).split(f'data-kind="booking" data-id="{pk}"', 1)[1]
    assert "Gerda Gegangen (gelöscht)" in entry.split("</tr>", 1)[0]
    response = post(owner, "/history/restore/", kind="booking", pk=pk, confirm="1")
    assert response.status_code == 200
    assert "die Kund:in oder die Dienstleistung gibt es nicht mehr" in html(response)
    assert row(app, Booking, pk) is None


def test_deleted_customer_comes_back_with_its_pets(app, world, client_for):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer, Pet

    with app.app_context(), acting_as():
        customer = Customer(first_name="Rita", last_name="Rückkehr", email="rita@example.org", city="Köln")
        pet = Pet(customer=customer, name="Struppi", breed="Terrier")
        db.session.add_all([customer, pet])
        db.session.commit()
        customer_id, pet_id = customer.id, pet.id
    before = row(app, Customer, customer_id)
    delete_via_form(client_for("Manager"), "customerview", customer_id)
    assert row(app, Customer, customer_id) is None

    owner = client_for("Owner")
    entry = html(owner.get("/history/list/")).split(f'data-kind="customer" data-id="{customer_id}"', 1)[1]
    assert "Rita Rückkehr" in entry.split("</tr>", 1)[0]
    page = html(post(owner, "/history/restore/", kind="customer", pk=customer_id))
    assert "Hunde" in page and "Dokumente nicht" in page
    response = post(owner, "/history/restore/", kind="customer", pk=customer_id, confirm="1")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/customerview/show/{customer_id}")
    assert row(app, Customer, customer_id) == before
    assert row(app, Pet, pet_id)["name"] == "Struppi"
    assert versions(app, Customer, customer_id)[-1][1:] == (0, world.user_owner)
    # the pet was deleted with its customer by the ORM (a version by the manager, not a silent
    # database cascade) and is recreated by the Owner — the same on SQLite and PostgreSQL
    pet_versions = [version[1:] for version in versions(app, Pet, pet_id)[-2:]]
    assert pet_versions == [(2, world.user_manager), (0, world.user_owner)]


def test_restore_with_an_empty_or_unknown_choice(app, world, client_for):
    owner = client_for("Owner")
    response = post(owner, "/history/restore/")
    assert response.status_code == 200 and "Bitte einen gelöschten Eintrag wählen." in html(response)
    assert post(owner, "/history/restore/", kind="booking", pk=world.booking1).status_code == 404
    assert post(owner, "/history/restore/", kind="booking", pk=987654321).status_code == 404


# --- retention --------------------------------------------------------------------------------------------------
def test_purge_removes_old_history_and_keeps_the_current_baseline(app, world, client_for, retention):
    from app.extensions import db
    from app.models import Booking
    from app.services.history import purge_history

    kept = make_booking(app, world, next_day())
    old_txs = [versions(app, Booking, kept)[0][0]]
    old_txs += [change(app, Booking, kept, comment=f"alt {n}") for n in range(2)]
    mixed = make_booking(app, world, next_day())
    old_txs.append(versions(app, Booking, mixed)[0][0])
    gone = make_booking(app, world, next_day())
    old_txs.append(versions(app, Booking, gone)[0][0])
    delete_via_form(client_for("Manager"), "bookingview", gone)
    old_txs.append(versions(app, Booking, gone)[-1][0])
    age_transactions(app, old_txs, days=400)
    recent = change(app, Booking, mixed, comment="neu")

    retention("30")
    owner = client_for("Owner")
    page = html(post(owner, "/history/purge/"))
    assert "Löschen bestätigen" in page and "älter als 30 Tage" in page
    assert len(versions(app, Booking, kept)) == 3, "the confirmation step removes nothing"

    response = post(owner, "/history/purge/", confirm="1")
    assert response.status_code == 302
    assert [v[0] for v in versions(app, Booking, kept)] == [old_txs[2]], "the newest version stays as baseline"
    assert [v[0] for v in versions(app, Booking, mixed)] == [recent]
    assert versions(app, Booking, gone) == []
    assert versions(app, Booking, world.booking1), "recent history is untouched"
    from sqlalchemy_continuum import versioning_manager

    tx = versioning_manager.transaction_cls
    with app.app_context():
        left = set(db.session.scalars(sa.select(tx.id).where(tx.id.in_(old_txs))))
        assert left == {old_txs[2]}, "transactions no version refers to are removed"
        assert purge_history(db.session) == 0, "nothing left to remove"
    pane = verlauf(owner.get(f"/bookingview/show/{kept}"))
    assert pane.count('class="tb-version"') == 1 and "alt 1" in pane
    assert f'data-id="{gone}"' not in html(owner.get("/history/list/"))


def test_purge_from_the_command_line(app, world, retention):
    from app.models import Booking

    pk = make_booking(app, world, next_day())
    first = versions(app, Booking, pk)[0][0]
    latest = change(app, Booking, pk, comment="später")
    age_transactions(app, [first], days=10)
    retention("5")
    result = app.test_cli_runner().invoke(args=["history", "purge"])
    assert result.exit_code == 0 and "Versionen aus dem Verlauf entfernt" in result.output
    assert [v[0] for v in versions(app, Booking, pk)] == [latest]


@pytest.mark.parametrize("value", ["", "0"])
def test_retention_empty_or_zero_keeps_everything(app, world, client_for, retention, value):
    from app.extensions import db
    from app.models import Booking
    from app.services.history import purge_history

    pk = make_booking(app, world, next_day())
    change(app, Booking, pk, comment="noch einmal")
    history = versions(app, Booking, pk)
    age_transactions(app, [tx for tx, _op, _user in history], days=5000)
    retention(value)
    with app.app_context():
        assert purge_history(db.session) == 0
        db.session.commit()
    page = html(post(client_for("Owner"), "/history/purge/", confirm="1"))
    assert "unbegrenzt" in page
    assert versions(app, Booking, pk) == history
    result = app.test_cli_runner().invoke(args=["history", "purge"])
    assert "nichts gelöscht" in result.output
    assert versions(app, Booking, pk) == history


def test_retention_setting_is_seeded_and_validated_in_german(app, world, client_for, retention):
    from app.extensions import db
    from app.models import Setting

    with app.app_context():
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "history_retention_days"))
        assert setting is not None and setting.value == ""
        setting_id = setting.id
    owner = client_for("Owner")
    url = f"/settingview/edit/{setting_id}"
    for bad in ("abc", "-5", "1.5"):
        data = form_values(html(owner.get(url)), "value")
        data["value"] = bad
        response = owner.post(url, data=data, follow_redirects=True)
        assert "bitte eine ganze Zahl ≥ 0 eingeben" in html(response), bad
        assert row(app, Setting, setting_id)["value"] == ""
    data = form_values(html(owner.get(url)), "value")
    data["value"] = " 30 "
    assert owner.post(url, data=data).status_code == 302
    assert row(app, Setting, setting_id)["value"] == "30"
