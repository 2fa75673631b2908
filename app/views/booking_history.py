"""Booking history list (issue 3, point 5): customer-name and comment-keyword filters,
sorting by customer, and a default recent date window on /bookingview/list/.

The comment keyword is served by an index (migration 8a1b2c3d4e50): PostgreSQL
`comment ILIKE '%word%'` on a pg_trgm GIN index, SQLite MATCH on the FTS5 table
`booking_comment_fts`. A keyword is the words (letters/digits) of the input, all of
which must occur; an input without any word matches nothing (on both databases).
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, time, timedelta, timezone
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import flash, redirect, request
from flask_appbuilder import expose, has_access
from flask_appbuilder.exceptions import FABException
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.filters import BaseFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField

from app.extensions import db
from app.formatting import to_local
from app.models import Booking, BookingStatus, Customer, Employee, Location, Service
from app.security import employee_scope
from app.views.base import check_list_args
from app.views.interface import EagerInterface

FTS_TABLE = "booking_comment_fts"
# Schema objects of the search migration that are not in the SQLAlchemy metadata:
# migrations/env.py and the drift test leave exactly these out of the comparison.
SEARCH_SCHEMA_OBJECTS = {
    "table": frozenset({FTS_TABLE, *(f"{FTS_TABLE}_{part}" for part in ("data", "idx", "docsize", "config"))}),
    "index": frozenset({"ix_booking_comment_trgm", "ix_customer_last_name_lower", "ix_customer_first_name_lower"}),
}
MAX_WORDS = 8
WORD = re.compile(r"\w+")
START_FILTER_ARG = re.compile(r"^_flt_\d_start_at$")
DATE_ARG_FORMAT = "%Y-%m-%d %H:%M:%S"
WINDOW_DAYS_BACK, WINDOW_DAYS_AHEAD = 30, 60
ALL_YEARS_FROM = "1970-01-01 00:00:00"

log = logging.getLogger(__name__)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic `include_object`: skip the search objects the metadata does not declare."""
    return name not in SEARCH_SCHEMA_OBJECTS.get(type_, ())


def keyword_words(value: str) -> list[str]:
    return WORD.findall(value or "")[:MAX_WORDS]


def fts_query(words: list[str]) -> str:
    """An FTS5 query that is always valid: every word a quoted string with prefix match."""
    return " ".join('"{}"*'.format(word.replace('"', '""')) for word in words)


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def comment_keyword_clause(value: str, dialect: str) -> sa.ColumnElement[bool]:
    words = keyword_words(value)
    if not words:
        return sa.false()
    if dialect == "sqlite":
        fts = sa.table(FTS_TABLE, sa.column("rowid"), sa.column(FTS_TABLE))
        matching = sa.select(fts.c.rowid).where(fts.c[FTS_TABLE].match(fts_query(words)))
        return Booking.id.in_(matching)
    return sa.and_(*(Booking.comment.ilike(f"%{like_escape(word)}%", escape="\\") for word in words))


def _name_matches(column, word: str, prefix: bool) -> sa.ColumnElement[bool]:
    lowered = sa.func.lower(column)
    if not prefix:
        return lowered.like(f"%{like_escape(word)}%", escape="\\")
    # the range lets the lower() index serve the prefix; LIKE keeps it exact under any collation
    upper = word[:-1] + chr(ord(word[-1]) + 1)
    return sa.and_(lowered >= word, lowered < upper, lowered.like(f"{like_escape(word)}%", escape="\\"))


def customer_name_clause(value: str, prefix: bool, customer_id=Booking.customer_id) -> sa.ColumnElement[bool] | None:
    """Every word of `value` must match the first or the last name (case-insensitive);
    `customer_id` is the column naming the customer (a booking's, a notification's …)."""
    words = (value or "").replace("\x00", "").lower().split()[:MAX_WORDS]
    if not words:
        return None
    ids = sa.select(Customer.id).where(*(
        sa.or_(_name_matches(Customer.last_name, word, prefix), _name_matches(Customer.first_name, word, prefix))
        for word in words
    ))
    return customer_id.in_(ids)


class CommentKeywordFilter(BaseFilter):
    name = _l("enthält die Wörter")
    arg_name = "tb_comment_words"

    def apply(self, query, value):
        return query.filter(comment_keyword_clause(value, db.session.get_bind().dialect.name))


class CustomerNameContainsFilter(BaseFilter):
    name = _l("enthält")
    arg_name = "tb_customer_contains"
    prefix = False

    def apply(self, query, value):
        clause = customer_name_clause(value, self.prefix)
        return query if clause is None else query.filter(clause)


class CustomerNameStartsWithFilter(CustomerNameContainsFilter):
    name = _l("beginnt mit")
    arg_name = "tb_customer_starts"
    prefix = True


class BookingHistoryInterface(EagerInterface):
    """BookingView's data model: the custom filters replace FAB's for their columns
    (the comment: only the index-served keyword filter), and "customer" sorts by last name."""

    custom_filters = {
        "customer_name": (CustomerNameContainsFilter, CustomerNameStartsWithFilter),
        "comment": (CommentKeywordFilter,),
    }
    order_aliases = {"customer": "customer.last_name"}

    def apply_order_by(self, query, order_column, order_direction, *args, **kwargs):
        return super().apply_order_by(
            query, self.order_aliases.get(order_column, order_column), order_direction, *args, **kwargs
        )


def default_window(now: datetime | None = None) -> tuple[str, str]:
    """From 30 days ago to 60 days ahead, whole local days, as FAB's start_at filter values."""
    today = to_local(now or datetime.now(timezone.utc)).date()
    start = datetime.combine(today - timedelta(days=WINDOW_DAYS_BACK), time())
    end = datetime.combine(today + timedelta(days=WINDOW_DAYS_AHEAD + 1), time())
    return start.strftime(DATE_ARG_FORMAT), end.strftime(DATE_ARG_FORMAT)


def _without_start_filters() -> list[tuple[str, str]]:
    return [(key, value) for key, value in request.args.items(multi=True)
            if not START_FILTER_ARG.match(key) and not key.startswith("page_")]


def window_links() -> dict[str, str]:
    """The list's URL with the other filters kept and the date window replaced."""
    start, end = default_window()
    today = datetime.strptime(start, DATE_ARG_FORMAT) + timedelta(days=WINDOW_DAYS_BACK)
    year_start = (today - timedelta(days=365)).strftime(DATE_ARG_FORMAT)
    year_end = (today + timedelta(days=366)).strftime(DATE_ARG_FORMAT)
    base = _without_start_filters()

    def link(*window: tuple[str, str]) -> str:
        return f"{request.path}?{urlencode(base + list(window))}"

    return {
        "recent": link(("_flt_1_start_at", start), ("_flt_2_start_at", end)),
        "year": link(("_flt_1_start_at", year_start), ("_flt_2_start_at", year_end)),
        "all": link(("_flt_1_start_at", ALL_YEARS_FROM)),
    }


def _choices(*columns, order_by=None, where=None):
    """Options of a relation filter from one light query (id and label columns, no ORM
    objects): FAB's own select loads every related object twice (count and rows)."""
    def choices() -> list[tuple[str, str]]:
        stmt = sa.select(*columns).order_by(*(order_by or columns[1:]))
        if where is not None:
            condition = where()
            stmt = stmt if condition is None else stmt.where(condition)
        return [(str(pk), " ".join(str(part) for part in label if part)) for pk, *label in db.session.execute(stmt)]

    return choices


def _own_employee():
    """An Employee's employee select offers only themself (their list holds nothing else)."""
    scope = employee_scope()
    return None if scope is None else Employee.id == scope


SEARCH_FIELDS = {
    "customer_name": StringField(_l("Kund:in")),
    "employee": SelectField(_l("Mitarbeiter:in"), widget=Select2Widget(), choices=_choices(
        Employee.id, Employee.first_name, Employee.last_name, where=_own_employee)),
    "service": SelectField(_l("Dienstleistung"), widget=Select2Widget(), choices=_choices(Service.id, Service.name)),
    "status": SelectField(_l("Status"), widget=Select2Widget(), choices=_choices(
        BookingStatus.id, BookingStatus.name, order_by=[BookingStatus.position])),
    "location": SelectField(_l("Filiale"), widget=Select2Widget(), choices=_choices(Location.id, Location.name)),
}


class BookingHistoryMixin:
    """/list/ without a start_at filter redirects to the same URL with the recent
    window, so the page never walks OFFSETs through all years and the URL stays
    shareable; the page shows the window and links to widen it."""

    list_template = "terminbuch/booking_list.html"
    search_form_extra_fields = SEARCH_FIELDS

    @expose("/list/")
    @has_access
    def list(self):
        check_list_args(self)  # bad arguments answer 400 before any redirect
        if not any(START_FILTER_ARG.match(key) for key in request.args):
            start, end = default_window()
            query = list(request.args.items(multi=True)) + [("_flt_1_start_at", start), ("_flt_2_start_at", end)]
            return redirect(f"{request.path}?{urlencode(query)}")
        self.update_redirect()
        try:
            widgets = self._list()
        except FABException as exc:  # as FAB's own list does
            log.warning("booking list refused: %s", exc)
            flash(_("Die Liste konnte mit diesen Angaben nicht geladen werden."), "warning")
            return redirect(self.get_redirect())
        return self.render_template(
            self.list_template, title=self.list_title, widgets=widgets, window_links=window_links(),
        )
