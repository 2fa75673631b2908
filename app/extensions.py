"""Extension singletons, created once and bound to the app in create_app().

The AppBuilder is made per app in create_app (it keeps per-app view state);
reach it at run time as `current_app.appbuilder`."""
from __future__ import annotations

import sqlite3

from flask import g, has_app_context
from flask_appbuilder.models.sqla.base import SQLA
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy_continuum import make_versioned
from sqlalchemy_continuum.plugins import FlaskPlugin


def acting_user_id() -> int | None:
    """The FAB user behind the current change: the logged-in user, or the
    `system` user a job or the seeder put on `g.user`."""
    if not has_app_context():
        return None
    user = getattr(g, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return user.id
    return None


# Must run before any versioned model is defined. "subquery" costs one statement
# per versioned row instead of the default "validity" strategy's three.
make_versioned(
    user_cls="User",
    plugins=[FlaskPlugin(current_user_id_factory=acting_user_id)],
    options={"strategy": "subquery"},
)

db = SQLA()
migrate = Migrate()
csrf = CSRFProtect()


@event.listens_for(Engine, "connect")
def _sqlite_enforces_foreign_keys(dbapi_connection, _record) -> None:
    """SQLite checks foreign keys (RESTRICT, CASCADE, SET NULL) only when asked, per
    connection: without this a customer with bookings could be deleted on SQLite and
    not on PostgreSQL. Migrations switch it off again for their connection
    (migrations/env.py): SQLite's table copies must not cascade."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
