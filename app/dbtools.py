"""Create and drop whole PostgreSQL databases (throw-away databases of tests and benchmarks)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url


def _admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def drop_database(url: str) -> None:
    """Drop the database named in `url`, ending its sessions first."""
    name = make_url(url).database
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


def create_database(url: str) -> str:
    """(Re)create the database named in `url` empty; returns `url`."""
    drop_database(url)
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{make_url(url).database}"'))
    finally:
        admin.dispose()
    return url


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)
