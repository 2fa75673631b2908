"""Base classes every Terminbuch view uses: row rules, capped page size,
actions that re-check rows, write checks, AJAX selects for big tables."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import abort, current_app, flash, has_request_context, jsonify, redirect, request
from flask_appbuilder import ModelRestApi, ModelView, expose, has_access
from flask_appbuilder.fields import AJAXSelectField
from flask_appbuilder.models.sqla.interface import SQLAInterface
from markupsafe import Markup, escape
from sqlalchemy import or_, select
from werkzeug.exceptions import BadRequest
from wtforms.validators import DataRequired, Optional

from app.extensions import db
from app.formatting import business_tz, to_local
from app.security import restrict, row_filters, row_predicate


def capped_page_size(page_size: int | None, default: int) -> int:
    maximum = current_app.config.get("MAX_PAGE_SIZE", 100)
    if not page_size or page_size < 1:
        return default
    return min(page_size, maximum)


def plain_value(value: Any) -> Any:
    """Default display of a value: nothing for None, Ja/Nein for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Ja" if value else "Nein"
    return value


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
                raise ValueError("Keine Berechtigung für den gewählten Eintrag.")

    def pre_add(self, item: Any) -> None:
        self.check_write(item)

    def pre_update(self, item: Any) -> None:
        self.check_write(item)


class SecureModelView(WriteCheckMixin, ModelView):
    """A ModelView whose every route applies the model's row rules."""

    page_size = 25
    list_template = "appbuilder/general/model/list.html"

    def __init__(self, *args, **kwargs):
        if not self.base_filters:
            self.base_filters = row_filters()
        super().__init__(*args, **kwargs)
        shown = set(self.list_columns) | set(self.show_columns)
        self.formatters_columns = {**dict.fromkeys(shown, plain_value), **self.formatters_columns}

    @property
    def _related_views(self):
        """Related lists the current user may list; FAB itself shows all of them."""
        views = self.__dict__.setdefault("_all_related_views", [])
        if not has_request_context():
            return views
        sm = self.appbuilder.sm
        return [view for view in views if sm.has_access("can_list", view.class_permission_name)]

    @_related_views.setter
    def _related_views(self, value):
        self.__dict__["_all_related_views"] = value

    def _get_list_widget(self, filters, actions=None, order_column="", order_direction="",
                         page=None, page_size=None, widgets=None, **kwargs):
        page_size = capped_page_size(page_size, self.page_size)
        return super()._get_list_widget(
            filters, actions=actions, order_column=order_column,
            order_direction=order_direction, page=page, page_size=page_size,
            widgets=widgets, **kwargs,
        )

    def _get_related_view_widget(self, item, related_view, order_column="",
                                 order_direction="", page=None, page_size=None):
        page_size = capped_page_size(page_size, related_view.page_size)
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
                field.data = to_local(field.data).replace(tzinfo=None)

    def _visible_item(self, pk: Any):
        return self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)

    @expose("/action/<string:name>/<pk>", methods=["POST"])
    def action(self, name, pk):
        """Single-item action: POST only (CSRF-checked), item re-fetched with row rules."""
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            flash("Zugriff verweigert.", "danger")
            return redirect(self.get_redirect())
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
            flash("Zugriff verweigert.", "danger")
            return redirect(self.get_redirect())
        items = [item for item in (self._visible_item(pk) for pk in request.form.getlist("rowid")) if item]
        if not items:
            flash("Keine gültigen Einträge ausgewählt.", "warning")
            return redirect(self.get_redirect())
        return self.actions.get(name).func(items)

    def pre_delete(self, item: Any) -> None:
        self.check_write(item)


class SecureApi(WriteCheckMixin, ModelRestApi):
    """A REST API applying the same row rules and write checks as the screens."""

    max_page_size = 100

    def __init__(self, *args, **kwargs):
        if not self.base_filters:
            self.base_filters = row_filters()
        super().__init__(*args, **kwargs)

    def pre_add(self, item: Any) -> None:
        try:
            self.check_write(item)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc

    def pre_update(self, item: Any) -> None:
        try:
            self.check_write(item)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc


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
        return Markup(
            f'<select id="{field.id}" name="{field.name}" class="form-control tb-ajax-select" '
            f'data-url="{escape(self.endpoint)}" data-placeholder="Suchen …">'
            f'<option value=""></option>{option}</select>'
        )


def ajax_field(label: str, model: type, col_name: str, endpoint: str, required: bool = True):
    """Form field for a relation chosen by AJAX search; loads the chosen row with row rules."""

    class RowRuleAjaxField(AJAXSelectField):
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
        validators=[DataRequired(message="Bitte auswählen.")] if required else [Optional()],
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
