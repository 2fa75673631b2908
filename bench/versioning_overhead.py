"""What SQLAlchemy-Continuum costs when bookings are inserted.

    .venv/bin/python bench/versioning_overhead.py [--rows 10000] [--rounds 3] [--chunk 500]
                                                  [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

The comparison: the same 10,000 `Booking` objects go through the same ORM
session, flushed and committed in the same chunks, once with Continuum's
listeners active (each row also gets a `booking_version` row and every commit
a `transaction` row, attributed to the `system` user) and once with Continuum's
session and mapper listeners detached for the duration of the run (the model's
own `before_flush` listener runs in both). Only versioning differs, so the
ratio is Continuum's overhead on the write path.

Every column is set explicitly (end, price, status, location), as the demo
seeder does; the model listener then finds nothing to look up, so no SELECTs
dilute the ratio. For context two Core baselines are printed: an `insert()`
executemany of the same rows without versions, and the seeder's fast path
(the rows plus their version rows through Core).

Each database is created fresh (migrations, `flask init`, a small demo
catalogue with 500 customers and no bookings). Variants alternate for
`--rounds` rounds; inserted rows are deleted between runs; the best time of
each variant is reported. SQLite runs on a temporary file; PostgreSQL in a
throw-away database `tb_bench_versioning` when the server is reachable.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import drop_postgres, fresh_app, fresh_postgres

PG_DATABASE = "tb_bench_versioning"
TODAY = date(2025, 3, 20)


def build_app(url: str) -> Any:
    """A fresh app on `url`: migrations, `flask init`, a demo catalogue without bookings."""
    from app.demo import seed_demo

    flask_app = fresh_app(url)
    with flask_app.app_context():
        seed_demo(customers=500, bookings=0, seed=1, password="bench-only-password", today=TODAY)
    return flask_app


def booking_rows(n: int) -> list[dict[str, Any]]:
    """n complete booking rows, one after the other per employee (no overlaps)."""
    from app.extensions import db
    from app.models import Booking, BookingStatus, Customer, Employee, Service

    session = db.session
    customers = list(session.scalars(sa.select(Customer.id).order_by(Customer.id)))
    employees = list(session.execute(sa.select(Employee.id, Employee.location_id).order_by(Employee.id)))
    service = session.scalars(sa.select(Service).where(Service.name == "Einzeltraining")).one()
    confirmed = session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == "confirmation"))
    first_id = (session.scalar(sa.select(sa.func.max(Booking.id))) or 0) + 1
    start = datetime(2030, 1, 7, 7, 0, tzinfo=timezone.utc)
    rows = []
    for i in range(n):
        employee_id, location_id = employees[i % len(employees)]
        begin = start + timedelta(minutes=90 * (i // len(employees)))
        rows.append({
            "id": first_id + i, "customer_id": customers[i % len(customers)], "service_id": service.id,
            "employee_id": employee_id, "resource_id": None, "location_id": location_id, "status_id": confirmed,
            "start_at": begin, "end_at": begin + timedelta(minutes=service.duration_minutes),
            "price": service.price, "comment": "Benchmark" if i % 10 == 0 else None, "cancel_reason": None,
            "source": "phone", "reminder": True, "created_at": start - timedelta(days=1),
        })
    return rows


def chunks(rows: list[dict[str, Any]], size: int):
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def orm_insert(rows: list[dict[str, Any]], chunk: int) -> None:
    from app.extensions import db
    from app.models import Booking, Service

    session = db.session()
    services = list(session.scalars(sa.select(Service)))  # keep them in the identity map
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        for part in chunks(rows, chunk):
            session.add_all([Booking(**row) for row in part])
            session.commit()
    finally:
        session.expire_on_commit = expire
    del services


def orm_insert_without_versioning(rows: list[dict[str, Any]], chunk: int) -> None:
    from sqlalchemy_continuum import versioning_manager

    # make_versioned() attached these to every Session and Mapper; detach them for this run only.
    versioning_manager.remove_session_tracking(sa.orm.Session)
    versioning_manager.remove_operations_tracking(sa.orm.Mapper)
    try:
        orm_insert(rows, chunk)
    finally:
        versioning_manager.track_operations(sa.orm.Mapper)
        versioning_manager.track_session(sa.orm.Session)


def core_insert(rows: list[dict[str, Any]], chunk: int) -> None:
    from app.extensions import db
    from app.models import Booking

    for part in chunks(rows, chunk):
        db.session.execute(sa.insert(Booking.__table__), part)
        db.session.commit()


def core_insert_with_versions(rows: list[dict[str, Any]], chunk: int) -> None:
    """The demo seeder's fast path: one Continuum transaction, rows and version rows through Core."""
    from flask import current_app
    from sqlalchemy_continuum import Operation, version_class, versioning_manager

    from app.extensions import db
    from app.models import Booking
    from app.security import SYSTEM_USERNAME

    system = current_app.appbuilder.sm.find_user(username=SYSTEM_USERNAME)
    transactions = versioning_manager.transaction_cls.__table__
    tx = db.session.execute(sa.insert(transactions).values(user_id=system.id).returning(transactions.c.id)).scalar_one()
    versions = version_class(Booking).__table__
    for part in chunks(rows, chunk):
        db.session.execute(sa.insert(Booking.__table__), part)
        db.session.execute(sa.insert(versions), [{**row, "transaction_id": tx, "operation_type": Operation.INSERT}
                                                 for row in part])
        db.session.commit()


def clean(rows: list[dict[str, Any]]) -> None:
    from app.extensions import db

    first = rows[0]["id"]
    db.session.execute(sa.text("DELETE FROM booking_version WHERE id >= :first"), {"first": first})
    db.session.execute(sa.text("DELETE FROM booking WHERE id >= :first"), {"first": first})
    db.session.commit()


def verify(rows: list[dict[str, Any]], versioned: bool) -> None:
    from app.extensions import db

    first = rows[0]["id"]
    count = db.session.scalar(sa.text("SELECT count(*) FROM booking WHERE id >= :f"), {"f": first})
    versions = db.session.scalar(sa.text("SELECT count(*) FROM booking_version WHERE id >= :f"), {"f": first})
    assert count == len(rows), count
    assert versions == (len(rows) if versioned else 0), versions


VARIANTS: list[tuple[str, Callable[[list[dict[str, Any]], int], None], bool]] = [
    ("ORM + Continuum", orm_insert, True),
    ("ORM, versioning off", orm_insert_without_versioning, False),
    ("Core insert", core_insert, False),
    ("Core insert + version rows", core_insert_with_versions, True),
]


def run(flask_app: Any, label: str, n: int, rounds: int, chunk: int) -> dict[str, float]:
    from app.jobs.base import acting_as

    best: dict[str, float] = {}
    with flask_app.app_context(), acting_as():
        rows = booking_rows(n)
        for _ in range(rounds):
            for name, insert, versioned in VARIANTS:
                started = time.perf_counter()
                insert(rows, chunk)
                elapsed = time.perf_counter() - started
                verify(rows, versioned)
                clean(rows)
                best[name] = min(best.get(name, elapsed), elapsed)
    base = best["ORM, versioning off"]
    print(f"\n{label}: {n} bookings, chunks of {chunk}, best of {rounds}")
    for name, _, _ in VARIANTS:
        print(f"  {name:28} {best[name]:7.2f} s  {n / best[name]:8.0f} rows/s")
    print(f"  ratio ORM + Continuum / ORM without: {best['ORM + Continuum'] / base:.2f}x")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tb-bench-") as tmp:
        flask_app = build_app(f"sqlite:///{tmp}/bench.db")
        run(flask_app, "SQLite (temp file)", args.rows, args.rounds, args.chunk)
        _dispose(flask_app)
    if args.no_postgres:
        return
    url = fresh_postgres(args.postgres_url, PG_DATABASE)
    if url is None:
        return
    try:
        flask_app = build_app(url)
        run(flask_app, f"PostgreSQL ({make_url(url).render_as_string()})", args.rows, args.rounds, args.chunk)
        _dispose(flask_app)
    finally:
        drop_postgres(args.postgres_url, PG_DATABASE)


def _dispose(flask_app: Any) -> None:
    from app.extensions import db

    with flask_app.app_context():
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    main()
