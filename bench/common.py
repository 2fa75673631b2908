"""What the benchmarks share: a fresh database of their own and a migrated app on it."""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from app.dbtools import create_database, drop_database, with_database


def fresh_postgres(admin_url: str, name: str) -> str | None:
    """A fresh, empty database `name` on the server of `admin_url`, or None when it does not answer."""
    try:
        return create_database(with_database(admin_url, name))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable ({exc.orig}); skipped.")
        return None


def drop_postgres(admin_url: str, name: str) -> None:
    drop_database(with_database(admin_url, name))


def on_fresh_database(postgres_url: str | None, pg_name: str, prefix: str, run: Callable[[str, str], None]) -> None:
    """`run(url, label)` on a throw-away PostgreSQL database `pg_name` (dropped afterwards)
    when `postgres_url` is given, else on a temporary SQLite file."""
    if postgres_url:
        url = fresh_postgres(postgres_url, pg_name)
        if url is None:
            return
        try:
            run(url, "PostgreSQL")
        finally:
            drop_postgres(postgres_url, pg_name)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        run(f"sqlite:///{folder}/bench.db", "SQLite")


def fresh_app(url: str) -> Any:
    """A fresh app on `url`: migrations and `flask init`."""
    from flask_migrate import upgrade

    from app import create_app
    from app.cli import init_app_data

    flask_app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "SECRET_KEY": "bench",
                            "INSTANCE_DIR": tempfile.mkdtemp(prefix="tb-bench-")})
    logging.getLogger().setLevel(logging.WARNING)
    with flask_app.app_context():
        upgrade()
        init_app_data()
    return flask_app
