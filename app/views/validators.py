"""Form fields and validators with German messages, shared by the views.

FAB builds a form field per column and adds its own validators: `InputRequired`
for every NOT NULL column (so an unticked checkbox of a NOT NULL boolean can
never be saved) and `Unique` with the English "Already exists.". The helpers
here replace those with fields and messages a German user understands."""
from __future__ import annotations

from decimal import Decimal

from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import BooleanField, TextAreaField
from wtforms.validators import NumberRange, StopValidation

from app.extensions import db

MAX_ID = 2**31 - 1  # the largest value of an INTEGER column on PostgreSQL


def parse_id(value: str | None) -> int | None:
    """A row id from a URL or form: ASCII digits within the INTEGER range, else None
    (`"²".isdigit()` is true and int() of it fails; a 20-digit id overflows the column:
    both were a 500)."""
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def checkbox(label: str, default: bool = False) -> BooleanField:
    """A checkbox for a NOT NULL boolean column: unticked means False, not "missing"."""
    return BooleanField(label, default=default)


def stripped(form, field) -> None:
    """First "validator" of a text field: drop surrounding blanks (a pasted
    " anna@example.org ") before the real checks see the value."""
    if isinstance(field.data, str):
        field.data = field.data.strip()


def optional_text(label: str) -> TextAreaField:
    """A text area for a NOT NULL text column whose empty value ("") is valid."""
    return TextAreaField(label, default="", widget=BS3TextAreaFieldWidget(),
                         filters=[lambda value: value if value is not None else ""])


def blank_to_none(form, field) -> None:
    """First "validator" of a nullable text field under a UNIQUE or CHECK
    constraint: an empty input is stored as NULL, not as "" (a second customer
    without e-mail would otherwise collide with the first on "")."""
    if isinstance(field.data, str) and not field.data.strip():
        field.data = None


class UniqueValue:
    """The value must not exist yet in `column` (other rows than the edited one).

    Checks every row, not only those the user may see: the database constraint
    does too. Stops the validation chain, so FAB's own (English) `Unique`
    validator never adds its message after ours."""

    field_flags = {"unique": True}

    def __init__(self, column, message: str, lower: bool = False):
        self.column = column
        self.message = message
        self.lower = lower

    def __call__(self, form, field) -> None:
        value = field.data
        if hasattr(value, "id"):  # a related row chosen in a select: compare its id
            value = value.id
        if value is None or value == "":
            return
        candidates = {value}
        if isinstance(value, str):
            candidates.add(value.strip())
            if self.lower:
                candidates.add(value.strip().lower())
        model = self.column.class_
        stmt = select(model.id).where(self.column.in_(candidates))
        own_id = getattr(form, "_id", None)  # FAB sets it on the edit form
        if own_id is not None:
            stmt = stmt.where(model.id != own_id)
        if db.session.scalar(stmt.limit(1)) is not None:
            raise StopValidation(self.message)


def at_least(minimum, message: str) -> NumberRange:
    return NumberRange(min=minimum, message=message)


def not_negative(message: str | None = None) -> NumberRange:
    return NumberRange(min=0, message=message if message is not None else _l("Der Wert darf nicht negativ sein."))


def vat_rate() -> NumberRange:
    return NumberRange(
        min=0, max=Decimal("99.99"), message=_l("Der Mehrwertsteuersatz muss zwischen 0 und 99,99 Prozent liegen.")
    )


HEX_COLOR = r"^#[0-9A-Fa-f]{6}$"
HEX_COLOR_MESSAGE = _l("Bitte eine Farbe im Format #RRGGBB angeben.")
