"""Click-to-call: E.164 normalization, the call links in lists and detail pages, the scheme setting."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from app.services.phone import normalize_phone, parse_call_scheme, phone_link
from tests.helpers_perm import html
from tests.test_validation import form_values

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@pytest.mark.parametrize(("raw", "expected"), [
    ("030 123456", "+4930123456"),
    ("030/123 456", "+4930123456"),
    ("(030) 123-456", "+4930123456"),
    ("+49 (0)30 123456", "+4930123456"),
    ("+49 030 123456", "+4930123456"),
    ("0049 30 123456", "+4930123456"),
    ("0049 (0)30 123456", "+4930123456"),
    ("0171 1234567", "+491711234567"),
    ("  0171.123.4567\t", "+491711234567"),
    ("+49301234567", "+49301234567"),
    ("+43 1 234567", "+431234567"),
    ("+43 (0)1 234567", "+431234567"),
    ("0043 1 234567", "+431234567"),
    ("+39 06 1234567", "+39061234567"),  # Italy keeps its leading 0
    ("+1 (212) 555-0100", "+12125550100"),
])
def test_normalizes_to_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", [
    None, "", "   ", "abc", "030 123456 ext. 5", "123456",  # no area code
    "030 1",  # too short
    "+49 30 1234567890123",  # 16 digits: longer than E.164 allows
    "0" * 41,  # longer than the column
    "+", "00", "0", "+0 30 123456", "000 30 123456",  # no country code
    "+49 00 30 123456", "030 +123456", "++49 30 123456",
    "030 ١٢٣٤٥٦",  # non-ASCII digits
    "030 123456; DROP TABLE customer",
    12345,  # not a string
])
def test_refuses_what_is_no_phone_number(raw):
    assert normalize_phone(raw) is None


def test_default_country_for_national_numbers():
    assert normalize_phone("01 234567", default_country="AT") == "+431234567"
    assert normalize_phone("030 123456", default_country="XX") is None
    assert normalize_phone("+49 30 123456", default_country="XX") == "+4930123456"


@given(st.one_of(
    st.text(max_size=50),
    st.text(alphabet="+0123456789 ()/-.", max_size=30),
    st.from_regex(r"\A(\+|00|0)[0-9 ()/-]{0,25}\Z"),
))
def test_normalizing_is_idempotent_and_e164(raw):
    number = normalize_phone(raw)
    assert number is None or E164.match(number)
    assert normalize_phone(number) == number


def test_link_is_escaped_and_uses_the_normalized_number():
    assert str(phone_link("030 123456", "tel")) == '<a href="tel:+4930123456">030 123456</a>'
    assert str(phone_link("(030) 123-456", "sip")) == '<a href="sip:+4930123456">(030) 123-456</a>'
    assert str(phone_link("<b>030</b>", "tel")) == "&lt;b&gt;030&lt;/b&gt;"
    assert str(phone_link("kein Anschluss", "tel")) == "kein Anschluss"
    assert str(phone_link(None)) == "" and str(phone_link("")) == ""


def test_scheme_is_validated_in_german():
    assert parse_call_scheme(" SIP ") == "sip"
    assert parse_call_scheme("callto:") == "callto"
    for bad in ("javascript", "", None, "http", "tel sip"):
        with pytest.raises(ValueError, match="Anruf-Link: erlaubt sind nur tel, sip, callto"):
            parse_call_scheme(bad)


# --- over HTTP -------------------------------------------------------------------
def _setting(app):
    from app.extensions import db
    from app.models import Setting

    with app.app_context():
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "call_link_scheme"))
        assert setting is not None, "call_link_scheme is not seeded"
        return setting.id, setting.value


def _set_scheme(owner, setting_id: int, value: str):
    url = f"/settingview/edit/{setting_id}"
    data = form_values(html(owner.get(url)), "value")
    data["value"] = value
    return owner.post(url, data=data, follow_redirects=True)


@pytest.fixture()
def scheme_setting(app, client_for):
    """The setting's id; back to "tel" after the test."""
    setting_id, value = _setting(app)
    assert value == "tel"
    yield setting_id
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Setting

    with app.app_context(), acting_as():
        db.session.get(Setting, setting_id).value = "tel"
        db.session.commit()


def test_customer_list_and_detail_link_the_phone(app, world, manager):
    link = '<a href="tel:+49301234567">+49301234567</a>'
    assert link in html(manager.get("/customerview/list/"))
    assert link in html(manager.get(f"/customerview/show/{world.customer1}"))


def _set_phone(app, model_name: str, pk: int, phone: str | None) -> str | None:
    """Set a row's phone (as the system user); returns the old value."""
    import app.models as models
    from app.extensions import db
    from app.jobs.base import acting_as

    with app.app_context(), acting_as():
        item = db.session.get(getattr(models, model_name), pk)
        old, item.phone = item.phone, phone
        db.session.commit()
    return old


@pytest.mark.parametrize(("model_name", "route", "pk_name"), [
    ("Employee", "employeeview", "employee1"), ("Location", "locationview", "location"),
])
def test_employee_and_location_phones_are_linked(app, world, owner, model_name, route, pk_name):
    pk = getattr(world, pk_name)
    old = _set_phone(app, model_name, pk, "030/123 456 <b>")
    try:
        # not a number: plain escaped text, no link
        assert "030/123 456 &lt;b&gt;" in html(owner.get(f"/{route}/show/{pk}"))
        assert 'href="tel:+4930123456"' not in html(owner.get(f"/{route}/list/"))
        _set_phone(app, model_name, pk, "030/123 456")
        link = '<a href="tel:+4930123456">030/123 456</a>'
        assert link in html(owner.get(f"/{route}/list/"))
        assert link in html(owner.get(f"/{route}/show/{pk}"))
    finally:
        _set_phone(app, model_name, pk, old)


def test_setting_sip_changes_the_links(app, world, owner, scheme_setting):
    response = _set_scheme(owner, scheme_setting, " sip ")
    assert response.status_code == 200
    assert _setting(app)[1] == "sip"
    page = html(owner.get(f"/customerview/show/{world.customer1}"))
    assert '<a href="sip:+49301234567">+49301234567</a>' in page
    assert "tel:+49301234567" not in page


@pytest.mark.parametrize("bad", ["javascript", "http", ""])
def test_invalid_scheme_is_refused_in_german_and_not_stored(app, world, owner, scheme_setting, bad):
    page = html(_set_scheme(owner, scheme_setting, bad))
    assert "Anruf-Link: erlaubt sind nur tel, sip, callto." in page
    assert _setting(app)[1] == "tel"
    assert '<a href="tel:+49301234567">' in html(owner.get(f"/customerview/show/{world.customer1}"))


def test_scheme_is_read_once_per_request(app, world, manager):
    """A list with many phone links queries the setting once, not once per row."""
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    seen: list[str] = []
    _set_phone(app, "Customer", world.customer2, "0331 987654")

    def on_execute(_conn, _cursor, statement, parameters, *_args):
        seen.append(f"{statement} {parameters}")

    sa.event.listen(engine, "before_cursor_execute", on_execute)
    try:
        page = html(manager.get("/customerview/list/"))
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_execute)
        _set_phone(app, "Customer", world.customer2, None)
    assert '<a href="tel:+49331987654">0331 987654</a>' in page and 'href="tel:+49301234567"' in page
    assert sum("call_link_scheme" in sql for sql in seen) == 1
