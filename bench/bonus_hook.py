"""What the bonus ledger's flush hook costs when bookings are completed.

    .venv/bin/python bench/bonus_hook.py [--rows 2000] [--rounds 3] [--chunk 500]
                                         [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

Two write paths, each run with the hook on and with it switched off (session.info flag
`app.services.bonus.HOOK_OFF`, the demo seeder's switch), variants alternating for
`--rounds` rounds, the best time of each reported with the statement count:
- insert: `--rows` new bookings that are already completed go through the ORM in chunks
  of `--chunk` (an import); with the hook each earns points — one ledger line plus its
  version row — into the demo's bonus program that covers the service;
- complete: the same number of existing bookings move from "bestätigt" to "abgeschlossen"
  in one flush per chunk (the status workflow in bulk); with the hook each is locked and
  its ledger read before the earn line is written.
The ratio hook on / hook off is the hook's overhead on that path (the pass card hook runs
in both). A fresh database each (migrations, `flask init`, the demo catalogue with 500
customers and no bookings); SQLite on a temporary file, PostgreSQL in a throw-away database.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import on_fresh_database
from bench.versioning_overhead import booking_rows, build_app, chunks

PG_DATABASE = "tb_bench_bonus_hook"


class Counter:
    def __init__(self, engine):
        self.n = 0
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args, **_kwargs):
        self.n += 1


def _status(kind: str) -> int:
    from app.extensions import db
    from app.models import BookingStatus

    return db.session.scalar(sa.select(BookingStatus.id).where(BookingStatus.kind == kind)
                             .order_by(BookingStatus.position))


def _clean(ids: list[int]) -> None:
    from app.extensions import db
    from app.models import BonusTransaction, Booking

    db.session.execute(sa.delete(BonusTransaction).where(BonusTransaction.booking_id.in_(ids)))
    db.session.execute(sa.delete(Booking).where(Booking.id.in_(ids)))
    db.session.commit()


def run(path: str, hook: bool, rows: list[dict[str, Any]], chunk: int, counter: Counter) -> tuple[float, int]:
    from app.extensions import db
    from app.models import Booking, Service
    from app.services.bonus import HOOK_OFF

    session = db.session()
    services = list(session.scalars(sa.select(Service)))  # in the identity map, as in a long request
    completed = _status("completed")
    if path == "complete":  # the bookings exist, confirmed; their completion is measured
        session.execute(sa.insert(Booking.__table__), rows)
        session.commit()
    session.info[HOOK_OFF] = not hook
    expire, session.expire_on_commit = session.expire_on_commit, False
    before, start = counter.n, time.perf_counter()
    try:
        for part in chunks(rows, chunk):
            if path == "insert":
                session.add_all([Booking(**{**row, "status_id": completed}) for row in part])
            else:
                for booking in session.scalars(sa.select(Booking).where(Booking.id.in_([r["id"] for r in part]))):
                    booking.status_id = completed
            session.commit()
        elapsed = time.perf_counter() - start
    finally:
        session.expire_on_commit = expire
        session.info.pop(HOOK_OFF, None)
    statements = counter.n - before
    _clean([row["id"] for row in rows])
    del services
    return elapsed, statements


def bench(url: str, label: str, n: int, rounds: int, chunk: int) -> None:
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import BonusTransaction

    flask_app = build_app(url)
    with flask_app.app_context(), acting_as():
        counter = Counter(db.engine)
        rows = booking_rows(n)
        best: dict[tuple[str, bool], tuple[float, int]] = {}
        for _ in range(rounds):
            for path in ("insert", "complete"):
                for hook in (True, False):
                    result = run(path, hook, rows, chunk, counter)
                    if (path, hook) not in best or result[0] < best[(path, hook)][0]:
                        best[(path, hook)] = result
        earned = db.session.scalar(sa.select(sa.func.count()).select_from(BonusTransaction)
                                   .where(BonusTransaction.booking_id.in_([r["id"] for r in rows])))
        assert earned == 0  # cleaned up after each run
        print(f"{label}: {n} bookings, chunks of {chunk}, best of {rounds}")
        for path in ("insert", "complete"):
            (on, on_n), (off, off_n) = best[(path, True)], best[(path, False)]
            print(f"  {path:8s} hook on {on:6.2f} s ({on_n} statements)  off {off:6.2f} s ({off_n})  "
                  f"ratio {on / off:4.2f}  per booking +{(on - off) / n * 1000:.2f} ms")
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--postgres-url")
    args = parser.parse_args()
    on_fresh_database(args.postgres_url, PG_DATABASE, "tb-bench-bonus-",
                      lambda url, label: bench(url, label, args.rows, args.rounds, args.chunk))


if __name__ == "__main__":
    main()
