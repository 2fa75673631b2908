"""Phone numbers: E.164 normalization (German by default) and click-to-call links."""
from __future__ import annotations

import re

from flask import g, has_request_context
from flask_babel import gettext as _
from markupsafe import Markup, escape

CALL_SCHEME_KEY = "call_link_scheme"
CALL_SCHEMES = ("tel", "sip", "callto")
DEFAULT_CALL_SCHEME = "tel"
COUNTRY_CODES = {"DE": "49", "AT": "43", "CH": "41"}
# Countries whose trunk "0" is often (wrongly) written after the country code: "+49 030 …".
TRUNK_ZERO_CODES = ("49", "43", "41")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ALLOWED = re.compile(r"^\+?[0-9 ()/.\-\t]+$")  # ASCII digits and the usual separators only
_SEPARATORS = re.compile(r"[ ()/.\-\t]")
MAX_INPUT = 40  # the length of the phone columns


def normalize_phone(raw: str | None, default_country: str = "DE") -> str | None:
    """E.164 ("+4930123456") or None when `raw` is no phone number. National numbers ("030 …")
    get the country code of `default_country` (DE, AT, CH); foreign numbers keep theirs."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > MAX_INPUT or not _ALLOWED.match(text):
        return None
    international = text.startswith(("+", "00"))
    if international:
        text = text.replace("(0)", "", 1)  # "+49 (0)30 …": the trunk zero in parentheses
    digits = _SEPARATORS.sub("", text).lstrip("+")
    if international:
        digits = digits[2:] if text.startswith("00") else digits
    elif digits.startswith("0") and default_country in COUNTRY_CODES:
        digits = COUNTRY_CODES[default_country] + digits[1:]
    else:
        return None  # no area code ("123456") or an unknown default country
    for code in TRUNK_ZERO_CODES:
        if digits.startswith(code + "0"):
            digits = code + digits[len(code) + 1:]
            break
    number = "+" + digits
    return number if E164.match(number) and not _double_trunk_zero(digits) else None


def _double_trunk_zero(digits: str) -> bool:
    """"+49 00 30 …" is garbage; refusing it keeps normalize_phone idempotent."""
    return any(digits.startswith(code + "0") for code in TRUNK_ZERO_CODES)


def parse_call_scheme(value: str | None) -> str:
    """The setting's value as a link scheme; ValueError with a German message if not allowed."""
    scheme = (value or "").strip().lower().rstrip(":")
    if scheme not in CALL_SCHEMES:
        raise ValueError(_("Anruf-Link: erlaubt sind nur %(schemes)s.", schemes=", ".join(CALL_SCHEMES)))
    return scheme


def call_scheme() -> str:
    """The configured scheme, read at most once per request (cached on flask.g)."""
    if has_request_context() and "tb_call_scheme" in g:
        return g.tb_call_scheme
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Setting

    value = db.session.scalar(select(Setting.value).where(Setting.key == CALL_SCHEME_KEY))
    try:
        scheme = parse_call_scheme(value)
    except ValueError:
        scheme = DEFAULT_CALL_SCHEME  # a missing or broken setting still gives working links
    if has_request_context():
        g.tb_call_scheme = scheme
    return scheme


def phone_link(value: str | None, scheme: str | None = None) -> Markup:
    """The number as entered, linked to its E.164 form; plain (escaped) text if it cannot be normalized."""
    if not value:
        return Markup("")
    number = normalize_phone(value)
    if number is None:
        return escape(value)
    return Markup('<a href="{scheme}:{number}">{text}</a>').format(
        scheme=scheme or call_scheme(), number=number, text=value,
    )
