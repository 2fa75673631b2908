"""Bad input in any form gets a German validation message and stores nothing;
the database constraints hold without the forms; bookings are completed from
their service; datetimes are aware UTC on both databases."""
from __future__ import annotations

from html.parser import HTMLParser


class _FormParser(HTMLParser):
    """Collects the fields of every <form> on a page the way a browser submits them."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, str]] = []
        self._form: dict[str, str] | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._option: dict | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attr = dict(attrs)
        if tag == "form":
            self._form = {}
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        name = attr.get("name")
        if tag == "input" and name:
            kind = (attr.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in attr:
                    self._form[name] = attr.get("value") or "on"
            elif kind not in ("submit", "button", "file", "image", "reset"):
                self._form[name] = attr.get("value") or ""
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select:
            self._option = {"value": attr.get("value"), "selected": "selected" in attr}
            self._text = ""
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data):
        if self._option is not None or self._textarea:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "option" and self._option is not None:
            value = self._option["value"] if self._option["value"] is not None else self._text.strip()
            if self._select_first is None:
                self._select_first = value
            if self._option["selected"] and not self._select_chosen:
                self._form[self._select] = value
                self._select_chosen = True
            self._option = None
        elif tag == "select" and self._select:
            if not self._select_chosen:
                self._form[self._select] = self._select_first or ""
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = self._text
            self._form[self._textarea] = text[2:] if text.startswith("\r\n") else text.removeprefix("\n")
            self._textarea = None
        elif tag == "form":
            self._form = None


def form_values(html: str, field: str) -> dict[str, str]:
    """The fields the form holding `field` would submit, as a browser would send them."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if field in form:
            return dict(form)
    raise AssertionError(f"no form with a field {field!r} on the page")


# --- helpers -----------------------------------------------------------------
import re  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from decimal import Decimal  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

ENGLISH = ("Already exists", "This field is required", "Not a valid", "Invalid email", "Database Error",
           "IntegrityError", "Internal Server Error")
FLASH_RE = re.compile(r'class="alert[^"]*"[^>]*>(.*?)</div>', re.S)


def count(app, model) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def submit(client, url: str, changes: dict, field: str) -> str:
    """Open the form at `url`, change some fields, submit it like a browser
    (CSRF token included), follow FAB's redirect and return the page."""
    page = client.get(url)
    assert page.status_code == 200, f"{url}: {page.status_code}"
    data = form_values(page.get_data(as_text=True), field)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    response = client.post(url, data=data, follow_redirects=True)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return response.get_data(as_text=True)


def assert_german_refusal(html: str, message: str) -> None:
    assert message in html, f"missing {message!r}; messages: {FLASH_RE.findall(html)}"
    for english in ENGLISH:
        assert english not in html, f"English/technical message {english!r} shown"


def delete_rows(app, model, ids) -> None:
    from app.extensions import db
    from app.jobs.base import acting_as

    with app.app_context(), acting_as():
        for pk in ids:
            row = db.session.get(model, pk)
            if row is not None:
                db.session.delete(row)
        db.session.commit()


@pytest.fixture(scope="module")
def catalog(app, world):
    """A card type and a service with the status workflow, for this module."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import PassCardType, Service

    with app.app_context(), acting_as():
        card_type = PassCardType(name="Validierung 10er", units=10, price=Decimal("100.00"))
        workflow = Service(name="Validierung Workflow-Kurs", category="kurs", duration_minutes=90,
                           price=Decimal("19.90"), status_workflow=True)
        db.session.add_all([card_type, workflow])
        db.session.commit()
        ids = {"card_type": card_type.id, "workflow_service": workflow.id}
    yield ids
    delete_rows(app, Service, [ids["workflow_service"]])
    delete_rows(app, PassCardType, [ids["card_type"]])


@pytest.fixture(scope="module")
def manager_client(app, world):
    """One Manager login for the module (a login hashes a password: slow)."""
    from tests.conftest import login

    return login(app.test_client(), "manager")


@pytest.fixture(scope="module")
def owner(app, world):
    from tests.conftest import login

    return login(app.test_client(), "owner")


# --- bookings ------------------------------------------------------------------
def _booking_form(world, start: str, end: str) -> dict:
    return {
        "customer": str(world.customer1), "service": str(world.service), "employee": str(world.employee1),
        "start_at": start, "end_at": end, "price": "", "comment": "Validierungstest",
    }


@pytest.mark.parametrize("end", ["2031-05-06 09:00:00", "2031-05-06 10:00:00"], ids=["before", "equal"])
def test_booking_end_not_after_start_is_refused(app, world, manager_client, end):
    from app.models import Booking

    before = count(app, Booking)
    html = submit(manager_client, "/bookingview/add", _booking_form(world, "2031-05-06 10:00:00", end), "start_at")
    assert_german_refusal(html, "Das Ende muss nach dem Beginn liegen.")
    assert count(app, Booking) == before


def test_booking_form_happy_path_stores_one_booking(app, world, manager_client):
    """The same form with a valid end is stored — the refusals above are about the end."""
    from app.extensions import db
    from app.models import Booking

    before = count(app, Booking)
    form = _booking_form(world, "2031-05-06 10:00:00", "2031-05-06 11:30:00") | {"reminder": None}  # unticked
    html = submit(manager_client, "/bookingview/add", form, "start_at")
    assert "Das Ende muss nach dem Beginn liegen." not in html
    assert "Zeile hinzugefügt" in html
    assert count(app, Booking) == before + 1
    with app.app_context():
        booking = db.session.scalars(
            sa.select(Booking).where(Booking.comment == "Validierungstest").order_by(Booking.id.desc())
        ).first()
        # form times are Berlin wall-clock time (CEST in May): stored as UTC
        assert booking.start_at == datetime(2031, 5, 6, 8, 0, tzinfo=timezone.utc)
        assert booking.end_at == datetime(2031, 5, 6, 9, 30, tzinfo=timezone.utc)
        assert booking.price == Decimal("45.00")
        assert booking.reminder is False
        pk = booking.id
    delete_rows(app, Booking, [pk])


def test_booking_edit_with_end_before_start_changes_nothing(app, world, manager_client):
    from app.extensions import db
    from app.models import Booking

    with app.app_context():
        booking = db.session.get(Booking, world.booking1)
        start, end = booking.start_at, booking.end_at
    html = submit(manager_client, f"/bookingview/edit/{world.booking1}",
                  {"end_at": "2030-03-04 08:00:00", "comment": "geändert?"}, "start_at")
    assert_german_refusal(html, "Das Ende muss nach dem Beginn liegen.")
    with app.app_context():
        booking = db.session.get(Booking, world.booking1)
        assert (booking.start_at, booking.end_at) == (start, end)
        assert booking.comment == "Erster Termin"


def test_booking_negative_price_is_refused(app, world, manager_client):
    from app.models import Booking

    before = count(app, Booking)
    form = _booking_form(world, "2031-05-06 10:00:00", "") | {"price": "-5"}
    html = submit(manager_client, "/bookingview/add", form, "start_at")
    assert_german_refusal(html, "Der Preis darf nicht negativ sein.")
    assert count(app, Booking) == before


# --- pass cards ------------------------------------------------------------------
def _card_form(world, catalog, total: str, used: str) -> dict:
    return {"customer": str(world.customer1), "type": str(catalog["card_type"]),
            "units_total": total, "units_used": used, "price": "100.00"}


@pytest.mark.parametrize(("total", "used", "message"), [
    ("10", "-1", "Verbrauchte Einheiten dürfen nicht negativ sein."),
    ("10", "11", "Es können nicht mehr Einheiten verbraucht sein, als die Karte hat."),
    ("-5", "0", "Eine Karte braucht mindestens eine Einheit."),
    ("0", "0", "Eine Karte braucht mindestens eine Einheit."),
], ids=["negative-used", "used-over-total", "negative-total", "zero-total"])
def test_pass_card_bad_units_are_refused(app, world, catalog, manager_client, total, used, message):
    from app.models import PassCard

    before = count(app, PassCard)
    html = submit(manager_client, "/passcardview/add", _card_form(world, catalog, total, used), "units_total")
    assert_german_refusal(html, message)
    assert count(app, PassCard) == before


def test_pass_card_form_happy_path(app, world, catalog, manager_client):
    """The add form as rendered (purchase date prefilled) saves a valid card."""
    from app.extensions import db
    from app.models import PassCard

    before = count(app, PassCard)
    html = submit(manager_client, "/passcardview/add", _card_form(world, catalog, "10", "10"), "units_total")
    assert "Zeile hinzugefügt" in html
    assert count(app, PassCard) == before + 1
    with app.app_context():
        card = db.session.scalars(sa.select(PassCard).order_by(PassCard.id.desc())).first()
        assert (card.units_total, card.units_used, card.units_remaining) == (10, 10, 0)
        assert abs(card.purchased_at - datetime.now(timezone.utc)) < timedelta(minutes=5)
        pk = card.id
    delete_rows(app, PassCard, [pk])


def test_pass_card_edit_over_total_changes_nothing(app, world, catalog, manager_client):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import PassCard

    with app.app_context(), acting_as():
        card = PassCard(type_id=catalog["card_type"], customer_id=world.customer1, units_total=5, units_used=1,
                        price=Decimal("50.00"))
        db.session.add(card)
        db.session.commit()
        pk = card.id
    try:
        html = submit(manager_client, f"/passcardview/edit/{pk}", {"units_used": "6"}, "units_total")
        assert_german_refusal(html, "Es können nicht mehr Einheiten verbraucht sein, als die Karte hat.")
        with app.app_context():
            assert db.session.get(PassCard, pk).units_used == 1
    finally:
        delete_rows(app, PassCard, [pk])


# --- customers -------------------------------------------------------------------
def _customer_form(**changes) -> dict:
    return {"first_name": "Vera", "last_name": "Validierung", "emoji_marker": "", "email": "",
            "phone": "", "country": "DE"} | changes


@pytest.mark.parametrize(("changes", "message"), [
    ({"emoji_marker": "⭐" * 9}, "Höchstens 8 Zeichen."),
    ({"emoji_marker": "abcdefghij"}, "Höchstens 8 Zeichen."),
    ({"email": "anna@example.org"}, "Diese E-Mail-Adresse ist schon bei einer anderen Kund:in eingetragen."),
    ({"email": "  ANNA@Example.ORG "}, "Diese E-Mail-Adresse ist schon bei einer anderen Kund:in eingetragen."),
    ({"email": "keine-adresse"}, "Bitte eine gültige E-Mail-Adresse angeben."),
    ({"email": "vera@"}, "Bitte eine gültige E-Mail-Adresse angeben."),
    ({"first_name": ""}, "Dieses Feld wird benötigt."),
], ids=["emoji-9-stars", "emoji-10-chars", "duplicate-email", "duplicate-email-case", "invalid-email",
        "half-email", "missing-first-name"])
def test_customer_bad_input_is_refused(app, world, manager_client, changes, message):
    from app.models import Customer

    before = count(app, Customer)
    html = submit(manager_client, "/customerview/add", _customer_form(**changes), "first_name")
    assert_german_refusal(html, message)
    assert count(app, Customer) == before


def test_customer_form_happy_path_normalises_and_saves(app, world, manager_client):
    """Unticked consent boxes, an 8-character marker and a mixed-case e-mail are fine."""
    from app.extensions import db
    from app.models import Customer

    before = count(app, Customer)
    html = submit(manager_client, "/customerview/add",
                  _customer_form(emoji_marker="⭐🐕📞🆕", email=" Vera.V@Example.org "), "first_name")
    assert "Zeile hinzugefügt" in html
    assert count(app, Customer) == before + 1
    with app.app_context():
        customer = db.session.scalar(sa.select(Customer).where(Customer.email == "vera.v@example.org"))
        assert customer is not None
        assert customer.display_name == "⭐🐕📞🆕 Vera Validierung"
        assert customer.consent_email is False and customer.consent_sms is False
        assert customer.created_by_id == world.user_manager
        pk = customer.id
    delete_rows(app, Customer, [pk])


def test_customers_without_email_do_not_collide(app, world, manager_client):
    """An empty e-mail is stored as NULL: any number of customers may have none."""
    from app.extensions import db
    from app.models import Customer

    before = count(app, Customer)
    for name in ("Ohne-Mail-Eins", "Ohne-Mail-Zwei"):
        html = submit(manager_client, "/customerview/add", _customer_form(last_name=name), "first_name")
        assert "Zeile hinzugefügt" in html, danger_messages(html)
    assert count(app, Customer) == before + 2
    with app.app_context():
        rows = db.session.scalars(sa.select(Customer).where(Customer.last_name.like("Ohne-Mail-%"))).all()
        assert [row.email for row in rows] == [None, None]
        assert [row.emoji_marker for row in rows] == [None, None]
        ids = [row.id for row in rows]
    delete_rows(app, Customer, ids)


def test_customer_edit_to_duplicate_email_changes_nothing(app, world, manager_client):
    from app.extensions import db
    from app.models import Customer

    html = submit(manager_client, f"/customerview/edit/{world.customer2}", {"email": "Anna@example.org"}, "email")
    assert_german_refusal(html, "Diese E-Mail-Adresse ist schon bei einer anderen Kund:in eingetragen.")
    with app.app_context():
        assert db.session.get(Customer, world.customer2).email == "bernd@example.org"


def test_customer_edit_keeping_own_email_is_allowed(app, world, manager_client):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context():
        original = db.session.get(Customer, world.customer2).notes
    try:
        submit(manager_client, f"/customerview/edit/{world.customer2}", {"notes": "ruft gern an"}, "email")
        with app.app_context():
            customer = db.session.get(Customer, world.customer2)
            assert customer.notes == "ruft gern an"
            assert customer.email == "bernd@example.org"
    finally:
        with app.app_context(), acting_as():
            db.session.get(Customer, world.customer2).notes = original
            db.session.commit()


def test_customer_cannot_refer_themselves(app, world, manager_client):
    from app.extensions import db
    from app.models import Customer

    html = submit(manager_client, f"/customerview/edit/{world.customer2}",
                  {"referred_by": str(world.customer2)}, "email")
    assert_german_refusal(html, "Eine Kund:in kann sich nicht selbst empfohlen haben.")
    with app.app_context():
        assert db.session.get(Customer, world.customer2).referred_by_id is None


def test_edit_forms_show_and_keep_the_ajax_choice(app, world, manager_client):
    """An edit form with an AJAX select opens (no 500), shows the chosen row and
    keeps it when the user saves without touching it."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context(), acting_as():
        db.session.get(Customer, world.customer2).referred_by_id = world.customer1
        db.session.commit()
    try:
        page = manager_client.get(f"/customerview/edit/{world.customer2}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert f'<option value="{world.customer1}" selected>⭐ Anna Berg</option>' in html
        assert form_values(html, "email")["referred_by"] == str(world.customer1)
        submit(manager_client, f"/customerview/edit/{world.customer2}", {"notes": "empfohlen"}, "email")
        with app.app_context():
            customer = db.session.get(Customer, world.customer2)
            assert customer.notes == "empfohlen"
            assert customer.referred_by_id == world.customer1
    finally:
        with app.app_context(), acting_as():
            customer = db.session.get(Customer, world.customer2)
            customer.referred_by_id, customer.notes = None, None
            db.session.commit()

    page = manager_client.get(f"/bookingview/edit/{world.booking1}")
    assert page.status_code == 200
    assert f'<option value="{world.customer1}" selected>⭐ Anna Berg</option>' in page.get_data(as_text=True)


# --- services --------------------------------------------------------------------
def _service_form(**changes) -> dict:
    return {"name": "Validierung Einzelstunde", "category": "einzelstunde", "duration_minutes": "45",
            "buffer_minutes": "0", "price": "40.00", "vat_rate": "19.00", "capacity": "1"} | changes


@pytest.mark.parametrize(("changes", "message"), [
    ({"duration_minutes": "0"}, "Die Dauer muss mindestens 1 Minute betragen."),
    ({"duration_minutes": "-30"}, "Die Dauer muss mindestens 1 Minute betragen."),
    ({"price": "-1.00"}, "Der Preis darf nicht negativ sein."),
    ({"buffer_minutes": "-5"}, "Der Puffer darf nicht negativ sein."),
    ({"capacity": "0"}, "Es muss mindestens 1 Platz geben."),
    ({"vat_rate": "100"}, "Der Mehrwertsteuersatz muss zwischen 0 und 99,99 Prozent liegen."),
    ({"name": "Einzelstunde 60"}, "Eine Dienstleistung mit diesem Namen gibt es schon."),
], ids=["zero-duration", "negative-duration", "negative-price", "negative-buffer", "no-capacity", "vat-100",
        "duplicate-name"])
def test_service_bad_input_is_refused(app, world, manager_client, changes, message):
    from app.models import Service

    before = count(app, Service)
    html = submit(manager_client, "/serviceview/add", _service_form(**changes), "duration_minutes")
    assert_german_refusal(html, message)
    assert count(app, Service) == before


def test_service_form_happy_path_without_workflow(app, world, manager_client):
    """Unticked "Status-Workflow" is a valid choice (FAB alone would demand it ticked)."""
    from app.extensions import db
    from app.models import Service

    before = count(app, Service)
    html = submit(manager_client, "/serviceview/add", _service_form(), "duration_minutes")
    assert "Zeile hinzugefügt" in html
    assert count(app, Service) == before + 1
    with app.app_context():
        service = db.session.scalar(sa.select(Service).where(Service.name == "Validierung Einzelstunde"))
        assert service.status_workflow is False
        assert service.active is True and service.reminder_default is True
        assert service.price == Decimal("40.00")
        pk = service.id
    delete_rows(app, Service, [pk])


# --- the other screens ------------------------------------------------------------------
@pytest.mark.parametrize(("url", "anchor", "changes", "message", "model_name"), [
    ("/bookingstatusview/add", "name", {"name": "Neu", "color": "rot"},
     "Bitte eine Farbe im Format #RRGGBB angeben.", "BookingStatus"),
    ("/bookingstatusview/add", "name", {"name": "bestätigt", "color": "#00ff00"},
     "Diesen Status gibt es schon.", "BookingStatus"),
    ("/locationview/add", "name", {"name": "Filiale Mitte"}, "Eine Filiale mit diesem Namen gibt es schon.",
     "Location"),
    ("/locationview/add", "name", {"name": "Filiale Süd", "email": "süd@"},
     "Bitte eine gültige E-Mail-Adresse angeben.", "Location"),
    ("/settingview/add", "key", {"key": "business_name", "value": "x"}, "Diese Einstellung gibt es schon.",
     "Setting"),
    ("/passcardtypeview/add", "name", {"name": "Leer", "units": "0", "price": "10"},
     "Eine Karte braucht mindestens eine Einheit.", "PassCardType"),
    ("/passcardtypeview/add", "name", {"name": "Billig", "units": "5", "price": "-1"},
     "Der Preis darf nicht negativ sein.", "PassCardType"),
    ("/bonusprogramview/add", "name", {"name": "Zu viel", "points_per_euro": "1", "threshold": "100",
                                       "reward_name": "Rabatt", "reward_kind": "percent", "reward_value": "150",
                                       "referral_points": "0"},
     "Ein Prozent-Rabatt kann höchstens 100 % betragen.", "BonusProgram"),
    ("/bonusprogramview/add", "name", {"name": "Ohne Schwelle", "points_per_euro": "1", "threshold": "0",
                                       "reward_name": "Rabatt", "reward_kind": "fixed", "reward_value": "5",
                                       "referral_points": "0"},
     "Die Schwelle muss mindestens 1 Punkt betragen.", "BonusProgram"),
    ("/resourceview/add", "name", {"name": "Raum 0", "capacity": "0"}, "Die Kapazität muss mindestens 1 sein.",
     "Resource"),
    ("/employeeview/add", "first_name", {"first_name": "Farb", "last_name": "Los", "color": "blau"},
     "Bitte eine Farbe im Format #RRGGBB angeben.", "Employee"),
], ids=["status-color", "status-duplicate", "location-duplicate", "location-email", "setting-duplicate",
        "card-type-no-units", "card-type-negative-price", "bonus-percent-over-100", "bonus-zero-threshold",
        "resource-no-capacity", "employee-color"])
def test_catalog_bad_input_is_refused(app, world, owner, url, anchor, changes, message, model_name):
    import app.models as models

    model = getattr(models, model_name)
    before = count(app, model)
    html = submit(owner, url, changes, anchor)
    assert_german_refusal(html, message)
    assert count(app, model) == before


def test_employee_login_cannot_be_linked_twice(app, world, owner):
    from app.extensions import db
    from app.models import Employee

    html = submit(owner, f"/employeeview/edit/{world.employee2}", {"user": str(world.user_employee1)}, "first_name")
    assert_german_refusal(html, "Dieser Login gehört schon zu einer anderen Mitarbeiter:in.")
    with app.app_context():
        assert db.session.get(Employee, world.employee2).user_id == world.user_employee2


def test_setting_value_may_be_emptied(app, world, owner):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Setting

    with app.app_context():
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "business_name"))
        pk, original = setting.id, setting.value
    try:
        html = submit(owner, f"/settingview/edit/{pk}", {"value": ""}, "key")
        assert "Zeile geändert" in html, danger_messages(html)
        with app.app_context():
            assert db.session.get(Setting, pk).value == ""
    finally:
        with app.app_context(), acting_as():
            db.session.get(Setting, pk).value = original
            db.session.commit()


# --- the database holds without the forms ----------------------------------------------
def _bad_booking(world):
    from app.models import Booking

    start = datetime(2031, 1, 1, 9, tzinfo=timezone.utc)
    return Booking(customer_id=world.customer1, service_id=world.service, status_id=world.confirmed,
                   start_at=start, end_at=start - timedelta(minutes=1))


def _bad_card(world, catalog):
    from app.models import PassCard

    return PassCard(type_id=catalog["card_type"], customer_id=world.customer1, units_total=5, units_used=6,
                    price=Decimal("1.00"))


def _negative_card(world, catalog):
    from app.models import PassCard

    return PassCard(type_id=catalog["card_type"], customer_id=world.customer1, units_total=5, units_used=-1,
                    price=Decimal("1.00"))


def _long_emoji(world, catalog):
    from app.models import Customer

    return Customer(first_name="Lang", last_name="Emoji", emoji_marker="⭐" * 9)


def _negative_price(world, catalog):
    from app.models import Service

    return Service(name="Negativ", duration_minutes=30, price=Decimal("-0.01"))


def _zero_duration(world, catalog):
    from app.models import Service

    return Service(name="Ohne Dauer", duration_minutes=0, price=Decimal("1.00"))


@pytest.mark.parametrize("make", [
    lambda world, catalog: _bad_booking(world), _bad_card, _negative_card, _long_emoji, _negative_price,
    _zero_duration,
], ids=["booking-end-before-start", "card-used-over-total", "card-negative-used", "emoji-too-long",
        "service-negative-price", "service-zero-duration"])
def test_database_refuses_bad_rows_without_forms(app, world, catalog, make):
    from app.extensions import db
    from app.jobs.base import acting_as

    with app.app_context(), acting_as():
        db.session.add(make(world, catalog))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_database_accepts_the_boundary_values(app, world, catalog):
    """The constraints are not too strict: 8 characters, used == total, price 0 pass."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer, PassCard, Service

    with app.app_context(), acting_as():
        rows = [
            Customer(first_name="Grenz", last_name="Fall", emoji_marker="⭐" * 8),
            PassCard(type_id=catalog["card_type"], customer_id=world.customer1, units_total=5, units_used=5,
                     price=Decimal("0.00")),
            Service(name="Gratis", duration_minutes=1, price=Decimal("0.00")),
        ]
        db.session.add_all(rows)
        db.session.flush()
        assert all(row.id for row in rows)
        db.session.rollback()


# --- bookings are completed from their service -----------------------------------------
@pytest.fixture()
def new_bookings(app):
    created: list[int] = []
    yield created
    from app.models import Booking

    delete_rows(app, Booking, created)


def _add_booking(app, new_bookings, **fields):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        booking = Booking(**fields)
        db.session.add(booking)
        db.session.commit()
        new_bookings.append(booking.id)
        return booking.id


def _load(app, pk):
    from app.extensions import db
    from app.models import Booking

    db.session.expire_all()
    booking = db.session.get(Booking, pk)
    return booking


def test_booking_without_end_status_price_is_completed_from_service(app, world, new_bookings):
    start = datetime(2031, 2, 3, 14, 0, tzinfo=timezone.utc)
    pk = _add_booking(app, new_bookings, customer_id=world.customer1, service_id=world.service,
                      employee_id=world.employee1, start_at=start)
    with app.app_context():
        booking = _load(app, pk)
        assert booking.end_at == start + timedelta(minutes=60)
        assert booking.status.name == "bestätigt"
        assert isinstance(booking.price, Decimal) and booking.price == Decimal("45.00")
        assert booking.location_id == world.location  # from the employee


def test_booking_with_workflow_service_starts_as_request(app, world, catalog, new_bookings):
    start = datetime(2031, 2, 3, 16, 0, tzinfo=timezone.utc)
    pk = _add_booking(app, new_bookings, customer_id=world.customer1, service_id=catalog["workflow_service"],
                      start_at=start)
    with app.app_context():
        booking = _load(app, pk)
        assert booking.status.name == "angefragt"
        assert booking.end_at == start + timedelta(minutes=90)
        assert booking.price == Decimal("19.90")
        assert booking.location_id is None  # no employee, no location


def test_booking_keeps_what_was_given(app, world, catalog, new_bookings):
    from app.extensions import db
    from app.models import BookingStatus

    start = datetime(2031, 2, 4, 9, 0, tzinfo=timezone.utc)
    end = start + timedelta(minutes=25)
    with app.app_context():
        cancelled = db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.name == "storniert"))
    pk = _add_booking(app, new_bookings, customer_id=world.customer1, service_id=catalog["workflow_service"],
                      start_at=start, end_at=end, price=Decimal("0.00"), status_id=cancelled)
    with app.app_context():
        booking = _load(app, pk)
        assert booking.end_at == end
        assert booking.price == Decimal("0.00")
        assert booking.status_id == cancelled


# --- time zones --------------------------------------------------------------------------
def test_naive_datetime_is_refused(app, world):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        db.session.add(Booking(customer_id=world.customer1, service_id=world.service,
                               start_at=datetime(2031, 3, 1, 9, 0)))
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            db.session.flush()
        db.session.rollback()


def test_datetimes_come_back_aware_utc(app, world, new_bookings):
    from app.extensions import db

    berlin = datetime(2031, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # CEST, UTC+2
    pk = _add_booking(app, new_bookings, customer_id=world.customer1, service_id=world.service, start_at=berlin)
    with app.app_context():
        booking = _load(app, pk)
        assert booking.start_at == datetime(2031, 7, 1, 10, 0, tzinfo=timezone.utc)
        assert booking.start_at.utcoffset() == timedelta(0)
        assert booking.start_at.tzinfo is not None and booking.end_at.tzinfo is not None
        assert booking.created_at.tzinfo is not None
        raw = db.session.execute(sa.text("SELECT start_at FROM booking WHERE id = :id"), {"id": pk}).scalar_one()
        if db.engine.dialect.name == "sqlite":
            assert str(raw).startswith("2031-07-01 10:00:00")  # naive UTC text
        else:
            assert raw.utcoffset() is not None  # timestamptz
            assert raw == datetime(2031, 7, 1, 10, 0, tzinfo=timezone.utc)


# --- every form of every screen ---------------------------------------------------------
from tests.test_lists import many  # noqa: E402,F401  (N rows in every listed table)

GERMAN_REQUIRED = {"Dieses Feld wird benötigt.", "Bitte auswählen.", "Bitte eine Uhrzeit angeben."}
DANGER_RE = re.compile(r'class="alert alert-(?:danger|message)"[^>]*>(.*?)</div>', re.S)


def all_views() -> list[type]:
    from flask_appbuilder import ModelView

    from app.views import MENU, VIEWS_WITHOUT_MENU

    return [view for view in [view for view, *_ in MENU] + list(VIEWS_WITHOUT_MENU) if issubclass(view, ModelView)]


def _allows(view_cls, permission: str) -> bool:
    return view_cls.base_permissions is None or permission in view_cls.base_permissions


def _route(app, view_cls) -> str:
    return next(v for v in app.appbuilder.baseviews if type(v) is view_cls).route_base


def danger_messages(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", m)).replace("×", "").strip() for m in DANGER_RE.findall(html)]


# Views whose add route is a page of their own, not FAB's form — with the reason and where it is tested.
OWN_ADD_PAGE = {"DocumentView": "the upload page (multipart, content check): tests/test_documents.py"}


@pytest.mark.parametrize("view_cls", [v for v in all_views() if _allows(v, "can_add")
                                      and v.__name__ not in OWN_ADD_PAGE], ids=lambda v: v.__name__)
def test_empty_add_form_is_refused_in_german_and_stores_nothing(app, world, owner, view_cls):
    model = view_cls.datamodel.obj
    before = count(app, model)
    html = submit(owner, f"{_route(app, view_cls)}/add", {}, view_cls.add_columns[0])
    messages = danger_messages(html)
    assert messages, "an empty form was accepted"
    assert set(messages) <= GERMAN_REQUIRED, messages
    assert_german_refusal(html, messages[0])
    assert count(app, model) == before


@pytest.mark.usefixtures("many")
@pytest.mark.parametrize("view_cls", [v for v in all_views() if _allows(v, "can_edit")], ids=lambda v: v.__name__)
def test_unchanged_edit_form_saves(app, world, owner, view_cls):
    """Opening a record and saving it untouched works for every screen (FAB alone
    refuses unticked NOT NULL checkboxes, and cannot parse its own time stamps)."""
    route = _route(app, view_cls)
    window = "?_flt_1_start_at=2000-01-01+00:00:00" if view_cls.__name__ == "BookingView" else ""  # all years
    listing = owner.get(f"{route}/list/{window}").get_data(as_text=True)
    ids = re.findall(rf'href="{re.escape(route)}/edit/(\d+)', listing)
    assert ids, f"no editable row listed for {view_cls.__name__}"
    html = submit(owner, f"{route}/edit/{ids[-1]}", {}, view_cls.edit_columns[0])
    assert danger_messages(html) == []
    assert "Zeile geändert" in html
