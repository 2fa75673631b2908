"""Status workflow on screens: "Status ändern" (list and detail), the status history
on the booking's detail page, and the "Offene Anfragen" dashboard."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.formatting import fmt_datetime, status_badge
from app.models import Booking, BookingStatus
from app.security import restrict
from app.services.status import change_status, check_cancel_reason, status_history
from app.views.validators import parse_id

CHANGE_STATUS = "change_status"
OPEN_KINDS = ("start", "neutral")


def all_statuses() -> list[BookingStatus]:
    return list(db.session.scalars(select(BookingStatus).order_by(BookingStatus.position, BookingStatus.id)))


def local_path(value: str | None) -> str | None:
    """`value` when it is a path on this site (no open redirect), else None."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


class StatusChangeMixin:
    """For BookingView: the action "Status ändern" and the detail page's status panel.

    The list's action (and the "Offene Anfragen" page) POSTs the selected ids to
    `action_post`, which re-fetches each with the row rules; without a chosen status
    the action shows the form, with one it changes the status of every booking.
    The detail page's form POSTs to `action/change_status/<pk>` (row-checked the same way)."""

    @action(CHANGE_STATUS, _l("Status ändern"), None, "fa-flag", multiple=True, single=False)
    def change_status_action(self, items):
        single = not isinstance(items, list)
        items = [items] if single else items
        if "status_id" not in request.form:
            return self.render_status_form(items)
        status = self._chosen_status()
        reason = request.form.get("reason", "")
        try:
            if status is None:
                raise ValueError(_("Bitte einen Status wählen."))
            check_cancel_reason(status, reason)
            for item in items:
                change_status(db.session, item, status, reason)
            db.session.commit()
        except ValueError as exc:
            db.session.rollback()
            if single:
                flash(str(exc), "danger")
                return redirect(url_for(f"{self.endpoint}.show", pk=items[0].id))
            return self.render_status_form(items, error=str(exc), status_id=request.form.get("status_id"),
                                           reason=reason)
        flash(_("Status von %(count)d Termin(en) auf „%(status)s“ gesetzt.", count=len(items), status=status.name),
              "success")
        if single:
            return redirect(url_for(f"{self.endpoint}.show", pk=items[0].id))
        return redirect(local_path(request.form.get("next")) or url_for(f"{self.endpoint}.list"))

    @staticmethod
    def _chosen_status() -> BookingStatus | None:
        status_id = parse_id(request.form.get("status_id"))
        return db.session.get(BookingStatus, status_id) if status_id is not None else None

    def render_status_form(self, items, error: str | None = None, status_id: str | None = None, reason: str = ""):
        return self.render_template(
            "terminbuch/status_form.html", title=_("Status ändern"), items=items, statuses=all_statuses(),
            error=error, status_id=status_id, reason=reason, next=local_path(request.form.get("next")),
            action_url=url_for(f"{self.endpoint}.action_post"), action_name=CHANGE_STATUS,
        )

    def render_template(self, template, **kwargs):
        """Our pages get the formatters; the detail page the status history and form."""
        kwargs.setdefault("fmt_datetime", fmt_datetime)
        kwargs.setdefault("status_badge", status_badge)
        if template == self.show_template and "pk" in kwargs:
            kwargs.update(
                status_steps=status_history(db.session, int(kwargs["pk"])),
                statuses=all_statuses(),
                can_change_status=self.appbuilder.sm.has_access(CHANGE_STATUS, self.class_permission_name),
                change_status_url=url_for(f"{self.endpoint}.action", name=CHANGE_STATUS, pk=kwargs["pk"]),
            )
        return super().render_template(template, **kwargs)


class OpenRequestsView(BaseView):
    """Bookings waiting for a decision (statuses of kind start/neutral), upcoming
    first; "bestätigte anzeigen" adds confirmed ones. Row rules apply."""

    route_base = "/openrequests"
    default_view = "list"
    page_size = 50

    @expose("/list/")
    @has_access
    def list(self):
        show_confirmed = request.args.get("confirmed") == "1"
        page = parse_id(request.args.get("page", "0"))
        if page is None:
            abort(400, _("Ungültige Seitenangabe."))
        kinds = OPEN_KINDS + (("confirmation",) if show_confirmed else ())
        stmt = restrict(
            select(Booking).join(Booking.status)
            .where(BookingStatus.kind.in_(kinds), Booking.start_at >= datetime.now(timezone.utc)),
            Booking,
        ).options(
            joinedload(Booking.customer), joinedload(Booking.service), joinedload(Booking.employee),
            joinedload(Booking.status),
        ).order_by(Booking.start_at, Booking.id).limit(self.page_size + 1).offset(page * self.page_size)
        rows = list(db.session.scalars(stmt).unique())
        return self.render_template(
            "terminbuch/open_requests.html", title=_("Offene Anfragen"), bookings=rows[:self.page_size],
            has_next=len(rows) > self.page_size, page=page, show_confirmed=show_confirmed,
            can_change_status=self.appbuilder.sm.has_access(CHANGE_STATUS, "BookingView"),
            action_name=CHANGE_STATUS, fmt_datetime=fmt_datetime, status_badge=status_badge,
        )
