"""Display helpers: business time zone, German dates and money, status badges."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from markupsafe import Markup, escape


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


def status_badge(status) -> Markup:
    if status is None:
        return Markup("")
    return Markup(
        '<span class="label tb-status" style="background-color:{color}">{name}</span>'
    ).format(color=escape(status.color), name=escape(status.name))
