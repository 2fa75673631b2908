"""Erinnerungsübersicht (seed 003): how many bookings of the last and the next 7 days
had/have a reminder, as two pie charts drawn on the server (SVG, no script library), and
the future bookings without one, with tick boxes for "Erinnerung aktivieren". Row rules apply."""
from __future__ import annotations

import math

from flask import abort, request
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.formatting import fmt_datetime
from app.models import Booking
from app.models.types import utcnow
from app.security import restrict
from app.services.reminders import coverage, reminder_channel, without_reminder
from app.views.validators import parse_id

WITH_COLOR, WITHOUT_COLOR = "#2e7d32", "#c62828"


def pie(with_count: int, without_count: int, label: str) -> Markup:
    """A two-slice pie chart as inline SVG; an empty window is a grey ring."""
    total = with_count + without_count
    title = _("%(label)s: %(with)d mit, %(without)d ohne Erinnerung", label=label, **{
        "with": with_count, "without": without_count})
    parts = [f'<svg class="tb-pie" viewBox="-1 -1 2 2" width="160" height="160" role="img" '
             f'aria-label="{Markup.escape(title)}"><title>{Markup.escape(title)}</title>']
    if total == 0:
        parts.append('<circle r="0.95" fill="none" stroke="#ccc" stroke-width="0.1"/>')
    elif with_count == 0 or without_count == 0:
        parts.append(f'<circle r="1" fill="{WITH_COLOR if without_count == 0 else WITHOUT_COLOR}"/>')
    else:
        angle = 2 * math.pi * with_count / total
        x, y = math.sin(angle), -math.cos(angle)
        large = 1 if angle > math.pi else 0
        parts.append(f'<path d="M0,0 L0,-1 A1,1 0 {large},1 {x:.4f},{y:.4f} Z" fill="{WITH_COLOR}"/>')
        parts.append(f'<path d="M0,0 L{x:.4f},{y:.4f} A1,1 0 {1 - large},1 0,-1 Z" fill="{WITHOUT_COLOR}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


class ReminderOverviewView(BaseView):
    route_base = "/erinnerungen"
    default_view = "index"
    page_size = 50

    @expose("/")
    @has_access
    def index(self):
        now = utcnow()
        numbers = coverage(db.session, now, restrict)
        charts = {
            "past": pie(numbers["past"]["with"], numbers["past"]["without"], _("Letzte 7 Tage")),
            "future": pie(numbers["future"]["with"], numbers["future"]["without"], _("Nächste 7 Tage")),
        }
        return self.render_template("terminbuch/reminder_overview.html", title=_("Erinnerungsübersicht"),
                                    numbers=numbers, charts=charts, with_color=WITH_COLOR,
                                    without_color=WITHOUT_COLOR)

    @expose("/ohne/")
    @has_access
    def without(self):
        page = parse_id(request.args.get("page", "0"))
        if page is None:
            abort(400, _("Ungültige Seitenangabe."))
        statement = restrict(without_reminder(utcnow()), Booking).options(
            joinedload(Booking.customer), joinedload(Booking.service), joinedload(Booking.employee),
        ).limit(self.page_size + 1).offset(page * self.page_size)
        rows = list(db.session.scalars(statement).unique())
        can_activate = self.appbuilder.sm.has_access("set_reminder", "BookingView")
        return self.render_template(
            "terminbuch/reminder_without.html", title=_("Künftige Termine ohne Erinnerung"),
            bookings=rows[:self.page_size], has_next=len(rows) > self.page_size, page=page,
            can_activate=can_activate, fmt_datetime=fmt_datetime, reachable=reminder_channel,
        )
