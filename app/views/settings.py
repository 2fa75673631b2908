"""Linsen und Einstellungen."""
from __future__ import annotations

from flask import g
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.extensions import db
from app.models import Lens, Setting
from app.services.documents import MAX_MB_KEY, parse_max_mb
from app.services.history import RETENTION_KEY, parse_retention_days
from app.services.phone import CALL_SCHEME_KEY, parse_call_scheme
from app.views.base import SecureModelView
from app.views.validators import UniqueValue, checkbox, optional_text


class LensView(SecureModelView):
    datamodel = SQLAInterface(Lens)
    list_title = _l("Linsen")
    show_title = add_title = edit_title = _l("Linse")
    list_columns = ["name", "view_name", "shared", "builtin"]
    add_columns = edit_columns = ["name", "view_name", "query_string", "shared", "roles"]
    base_order = ("name", "asc")
    label_columns = {
        "name": _l("Name"), "view_name": _l("Liste"), "query_string": _l("Filter"), "shared": _l("Geteilt"),
        "builtin": _l("Eingebaut"), "roles": _l("Geteilt mit Rollen"), "owner": _l("Besitzer:in"),
    }
    add_form_extra_fields = edit_form_extra_fields = {
        "shared": checkbox(_l("Geteilt")),
        "query_string": optional_text(_l("Filter")),
    }

    def pre_add(self, item: Lens) -> None:
        item.owner_id = g.user.id
        super().pre_add(item)

    def check_write(self, item: Lens) -> None:
        if item.builtin:
            raise ValueError(_("Eingebaute Linsen können nicht geändert werden."))
        if item.owner_id is not None and item.owner_id != g.user.id:
            raise ValueError(_("Nur die Besitzer:in kann diese Linse ändern."))
        with db.session.no_autoflush:  # the edited item must not be flushed by this query
            taken = db.session.scalar(select(Lens.id).where(
                Lens.owner_id == item.owner_id, Lens.view_name == item.view_name, Lens.name == item.name,
                Lens.id != (item.id or 0),
            ).limit(1))
        if taken is not None:
            raise ValueError(_("Sie haben schon eine Linse mit diesem Namen für diese Liste."))

    def pre_delete(self, item: Lens) -> None:
        self.check_write(item)


class SettingView(SecureModelView):
    datamodel = SQLAInterface(Setting)
    list_title = _l("Einstellungen")
    show_title = add_title = edit_title = _l("Einstellung")
    list_columns = ["key", "value", "description"]
    add_columns = edit_columns = ["key", "value", "description"]
    base_order = ("key", "asc")
    label_columns = {"key": _l("Schlüssel"), "value": _l("Wert"), "description": _l("Beschreibung")}
    validators_columns = {"key": [UniqueValue(Setting.key, _l("Diese Einstellung gibt es schon."))]}
    # An empty value is a valid setting ("no retention limit", "no address yet").
    add_form_extra_fields = edit_form_extra_fields = {"value": optional_text(_l("Wert"))}

    def check_write(self, item: Setting) -> None:
        super().check_write(item)
        if item.key == RETENTION_KEY:  # whole number ≥ 0 or empty (German message otherwise)
            parse_retention_days(item.value)
            item.value = (item.value or "").strip()
        elif item.key == CALL_SCHEME_KEY:  # tel, sip or callto (German message otherwise)
            item.value = parse_call_scheme(item.value)
        elif item.key == MAX_MB_KEY:  # whole number of MB, 1 to 100 (German message otherwise)
            item.value = str(parse_max_mb(item.value))
