"""FAB data-layer adjustments: eager loading for lists, time-zone-aware search values."""
from __future__ import annotations

from datetime import datetime

from flask_appbuilder.models.sqla import filters as fab_filters
from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy.orm import selectinload

from app.formatting import business_tz


class EagerInterface(SQLAInterface):
    """SQLAInterface with eager loading of relations and `custom_filters`: column name →
    filter classes for filters FAB cannot derive from a column (`_flt_<n>_<column>` in the URL)."""

    custom_filters: dict[str, tuple[type, ...]] = {}

    def __init__(self, obj, eager: tuple[str, ...] = (), **kwargs):
        super().__init__(obj, **kwargs)
        self.eager = eager

    def get_filters(self, search_columns=None, search_filters=None):
        filters = super().get_filters(search_columns, search_filters)
        custom = {col: [cls(col, self) for cls in classes] for col, classes in self.custom_filters.items()}
        # the URL's `_flt_<n>_<col>` indexes _all_filters, the search form lists _search_filters
        filters._all_filters = {**filters._all_filters, **custom}
        filters._search_filters = {
            **filters._search_filters,
            **{col: flts for col, flts in custom.items() if col in (search_columns or [])},
        }
        return filters

    def apply_all(self, query, *args, **kwargs):
        query = super().apply_all(query, *args, **kwargs)
        if self.eager:
            query = query.options(*(selectinload(getattr(self.obj, rel)) for rel in self.eager))
        return query


def _localized_set_value_to_type(datamodel, column_name, value):
    """FAB parses a search value for a datetime column ("2030-03-04 10:30") into a
    naive datetime, which UTCDateTime rightly refuses (a 500 on every date search).
    A typed-in time is a wall-clock time of the business: make it aware."""
    result = _fab_set_value_to_type(datamodel, column_name, value)
    if isinstance(result, datetime) and result.tzinfo is None:
        return result.replace(tzinfo=business_tz())
    return result


_fab_set_value_to_type = fab_filters.set_value_to_type
fab_filters.set_value_to_type = _localized_set_value_to_type
