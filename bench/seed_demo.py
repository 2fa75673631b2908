"""How long the demo seed takes.

    .venv/bin/python bench/seed_demo.py                      # default size, SQLite temp file, auto path
    .venv/bin/python bench/seed_demo.py --path orm --path core
    .venv/bin/python bench/seed_demo.py --customers 100000 --bookings 1000000
    .venv/bin/python bench/seed_demo.py --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

Each run gets a fresh database (SQLite: a temporary file; PostgreSQL: a
throw-away database `tb_bench_seed`), migrated and initialised like
`flask db upgrade && flask init`; only `seed_demo()` itself is timed — the
same call `flask demo seed` makes. `--path auto` is what the command does
(ORM up to app.demo.ORM_MAX_BOOKINGS bookings, Core above); `orm`/`core`
force one. Prints seconds, rows written (tables and version tables) and the
peak memory of the process.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import drop_postgres, fresh_app, fresh_postgres

PG_DATABASE = "tb_bench_seed"


def seed(flask_app: Any, customers: int, bookings: int, path: str, today: date | None) -> dict[str, Any]:
    from sqlalchemy_continuum import version_class

    from app.demo import WRITE_ORDER, seed_demo
    from app.extensions import db

    fast = {"auto": None, "orm": False, "core": True}[path]
    with flask_app.app_context():
        started = time.perf_counter()
        seed_demo(customers=customers, bookings=bookings, seed=42, password="bench-only-password",
                  today=today, fast=fast)
        elapsed = time.perf_counter() - started
        rows = versions = 0
        for model in WRITE_ORDER:
            rows += db.session.scalar(sa.select(sa.func.count()).select_from(model.__table__))
            versions += db.session.scalar(sa.select(sa.func.count()).select_from(version_class(model).__table__))
        db.session.remove()
        db.engine.dispose()
    return {"seconds": elapsed, "rows": rows, "versions": versions}


def report(label: str, result: dict[str, Any]) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  {label:34} {result['seconds']:8.1f} s   {result['rows']:>9} rows + {result['versions']:>9} versions"
          f"   {result['rows'] / result['seconds']:8.0f} rows/s   peak RSS {peak_mb:.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--bookings", type=int, default=40000)
    parser.add_argument("--path", action="append", choices=["auto", "orm", "core"],
                        help="write path; repeat to compare (default: auto)")
    parser.add_argument("--postgres-url", help="admin URL; runs PostgreSQL instead of SQLite")
    parser.add_argument("--today", type=date.fromisoformat, help="reference day (default: today)")
    args = parser.parse_args()

    database = "PostgreSQL" if args.postgres_url else "SQLite (temp file)"
    print(f"demo seed: {args.customers} customers, {args.bookings} bookings, {database}", flush=True)
    for path in args.path or ["auto"]:
        if args.postgres_url:
            url = fresh_postgres(args.postgres_url, PG_DATABASE)
            if url is None:
                return
            try:
                report(f"path={path}", seed(fresh_app(url), args.customers, args.bookings, path, args.today))
            finally:
                drop_postgres(args.postgres_url, PG_DATABASE)
        else:
            with tempfile.TemporaryDirectory(prefix="tb-bench-") as tmp:
                flask_app = fresh_app(f"sqlite:///{tmp}/seed.db")
                result = seed(flask_app, args.customers, args.bookings, path, args.today)
                size_mb = Path(tmp, "seed.db").stat().st_size / 1e6
                report(f"path={path} (file {size_mb:.0f} MB)", result)


if __name__ == "__main__":
    main()
