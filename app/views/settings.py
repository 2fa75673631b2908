"""Einstellungen (the lenses: app/views/lenses.py)."""
from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_babel import lazy_gettext as _l

from app.models import Setting
from app.services.backup import KEEP_KEY, parse_keep
from app.services.documents import MAX_MB_KEY, parse_max_mb
from app.services.history import RETENTION_KEY, parse_retention_days
from app.services.phone import CALL_SCHEME_KEY, parse_call_scheme
from app.views.base import SecureModelView
from app.views.validators import UniqueValue, optional_text


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
        elif item.key == KEEP_KEY:  # whole number ≥ 1 (German message otherwise)
            item.value = str(parse_keep(item.value))
