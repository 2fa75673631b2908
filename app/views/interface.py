"""SQLAInterface that loads the relations a list shows in a constant number of queries."""
from __future__ import annotations

from flask_appbuilder.models.sqla.interface import SQLAInterface
from sqlalchemy.orm import selectinload


class EagerInterface(SQLAInterface):
    def __init__(self, obj, eager: tuple[str, ...] = (), **kwargs):
        super().__init__(obj, **kwargs)
        self.eager = eager

    def apply_all(self, query, *args, **kwargs):
        query = super().apply_all(query, *args, **kwargs)
        if self.eager:
            query = query.options(*(selectinload(getattr(self.obj, rel)) for rel in self.eager))
        return query
