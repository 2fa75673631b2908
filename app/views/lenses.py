"""Linsen (issue 4, point 2): the lens admin list, "Als Linse speichern", the tabs above the
customer, booking, pass card and invoice lists, and the built-in customer lenses (the `lens` filter
column, the "Resteinheiten" column and the recall action of the overdue list)."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from flask import current_app, flash, g, has_request_context, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.fieldwidgets import Select2Widget
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.filters import FilterInFunction
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import SelectField

from app.extensions import db
from app.formatting import fmt_date
from app.models import Lens
from app.security import ROLES, current_user
from app.services import lenses as service
from app.views.base import SecureModelView, capped_page_size
from app.views.customer_metrics import CustomerMetricsInterface
from app.views.interface import EagerInterface
from app.views.validators import optional_text

FILTER_COLUMN = service.FILTER_COLUMN
RECALL_ACTION = "send_recall"
MAX_NAMES = 10  # customers named per refusal reason in the flash message
# Filters a list adds by itself: they do not make a lens tab inactive (BookingView's date window).
IMPLICIT_FILTERS = {"BookingView": re.compile(r"^_flt_\d_start_at$")}


def may_see_cards() -> bool:
    """Whether the current user may see pass cards (also in a background export job)."""
    sm = current_app.appbuilder.sm
    if has_request_context():
        return sm.has_access("can_list", "PassCardView")
    user = current_user()
    return user is not None and sm._has_view_access(user, "can_list", "PassCardView")


# --- the customer list's built-in lenses -------------------------------------------------
class LensFilter(BaseFilter):
    """`_flt_0_lens=<key>`: the customers of a built-in lens (an unknown key: none)."""

    name = _l("ist")
    arg_name = "tb_lens"

    def apply(self, query, value):
        key = (value or "").strip()
        cache = g.setdefault("_tb_lens_clauses", {})  # the list applies its filters for count and rows
        if key not in cache:
            cache[key] = service.lens_clause(db.session, key, may_see_cards())
        return query.filter(cache[key])


class CustomerLensInterface(CustomerMetricsInterface):
    """The customer list's data model with the `lens` filter column next to `active_category`."""

    custom_filters = {**CustomerMetricsInterface.custom_filters, FILTER_COLUMN: (LensFilter,)}


def _filter_choices() -> list[tuple[str, str]]:
    return [(key, str(service.BUILTIN_LENSES[key][1])) for key in service.FILTER_KEYS]


LENS_SEARCH_FIELD = SelectField(_l("Linse"), widget=Select2Widget(), choices=_filter_choices)


def active_lens_keys() -> set[str]:
    """The built-in filter keys in the current request's arguments."""
    return {value for key, values in request.args.lists() if re.match(rf"^_flt_\d_{FILTER_COLUMN}$", key)
            for value in values}


def _add_column(template_args: dict, pks: list[int], name: str, label: str, value) -> None:
    """One more column of the list widget: `value(pk)` per row."""
    template_args["include_columns"] = [*template_args["include_columns"], name]
    template_args["label_columns"] = {**template_args["label_columns"], name: label}
    template_args["value_columns"] = [
        {**values, name: value(pk)} for pk, values in zip(pks, template_args["value_columns"], strict=True)
    ]


class CustomerLensMixin:
    """CustomerView: "Resteinheiten" while the "Mit Mehrfachkarte" lens is on, and the
    recall action ("Erinnerung senden") offered on the "Überfällig" lens only."""

    def _get_list_widget(self, filters, *args, **kwargs):
        widgets = super()._get_list_widget(filters, *args, **kwargs)
        widget = widgets.get("list")
        if widget is None or not has_request_context():
            return widgets
        keys = active_lens_keys()
        template_args = widget.template_args
        if "overdue" not in keys and RECALL_ACTION in (template_args.get("actions") or {}):
            template_args["actions"] = {
                name: act for name, act in template_args["actions"].items() if name != RECALL_ACTION
            }
        pks = [int(pk) for pk in template_args.get("pks") or []]
        if service.CARD_KEY in keys and may_see_cards():
            units = service.remaining_units(db.session, pks)
            _add_column(template_args, pks, "units_remaining", _("Resteinheiten"), lambda pk: units.get(pk, 0))
        if "overdue" in keys:  # why each customer is listed
            details = service.overdue_details(db.session)
            _add_column(template_args, pks, "last_visit", _("Letzter Besuch"),
                        lambda pk: fmt_date(details[pk][0]) if pk in details else "–")
            _add_column(template_args, pks, "usual_gap", _("Üblicher Abstand"),
                        lambda pk: _("%(days)d Tage", days=details[pk][1]) if pk in details else "–")
        return widgets


    @action(RECALL_ACTION, _l("Erinnerung senden"),
            _l("Den gewählten Kund:innen eine Wiederbesuch-Erinnerung per E-Mail senden?"), "fa-envelope",
            single=False)
    def send_recall(self, items):
        """Items arrive re-fetched with the row rules (SecureModelView.action_post)."""
        items = items if isinstance(items, list) else [items]
        result = service.queue_recalls(db.session, items)
        db.session.commit()
        if result.queued:
            flash(_("Erinnerung an %(count)d Kund:in(nen) in den Versand gegeben.", count=len(result.queued)),
                  "success")
        for reason, customers in result.refused.items():
            names = ", ".join(customer.full_name for customer in customers[:MAX_NAMES])
            names += " …" if len(customers) > MAX_NAMES else ""
            flash(_("Nicht gesendet (%(count)d): %(names)s — %(reason)s", count=len(customers), names=names,
                    reason=reason), "warning")
        # back to the overdue list (the next batch), not to the page before it
        return redirect(url_for(f"{type(self).__name__}.list") + "?" + service.BUILTIN_LENSES["overdue"][2])


# --- tabs above the lists ------------------------------------------------------------------
def _list_view(view_name: str):
    if view_name not in service.LENS_VIEWS:
        return None
    for view in current_app.appbuilder.baseviews:
        if type(view).__name__ == view_name:
            return view
    return None


def _max_page_size() -> int:
    return capped_page_size(10**9, 100)


def current_list_args(view) -> list[tuple[str, str]]:
    return service.clean_list_args(view, request.args.items(multi=True), _max_page_size())


ROLE_LABELS = {"Owner": _l("Inhaber:in"), "Manager": _l("Manager:in"), "Employee": _l("Mitarbeiter:in"),
               "Viewer": _l("Lesezugriff")}


def role_choices(roles) -> list[dict]:
    return [{"id": role.id, "label": str(ROLE_LABELS.get(role.name, role.name))} for role in roles]


def save_roles():
    """The roles a lens may be shared with (the business roles, in their order)."""
    role_model = current_app.appbuilder.sm.role_model
    found = {role.name: role for role in db.session.scalars(select(role_model).where(role_model.name.in_(ROLES)))}
    return [found[name] for name in ROLES if name in found]


def lens_tabs(view_name: str) -> dict | None:
    """Template global: the tabs above a list ("Alle" + the lenses the user sees) and the
    save form's data; None for lists without lenses."""
    user = current_user()
    view = _list_view(view_name)
    if user is None or view is None:
        return None
    current = current_list_args(view)
    implicit = IMPLICIT_FILTERS.get(view_name)
    base = url_for(f"{view_name}.list")
    tabs = []
    for lens in service.tab_lenses(db.session, user, view_name):
        if lens.builtin_key == service.CARD_KEY and not may_see_cards():
            continue
        tabs.append({
            "id": lens.id, "label": service.lens_label(lens), "builtin": lens.builtin,
            "url": f"{base}?{lens.query_string}" if lens.query_string else base,
            "active": service.query_matches(lens.query_string, current, implicit),
        })
    sm = current_app.appbuilder.sm
    can_save = sm.has_access("can_add", "LensView")
    return {
        "view": view_name,
        "all_url": base,
        "all_active": not any(tab["active"] for tab in tabs) and not service.has_filters(current, implicit),
        "tabs": tabs,
        "can_save": can_save,
        "save_url": url_for("LensView.save"),
        "query": request.query_string.decode("utf-8", "replace"),
        "roles": role_choices(save_roles()) if can_save else [],
    }


def register_lens_templates() -> None:
    """Called from register_views (in the app context of create_app)."""
    current_app.add_template_global(lens_tabs, "lens_tabs")


# --- the lens admin list and "Als Linse speichern" -----------------------------------------
def _view_label(value) -> str:
    return str(service.LENS_VIEWS.get(value, value or ""))


class LensView(SecureModelView):
    datamodel = EagerInterface(Lens, eager=("owner",))
    list_title = _l("Linsen")
    show_title = add_title = edit_title = _l("Linse")
    list_columns = ["name", "view_name", "owner", "shared", "builtin"]
    show_columns = ["name", "view_name", "query_string", "owner", "shared", "roles", "builtin"]
    add_columns = edit_columns = ["name", "view_name", "query_string", "roles"]
    base_order = ("name", "asc")
    label_columns = {
        "name": _l("Name"), "view_name": _l("Liste"), "query_string": _l("Filter"), "shared": _l("Geteilt"),
        "builtin": _l("Eingebaut"), "builtin_key": _l("Kennung"),
        "roles": _l("Geteilt mit Rollen"), "owner": _l("Besitzer:in"),
    }
    formatters_columns = {"view_name": _view_label}
    add_form_extra_fields = edit_form_extra_fields = {
        "query_string": optional_text(_l("Filter")),
        "view_name": SelectField(_l("Liste"), widget=Select2Widget(),
                                 choices=lambda: [(key, str(label)) for key, label in service.LENS_VIEWS.items()]),
    }
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "roles": [["name", FilterInFunction, lambda: list(ROLES)]],
    }

    def pre_add(self, item: Lens) -> None:
        item.owner_id = g.user.id
        super().pre_add(item)

    def check_write(self, item: Lens) -> None:
        if item.builtin:
            raise ValueError(_("Eingebaute Linsen können nicht geändert werden."))
        if item.owner_id is not None and item.owner_id != g.user.id:
            raise ValueError(_("Nur die Besitzer:in kann diese Linse ändern."))
        view = _list_view(item.view_name)
        if view is None:
            raise ValueError(_("Für diese Liste gibt es keine Linsen."))
        item.name = " ".join((item.name or "").split())
        item.query_string = service.clean_query_string(view, item.query_string or "", _max_page_size())
        item.shared = bool(item.roles)
        with db.session.no_autoflush:  # the edited item must not be flushed by this query
            taken = service.name_taken(db.session, item.owner_id, item.view_name, item.name, item.id)
        if taken:
            raise ValueError(_("Sie haben schon eine Linse mit diesem Namen für diese Liste."))

    def _edit(self, pk):
        """A built-in lens is refused before its form is even validated."""
        if request.method == "POST":
            item = self._visible_item(pk)
            if item is not None and item.builtin:
                flash(_("Eingebaute Linsen können nicht geändert werden."), "danger")
                return None
        return super()._edit(pk)

    def pre_delete(self, item: Lens) -> None:
        if item.builtin:
            raise ValueError(_("Eingebaute Linsen können nicht gelöscht werden."))
        if item.owner_id is not None and item.owner_id != g.user.id:
            raise ValueError(_("Nur die Besitzer:in kann diese Linse löschen."))

    @expose("/save", methods=["GET", "POST"])
    @has_access
    @permission_name("add")
    def save(self):
        """"Als Linse speichern": the list arguments of `query` (or, on GET, of this URL) as a
        lens of the current user; shared with the checked roles. Errors re-render the form."""
        sm = self.appbuilder.sm
        source = request.form if request.method == "POST" else request.args
        view_name = source.get("view", "")
        if request.method == "POST":
            query = source.get("query", "")
        else:  # the list's arguments come along in the URL
            query = urlencode([(key, value) for key, value in request.args.items(multi=True)
                               if key not in ("view", "name", "roles")])
        name = source.get("name", "")
        roles = save_roles()
        chosen = set(source.getlist("roles"))
        error = None
        view = _list_view(view_name)
        if request.method == "POST":
            if view is None or not sm.has_access("can_list", view_name):
                error = _("Bitte eine Liste wählen, die Sie sehen dürfen.")
            elif chosen - {str(role.id) for role in roles}:
                error = _("Unbekannte Rolle gewählt.")
            else:
                try:
                    lens = service.save_lens(db.session, g.user.id, view, name, query,
                                             [role for role in roles if str(role.id) in chosen], _max_page_size())
                    db.session.commit()
                except service.LensRefused as exc:
                    db.session.rollback()
                    error = str(exc)
                else:
                    flash(_("Die Linse „%(name)s“ wurde gespeichert.", name=lens.name), "success")
                    return redirect(f"{url_for(f'{view_name}.list')}?{lens.query_string}")
        views = [(key, str(label)) for key, label in service.LENS_VIEWS.items() if sm.has_access("can_list", key)]
        kept = service.clean_list_args(view, parse_qsl(query, keep_blank_values=True), _max_page_size()) \
            if view is not None else []
        return self.render_template(
            "terminbuch/lens_save.html", title=_("Als Linse speichern"), views=views, view_name=view_name,
            query=query, kept=kept, name=name, roles=role_choices(roles), chosen=chosen, error=error,
        )

