"""Startseite."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import g, redirect, url_for
from flask_appbuilder import IndexView, expose
from sqlalchemy import func, select

from app.extensions import db
from app.models import Booking, Customer
from app.security import restrict


class HomeView(IndexView):
    index_template = "terminbuch/index.html"

    @expose("/")
    def index(self):
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return redirect(url_for(f"{self.appbuilder.sm.auth_view.endpoint}.login"))
        now = datetime.now(timezone.utc)
        upcoming = restrict(
            select(func.count(Booking.id)).where(
                Booking.start_at >= now, Booking.start_at < now + timedelta(days=7)
            ),
            Booking,
        )
        counts = {
            "bookings_next_7_days": db.session.scalar(upcoming),
            "customers": db.session.scalar(restrict(select(func.count(Customer.id)), Customer)),
        }
        return self.render_template(self.index_template, appbuilder=self.appbuilder, counts=counts)
