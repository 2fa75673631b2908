"""Startseite."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import g, redirect, url_for
from flask_appbuilder import IndexView, expose
from sqlalchemy import func, select

from app.extensions import db
from app.formatting import business_tz, to_local
from app.models import Booking, Customer
from app.security import restrict
from app.views.customer_metrics import active_metrics


class HomeView(IndexView):
    index_template = "terminbuch/index.html"

    @expose("/")
    def index(self):
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return redirect(url_for(f"{self.appbuilder.sm.auth_view.endpoint}.login"))
        # The same window as the linked list's search (FAB: "greater than", "smaller than"),
        # so the number on the card is the number of rows behind the link.
        now = to_local(datetime.now(timezone.utc)).replace(second=0, microsecond=0, tzinfo=None)
        until = now + timedelta(days=7)
        tz = business_tz()
        upcoming = restrict(
            select(func.count(Booking.id)).where(
                Booking.start_at > now.replace(tzinfo=tz), Booking.start_at < until.replace(tzinfo=tz)
            ),
            Booking,
        )
        counts = {
            "bookings_next_7_days": db.session.scalar(upcoming),
            "customers": db.session.scalar(restrict(select(func.count(Customer.id)), Customer)),
        }
        links = {
            "bookings_next_7_days": url_for(
                "BookingView.list", _flt_1_start_at=f"{now:%Y-%m-%d %H:%M:%S}",
                _flt_2_start_at=f"{until:%Y-%m-%d %H:%M:%S}",
            ),
        }
        return self.render_template(
            self.index_template, appbuilder=self.appbuilder, counts=counts, links=links,
            active_metrics=active_metrics(),
        )
