"""Display helpers: business time zone, German dates and money, status badges."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from markupsafe import Markup


def business_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("TIMEZONE", "Europe/Berlin"))


def to_local(value: datetime | None) -> datetime | None:
    return value.astimezone(business_tz()) if value is not None else None


def fmt_datetime(value: datetime | None) -> str:
    return to_local(value).strftime("%d.%m.%Y %H:%M") if value is not None else ""


def fmt_date(value: date | None) -> str:
    return value.strftime("%d.%m.%Y") if value is not None else ""


def fmt_money(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = f"{value:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return f"{text} €"


HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def text_color(background: str) -> str:
    """Black or white text, whichever reads better on `background` (#rrggbb; YIQ brightness)."""
    red, green, blue = (int(background[i:i + 2], 16) for i in (1, 3, 5))
    return "#000000" if (red * 299 + green * 587 + blue * 114) / 1000 >= 128 else "#ffffff"


def status_colors(status) -> tuple[str, str]:
    """(background, text) of a status wherever it is shown: its colour (grey when it is
    no #rrggbb) and black or white text on it."""
    color = status.color if HEX_COLOR.match(status.color or "") else "#777777"
    return color, text_color(color)


def status_badge(status) -> Markup:
    """The status name on its colour (escaped)."""
    if status is None:
        return Markup("")
    color, text = status_colors(status)
    return Markup(
        '<span class="label tb-status" style="background-color:{color};color:{text}">{name}</span>'
    ).format(color=color, text=text, name=status.name)


def fmt_rate(rate: Decimal) -> str:
    """A VAT rate or quantity without trailing zeros: 19.00 → "19", 5.50 → "5,5"."""
    return f"{Decimal(rate).normalize():f}".replace(".", ",")
