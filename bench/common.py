"""What the benchmarks share: a fresh PostgreSQL database of their own."""
from __future__ import annotations

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
