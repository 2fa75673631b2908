"""Base classes every Terminbuch view uses: row rules, capped page size,
actions that re-check rows, write checks, AJAX selects for big tables."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from flask import abort, current_app, flash, has_request_context, jsonify, redirect, request, url_for
from flask_appbuilder import ModelRestApi, ModelView, expose, has_access
from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.fields import AJAXSelectField
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import or_, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import MANYTOONE
from werkzeug.exceptions import BadRequest
from wtforms.fields.core import UnboundField
from wtforms.validators import DataRequired, Optional

from app.extensions import db
from app.formatting import business_tz, to_local
from app.models import Booking, Customer
from app.security import restrict, row_filters, row_predicate
from app.views.history import HistoryMixin
from app.views.validators import parse_id

# Tables that grow with the business (100k customers, 1M bookings): a relation to
# them in a form or a search filter renders every row as an <option>.
LARGE_MODELS = (Customer, Booking)


def capped_page_size(page_size: int | None, default: int) -> int:
    maximum = current_app.config.get("MAX_PAGE_SIZE", 100)
    if not page_size or page_size < 1:
        return default
    return min(page_size, maximum)


PAGING_ARG = re.compile(r"^(page|psize)_")


FILTER_ARG = re.compile(r"^_flt_(\d)_(.*)$")  # FAB's own pattern


def check_paging_args() -> None:
    """FAB int()s every `page_…`/`psize_…` argument unchecked (a 500 on `psize_X=abc`)
    and passes a negative page on as a negative OFFSET (a 500 on PostgreSQL): 400 instead."""
    for key, value in request.args.items(multi=True):
        if PAGING_ARG.match(key) and parse_id(value) is None:
            abort(400, _("Ungültige Seitenangabe."))


BOOLEAN_WORDS = {"y", "n", "yes", "no", "t", "f", "true", "false", "1", "0", "on", "off"}


def _valid_filter_value(datamodel, col: str, value: str) -> bool:
    """Values the database can compare with the column (PostgreSQL raises on `'abc'`
    against a number, boolean or foreign key; SQLite silently compares)."""
    value = value.strip()
    if datamodel.is_relation(col) or datamodel.is_integer(col):
        return parse_id(value.removeprefix("-")) is not None
    if datamodel.is_numeric(col) or datamodel.is_float(col):
        try:
            float(value.replace(",", "."))
        except ValueError:
            return False
        return True
    if datamodel.is_boolean(col):
        return value.lower() in BOOLEAN_WORDS
    return True


def check_list_args(view) -> None:
    """Paging as above; `_flt_<n>_<column>` with n beyond the column's filters (FAB
    indexes its filter list unchecked: IndexError) or a value the column's type
    cannot hold (a DataError on PostgreSQL): 400 instead of a 500."""
    check_paging_args()
    filters = view._filters._all_filters
    for key, values in request.args.lists():
        match = FILTER_ARG.match(key)
        if not match or match.group(2) not in filters:
            continue
        col = match.group(2)
        if int(match.group(1)) >= len(filters[col]) or not all(
                _valid_filter_value(view.datamodel, col, value) for value in values):
            abort(400, _("Ungültiger Filter."))


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def reject_nul_bytes() -> None:
    """PostgreSQL refuses a NUL character in a string (the driver raises: a 500 on
    `?_flt_0_last_name=%00`, `lookup?q=%00`, a JSON "\\u0000"): 400 before any view runs.
    Registered app-wide in create_app, so FAB's own views (login) are covered too."""
    values = [value for key, items in request.args.lists() for value in (key, *items)]
    if request.is_json:
        values += _strings(request.get_json(silent=True))
    elif request.method in ("POST", "PUT", "PATCH"):
        values += [value for key, items in request.form.lists() for value in (key, *items)]
    if any("\x00" in value for value in values):
        abort(400, _("Ungültiges Zeichen in der Anfrage."))


def deny():
    """FAB ≥ 5.2.3 behaviour for routes FAB does not guard itself: 403 for a
    logged-in user without the permission, the login page for anonymous users."""
    if current_user.is_authenticated:
        abort(403)
    flash(_("Bitte melden Sie sich an."), "warning")
    return redirect(url_for(f"{current_app.appbuilder.sm.auth_view.endpoint}.login", next=request.url))


def plain_value(value: Any) -> Any:
    """Default display of a value: nothing for None, Ja/Nein for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("Ja") if value else _("Nein")
    return value


def sync_foreign_keys(item: Any) -> None:
    """Copy each set many-to-one relation into its foreign-key column, as the flush
    would: a form or the API sets `booking.employee`, and until a flush
    `booking.employee_id` still names the old employee."""
    state = sa_inspect(item)
    for rel in state.mapper.relationships:
        if rel.direction is not MANYTOONE or rel.viewonly or not state.attrs[rel.key].history.has_changes():
            continue  # only relations set in this change (a loaded one may be staler than its column)
        related = state.dict[rel.key]
        for local, remote in rel.local_remote_pairs:
            if related is None:
                value = None
            else:
                value = getattr(related, sa_inspect(related).mapper.get_property_by_column(remote).key)
                if value is None:  # a related row not stored yet: the flush will fill it in
                    continue
            key = state.mapper.get_property_by_column(local).key
            if getattr(item, key) != value:
                setattr(item, key, value)


def label_blank_choices(form_class) -> None:
    """The empty choice of an optional relation select reads "–": FAB leaves its label
    empty and WTForms then shows the value, FAB's "__None"."""
    for unbound in vars(form_class).values():
        if isinstance(unbound, UnboundField) and unbound.kwargs.get("allow_blank") \
                and not unbound.kwargs.get("blank_text"):
            unbound.kwargs["blank_text"] = "–"


class WriteCheckMixin:
    """Privilege re-check on every write (Airflow's pattern): `check_write(item)`
    raises ValueError with a German message when the current user may not
    store this item; forms flash it, the API answers 400. Nothing is stored."""

    # relation attribute → model: the related row must be visible to the writer
    visible_relations: dict[str, type] = {}

    def check_write(self, item: Any) -> None:
        for attr, model in self.visible_relations.items():
            related = getattr(item, attr, None)
            if related is None:
                continue
            if row_predicate(model) is None:
                continue
            visible = db.session.scalar(
                restrict(select(model.id).where(model.id == related.id), model)
            )
            if visible is None:
                raise ValueError(_("Keine Berechtigung für den gewählten Eintrag."))

    def checked_write(self, item: Any) -> None:
        """Run `check_write` on the item as it will be stored (foreign keys synced with
        the relations set) against the database *before* this write: without autoflush
        (the pending change must not vouch for itself — moving an own booking to a
        colleague's customer flushed first and so made that customer "served"); a
        refused change is rolled back so nothing of it can be flushed later."""
        try:
            with db.session.no_autoflush:
                sync_foreign_keys(item)
                self.check_write(item)
        except Exception:
            db.session.rollback()
            raise

    def pre_add(self, item: Any) -> None:
        self.checked_write(item)

    def pre_update(self, item: Any) -> None:
        self.checked_write(item)


class SecureModelView(HistoryMixin, WriteCheckMixin, ModelView):
    """A ModelView whose every route applies the model's row rules; a versioned model
    gets the "Verlauf" tab on its detail page (HistoryMixin)."""

    page_size = 25
    list_template = "appbuilder/general/model/list.html"
    show_template = "terminbuch/show.html"  # tabs + blocks for history/status panels
    # FAB's /download/<filename> serves any file of UPLOAD_FOLDER to anyone with
    # can_download on any view; no model here has a file column. A view that gets
    # uploads adds its own, row-checked download route.
    exclude_route_methods = {"download"}

    def __init__(self, *args, **kwargs):
        if not self.base_filters:
            self.base_filters = row_filters()
        super().__init__(*args, **kwargs)
        shown = set(self.list_columns) | set(self.show_columns)
        self.formatters_columns = {**dict.fromkeys(shown, plain_value), **self.formatters_columns}

    @property
    def _related_views(self):
        """Related lists the current user may list, in the order of `related_views` (FAB
        collects them in the order the views were registered) — FAB itself shows all."""
        views = self.__dict__.setdefault("_all_related_views", [])
        if not has_request_context():
            return views  # the list itself: FAB appends to it while registering views
        order = {cls: index for index, cls in enumerate(self.related_views or [])}
        views = sorted(views, key=lambda view: order.get(type(view), len(order)))
        sm = self.appbuilder.sm
        return [view for view in views if sm.has_access("can_list", view.class_permission_name)]

    @_related_views.setter
    def _related_views(self, value):
        self.__dict__["_all_related_views"] = value

    def _init_properties(self):
        """FAB's default search columns are every column and relation: a relation to a
        large table (every booking as an <option>) or to the version history. Left out;
        a view that declares its search_columns gets exactly those."""
        declared = bool(self.search_columns)
        super()._init_properties()
        if not declared:
            self.search_columns = [col for col in self.search_columns if self._default_searchable(col)]
            self._filters = self.datamodel.get_filters(self.search_columns)

    def _default_searchable(self, col: str) -> bool:
        if not self.datamodel.is_relation(col):
            return True
        related = self.datamodel.get_related_model(col)
        return related not in LARGE_MODELS and not related.__name__.endswith("Version")

    def _init_forms(self):
        """Relation selects of the add/edit/search forms offer only rows the user may see
        (an Employee's booking form lists only themself, not every colleague). Drop search
        columns FAB can neither filter nor put in the search form (a `Time` column: the
        list page died with KeyError while rendering the search)."""
        self.add_form_query_rel_fields = self._row_rule_selects(
            self.add_columns, self.add_form_query_rel_fields, self.add_form_extra_fields)
        self.edit_form_query_rel_fields = self._row_rule_selects(
            self.edit_columns, self.edit_form_query_rel_fields, self.edit_form_extra_fields)
        self.search_form_query_rel_fields = self._row_rule_selects(
            self.search_columns, self.search_form_query_rel_fields, self.search_form_extra_fields)
        super()._init_forms()
        for form in (self.add_form, self.edit_form):
            label_blank_choices(form)
        searchable = set(self._filters.get_search_filters())
        usable = [col for col in self.search_columns
                  if col in searchable and getattr(self.search_form, col, None) is not None]
        if usable != self.search_columns:
            self.search_columns = usable
            self._filters = self.datamodel.get_filters(usable)

    def _row_rule_selects(self, columns, configured, extra_fields) -> dict[str, list]:
        selects = dict(configured or {})
        for col in columns or []:
            if col not in selects and col not in (extra_fields or {}) and self.datamodel.is_relation(col):
                selects[col] = row_filters()
        return selects

    def _safe_order(self, view, order_column: str, order_direction: str) -> tuple[str, str]:
        """Only the view's declared order columns (FAB orders by any attribute named in
        the URL — a 500 on a bogus name, and an oracle on columns the list hides)."""
        if order_column and order_column not in (view.order_columns or []):
            return "", ""
        if order_direction not in ("asc", "desc"):
            order_direction = "asc"
        return order_column, order_direction

    def _list(self, **kwargs):
        check_list_args(self)
        return super()._list(**kwargs)

    def _show(self, pk):
        check_paging_args()
        return super()._show(pk)

    def _add(self):
        check_list_args(self)
        return super()._add()

    def _edit(self, pk):
        check_list_args(self)
        return super()._edit(pk)

    def _get_list_widget(self, filters, actions=None, order_column="", order_direction="",
                         page=None, page_size=None, widgets=None, **kwargs):
        page_size = capped_page_size(page_size, self.page_size)
        order_column, order_direction = self._safe_order(self, order_column, order_direction)
        return super()._get_list_widget(
            filters, actions=actions, order_column=order_column,
            order_direction=order_direction, page=page, page_size=page_size,
            widgets=widgets, **kwargs,
        )

    def _get_related_view_widget(self, item, related_view, order_column="",
                                 order_direction="", page=None, page_size=None):
        page_size = capped_page_size(page_size, related_view.page_size)
        order_column, order_direction = self._safe_order(related_view, order_column, order_direction)
        return super()._get_related_view_widget(
            item, related_view, order_column=order_column,
            order_direction=order_direction, page=page, page_size=page_size,
        )

    def process_form(self, form, is_created):
        """Form datetimes are wall-clock times of the business: make them aware UTC."""
        tz = business_tz()
        for field in form:
            if isinstance(field.data, datetime) and field.data.tzinfo is None:
                field.data = field.data.replace(tzinfo=tz).astimezone(timezone.utc)

    def prefill_form(self, form, pk):
        for field in form:
            if isinstance(field.data, datetime) and field.data.tzinfo is not None:
                field.data = to_local(field.data).replace(tzinfo=None, microsecond=0)

    def _visible_item(self, pk: Any):
        return self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)

    @expose("/action/<string:name>/<pk>", methods=["POST"])
    def action(self, name, pk):
        """Single-item action: POST only (CSRF-checked), item re-fetched with row rules."""
        if name not in self.actions:
            abort(404)
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            return deny()
        item = self._visible_item(pk)
        if item is None:
            abort(404)
        return self.actions.get(name).func(item)

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        """List action: every selected id is re-fetched with the row rules; ids the
        user may not see are dropped, so a forged id changes nothing."""
        name = request.form.get("action", "")
        if name not in self.actions:
            abort(400)
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            return deny()
        items = [item for item in (self._visible_item(pk) for pk in request.form.getlist("rowid")) if item]
        if not items:
            flash(_("Keine gültigen Einträge ausgewählt."), "warning")
            return redirect(self.get_redirect())
        return self.actions.get(name).func(items)

    def pre_delete(self, item: Any) -> None:
        self.checked_write(item)

    def _delete(self, pk):
        """FAB's delete, with a German message when the database refuses it (FAB
        flashes the empty text of its DatabaseException)."""
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            abort(404)
        try:
            self.pre_delete(item)
        except Exception as exc:
            flash(str(exc), "danger")
        else:
            try:
                self.datamodel.delete(item)
            except DatabaseException as exc:
                refused = isinstance(exc.__cause__, IntegrityError)
                flash(_("Der Eintrag kann nicht gelöscht werden: andere Einträge verweisen auf ihn "
                        "(z. B. Termine, Karten oder Rechnungen).") if refused
                      else _("Der Eintrag konnte nicht gelöscht werden."), "danger")
            else:
                self.post_delete(item)
                flash(self.delete_row_message, "success")
            self.update_redirect()


class SecureApi(WriteCheckMixin, ModelRestApi):
    """A REST API applying the same row rules and write checks as the screens."""

    max_page_size = 100

    def __init__(self, *args, **kwargs):
        if not self.base_filters:
            self.base_filters = row_filters()
        super().__init__(*args, **kwargs)

    def checked_write(self, item: Any) -> None:
        """As for the screens; a refusal answers 400 with the German message."""
        try:
            super().checked_write(item)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc

    def pre_delete(self, item: Any) -> None:
        self.checked_write(item)

    def post_headless(self):
        return self._answered(super().post_headless)

    def put_headless(self, pk):
        return self._answered(super().put_headless, pk)

    def delete_headless(self, pk):
        return self._answered(super().delete_headless, pk)

    def _answered(self, write, *args):
        """A refused write check answers 400 with the German message alone (FAB prefixes
        "400 Bad Request: "); a value the database cannot take (a related id "abc", a number
        beyond its column) 400 instead of FAB's 500. Nothing is stored."""
        try:
            with db.session.no_autoflush:  # the checks see the stored rows; the one flush is the write's
                return self._answer(write, *args)
        except BadRequest as exc:
            db.session.rollback()
            return self.response_400(message=exc.description)
        except DataError:
            db.session.rollback()
            return self.response_400(message=_("Ein Wert passt nicht in sein Feld (Zahl zu groß oder keine Zahl)."))

    def _answer(self, write, *args):
        """The write itself; a subclass answers its own refusals here (overlap → 409, …)."""
        return write(*args)


# --- AJAX select for relations to big tables ---------------------------------
class AjaxSelectWidget:
    """A <select> that searches the server as you type (select2 4 `ajax`), so a
    form never embeds every customer as an <option>."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def __call__(self, field, **kwargs):
        item = field.data
        option = ""
        if item is not None and hasattr(item, "id"):
            option = f'<option value="{item.id}" selected>{escape(str(item))}</option>'
        placeholder = escape(_("Suchen …"))
        return Markup(
            f'<select id="{field.id}" name="{field.name}" class="form-control tb-ajax-select" '
            f'data-url="{escape(self.endpoint)}" data-placeholder="{placeholder}">'
            f'<option value=""></option>{option}</select>'
        )


def ajax_field(label: str, model: type, col_name: str, endpoint: str, required: bool = True):
    """Form field for a relation chosen by AJAX search; loads the chosen row with row rules."""

    class RowRuleAjaxField(AJAXSelectField):
        def process_data(self, value):
            """Keep the related row itself (FAB's field turns it into a pk through the
            parent's datamodel, which this field does not have: KeyError on every edit page)."""
            self.data = value

        def process_formdata(self, valuelist):
            self.data = None
            if valuelist and valuelist[0]:
                try:
                    pk = int(valuelist[0])
                except ValueError:
                    return
                self.data = db.session.scalar(restrict(select(model).where(model.id == pk), model))

    return RowRuleAjaxField(
        label,
        validators=[DataRequired(message=_l("Bitte auswählen."))] if required else [Optional()],
        datamodel=SQLAInterface(model),
        col_name=col_name,
        widget=AjaxSelectWidget(endpoint),
    )


def lookup_response(model: type, search_columns: list, order_by, limit: int = 20):
    """JSON for the AJAX select: rows visible to the current user matching ?q=."""
    term = (request.args.get("q") or "").strip()
    stmt = restrict(select(model), model)
    if term:
        for word in term.split()[:4]:
            stmt = stmt.where(or_(*(col.ilike(f"{word}%") for col in search_columns)))
    stmt = stmt.order_by(*order_by).limit(limit)
    rows = db.session.scalars(stmt).all()
    return jsonify(results=[{"id": row.id, "text": str(row)} for row in rows])


class LookupMixin:
    """Adds GET /lookup?q= to a view: the AJAX select's data source."""

    lookup_columns: list = []
    lookup_order: list = []

    @expose("/lookup")
    @has_access
    def lookup(self):
        model = self.datamodel.obj
        return lookup_response(model, self.lookup_columns, self.lookup_order or [model.id])
