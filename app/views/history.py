"""Audit trail screens: the "Verlauf" tab of every detail page (HistoryMixin, part
of SecureModelView), and the Owner's HistoryView: revert a row to an earlier
version, "Gelöschte Einträge" with restore, and the purge of old history.

Every state change is a POST (CSRF) with a confirmation step: the first POST
shows what will happen, the second (with `confirm=1`) does it. A POST whose
form names nothing renders the page with an error (200), one that names a row
or version that does not exist (or that the user may not see) answers 404."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from sqlalchemy import inspect as sa_inspect

from app.extensions import db
from app.services.history import (
    DELETE,
    FieldChange,
    deleted_entries,
    entry_summary,
    field_label,
    foreign_keys,
    format_value,
    has_older,
    history_labels,
    is_deleted,
    is_versioned,
    purge_cutoff,
    purge_history,
    purgeable_count,
    related_names,
    restorable_models,
    restore_row,
    retention_days,
    revert_row,
    shown_columns,
    user_columns,
    user_names,
    version_at,
    versions_of,
)

CASCADE_TEMPLATE = "appbuilder/general/model/show_cascade.html"
HISTORY_VIEW = "HistoryView"


def _int_pk(pk: Any) -> Any:
    try:
        return int(pk)
    except (TypeError, ValueError):
        return pk


class HistoryMixin:
    """Adds the "Verlauf" tab to the detail page of a versioned model. The page
    itself 404s for a row the user may not see (`_show` applies the row rules),
    so the history is shown exactly to those who may see the row."""

    history_enabled: bool = True
    history_limit: int = 50

    def history_on(self) -> bool:
        return self.history_enabled and is_versioned(self.datamodel.obj)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        pk = self._deserialize_pk_if_composite(pk)
        widgets = self._show(pk)
        template, extra = self.show_template, {}
        if self.history_on():
            extra = self.history_context(_int_pk(pk))
            if template == CASCADE_TEMPLATE:  # the same page with related lists below, plus the tab
                template, extra["cascade"] = "terminbuch/show.html", True
        return self.render_template(template, pk=pk, title=self.show_title, widgets=widgets,
                                    related_views=self._related_views, edit_url=self.edit_url(pk), **extra)

    def edit_url(self, pk) -> str | None:
        """The "Bearbeiten" button of the detail page, for users who may edit."""
        if "can_edit" not in (self.base_permissions or []) or "edit" in (self.exclude_route_methods or set()):
            return None
        if not self.appbuilder.sm.has_access("can_edit", self.class_permission_name):
            return None
        return url_for(f"{type(self).__name__}.edit", pk=pk)

    def history_labels(self) -> dict[str, Any]:
        """The view's own labels and the model's HISTORY_LABELS. FAB's generated
        labels ("Customer Id", plain str) are left out, so a foreign key gets its
        relation's label; a declared label is a lazy string, whatever the language."""
        own = {key: label for key, label in self.label_columns.items()
               if not (isinstance(label, str) and label == self._prettify_column(key))}
        return history_labels(self.datamodel.obj, own)

    def history_choices(self) -> dict[str, dict[Any, Any]]:
        """Stored value → shown name of the form's select fields (e.g. a booking's source)."""
        found: dict[str, dict[Any, Any]] = {}
        for extra in (self.add_form_extra_fields or {}, self.edit_form_extra_fields or {}):
            for key, unbound in extra.items():
                choices = getattr(unbound, "kwargs", {}).get("choices")
                if isinstance(choices, list | tuple) and all(isinstance(c, tuple) and len(c) == 2 for c in choices):
                    found.setdefault(key, dict(choices))
        return found

    def history_context(self, pk: Any) -> dict[str, Any]:
        before = request.args.get("history_before", type=int)
        model = self.datamodel.obj
        entries = versions_of(model, pk, self.history_labels(), limit=self.history_limit, before=before,
                              choices=self.history_choices())
        older = bool(entries) and has_older(db.session, model, pk, entries[-1].transaction_id)
        sm = self.appbuilder.sm
        return {
            "history": entries,
            "history_before": before,
            "history_older": entries[-1].transaction_id if older else None,
            "history_view": type(self).__name__,
            "history_can_revert": "can_edit" in (self.base_permissions or [])
            and sm.has_access("can_edit", self.class_permission_name) and sm.has_access("can_revert", HISTORY_VIEW),
        }


def history_views(appbuilder) -> dict[str, Any]:
    return {type(view).__name__: view for view in appbuilder.baseviews
            if isinstance(view, HistoryMixin) and view.history_on()}


def show_view_for(appbuilder, model: type):
    """The detail view of a model (the first registered one with a show page)."""
    for view in history_views(appbuilder).values():
        if view.datamodel.obj is model and "can_show" in (view.base_permissions or []):
            return view
    return None


def revert_preview(view, item: Any, transaction_id: int) -> list[FieldChange]:
    """The fields a revert would change: now → then."""
    model = type(item)
    version = version_at(db.session, model, sa_inspect(item).identity[0], transaction_id)
    fks, by_user = foreign_keys(model), user_columns(model)
    changes = [(key, getattr(item, key), getattr(version, key)) for key in shown_columns(model)
               if getattr(item, key) != getattr(version, key)]
    wanted: dict[type, set] = {}
    user_ids: set = set()
    for key, old, new in changes:
        if key in fks:
            wanted.setdefault(fks[key][1], set()).update({old, new})
        elif key in by_user:
            user_ids.update({old, new})
    names, users, labels = related_names(db.session, wanted), user_names(db.session, user_ids), view.history_labels()
    choices = view.history_choices()
    return [FieldChange(field_label(labels, key, fks), *(
        str(choices.get(key, {}).get(value, "")) or format_value(
            key, value, fks.get(key), names, users if key in by_user else None) for value in (old, new)))
        for key, old, new in changes]


class HistoryView(BaseView):
    """Owner only (see app/security.py): revert, Gelöschte Einträge, restore, purge."""

    route_base = "/history"
    default_view = "list"
    page_size = 25

    # --- Gelöschte Einträge -----------------------------------------------------
    @expose("/list/")
    @has_access
    def list(self):
        return self.render_list()

    def render_list(self, error: str | None = None):
        page = request.args.get("page", 0, type=int)
        page = max(page, 0)
        total, entries = deleted_entries(db.session, page=page, page_size=self.page_size)
        return self.render_template(
            "terminbuch/deleted_list.html", entries=entries, total=total, page=page,
            pages=(total + self.page_size - 1) // self.page_size, error=error,
            retention=retention_days(db.session),
        )

    @expose("/restore/", methods=["POST"])
    @has_access
    def restore(self):
        kind, pk = request.form.get("kind", ""), request.form.get("pk", type=int)
        model = restorable_models().get(kind)
        if model is None or pk is None:
            return self.render_restore(None, error=_("Bitte einen gelöschten Eintrag wählen."))
        if is_deleted(db.session, model, pk) is None:
            abort(404)
        entry = {"kind": kind, "pk": pk, "model": model}
        if request.form.get("confirm") != "1":
            return self.render_restore(entry)
        try:
            item, pets = restore_row(db.session, model, pk)
            db.session.commit()
        except ValueError as exc:
            db.session.rollback()
            return self.render_restore(entry, error=str(exc))
        if kind == "customer":
            flash(_("Kund:in wiederhergestellt (mit %(count)d Hund(en)); Dokumente kommen nicht zurück.",
                    count=pets), "success")
        else:
            flash(_("Termin wiederhergestellt."), "success")
        view = show_view_for(self.appbuilder, model)
        return redirect(url_for(f"{view.endpoint}.show", pk=item.id) if view else url_for(f"{self.endpoint}.list"))

    def render_restore(self, entry: dict | None, error: str | None = None):
        summary = entry_summary(db.session, entry["kind"], entry["pk"]) if entry is not None else ""
        return self.render_template("terminbuch/deleted_confirm.html", entry=entry, summary=summary, error=error)

    # --- revert ---------------------------------------------------------------------
    @expose("/revert/", methods=["POST"])
    @has_access
    def revert(self):
        view = history_views(self.appbuilder).get(request.form.get("view", ""))
        pk, tx = request.form.get("pk", type=int), request.form.get("version", type=int)
        if view is None or pk is None or tx is None:
            return self.render_template("terminbuch/history_revert.html", view=None,
                                        error=_("Bitte eine Version wählen."))
        if "can_edit" not in (view.base_permissions or []) or not self.appbuilder.sm.has_access(
                "can_edit", view.class_permission_name):
            abort(403)
        item = view._visible_item(pk)
        version = version_at(db.session, view.datamodel.obj, pk, tx) if item is not None else None
        if version is None or version.operation_type == DELETE:
            abort(404)
        context = {"view": view, "pk": pk, "version": tx, "item": str(item)}
        if request.form.get("confirm") != "1":
            return self.render_revert(context, revert_preview(view, item, tx))
        try:
            revert_row(db.session, item, tx)
            db.session.commit()
        except ValueError as exc:
            db.session.rollback()
            item = view._visible_item(pk)
            return self.render_revert(context, revert_preview(view, item, tx), error=str(exc))
        flash(_("Der frühere Stand wurde wiederhergestellt."), "success")
        return redirect(url_for(f"{view.endpoint}.show", pk=pk))

    def render_revert(self, context: dict, changes: list[FieldChange], error: str | None = None):
        return self.render_template("terminbuch/history_revert.html", changes=changes, error=error,
                                    show_url=url_for(f"{context['view'].endpoint}.show", pk=context["pk"]),
                                    **context)

    # --- purge ----------------------------------------------------------------------
    @expose("/purge/", methods=["POST"])
    @has_access
    def purge(self):
        days = retention_days(db.session)
        if request.form.get("confirm") != "1" or days is None:
            return self.render_template(
                "terminbuch/deleted_purge.html", days=days, count=purgeable_count(db.session),
                cutoff=purge_cutoff(db.session),
            )
        removed = purge_history(db.session)
        db.session.commit()
        flash(_("%(count)d ältere Versionen aus dem Verlauf entfernt.", count=removed), "success")
        return redirect(url_for(f"{self.endpoint}.list"))

