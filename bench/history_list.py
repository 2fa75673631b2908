"""Booking history list and availability at scale (issue 3, performance).

    .venv/bin/python bench/history_list.py                      # SQLite, 100k customers / 1M bookings
    .venv/bin/python bench/history_list.py --postgres-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/history_list.py --reuse              # keep the seeded database and reuse it

Seeds the demo business (Core path, reference day --today) into a database of
its own — SQLite: the file --sqlite-file; PostgreSQL: the database
`tb_bench_history` — unless --reuse finds it seeded already (then it is only
migrated to head). Seeding 1M bookings takes ~5 min (SQLite) / ~9 min
(PostgreSQL). Without --reuse the database is removed afterwards.

(a) The booking history list /bookingview/list/ (page size 25, newest first)
with a date window, a comment keyword and a second filter (employee or
customer name), through the Flask test client logged in as owner: median
server time over --requests requests; next to it the raw SQL the page needs
(the count and the page select with the displayed columns, same filters)
measured in the same run, and the ratio. Targets: ≤ 150 ms and ≤ 3× raw SQL.
(b) Availability: free_slots() of one service over 14 days for the 10 busiest
employees (one call for the ten — the target, ≤ 50 ms —, ten calls of one, and one
call for every employee), median.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import drop_postgres, fresh_app, fresh_postgres

PG_DATABASE = "tb_bench_history"
PASSWORD = "bench-only-password"
DEFAULT_SQLITE_FILE = "/tmp/tb-bench/history-1m.db"
KEYWORD = "Allergie"
NO_HIT = "Xylophon"
PAGE_SIZE = 25
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _seeded(url: str) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT count(*) FROM customer")).scalar())
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def prepare(url: str, customers: int, bookings: int, reuse: bool, today: date) -> Any:
    """A migrated app on `url`, seeded with the demo business unless `reuse` finds it seeded."""
    from app.demo import seed_demo

    if reuse and _seeded(url):
        print(f"  reusing the seeded database ({url.rsplit('/', 1)[-1]})", flush=True)
        return fresh_app(url)  # upgrade() to head and the idempotent init
    flask_app = fresh_app(url)
    started = time.perf_counter()
    with flask_app.app_context():
        seed_demo(customers=customers, bookings=bookings, seed=42, password=PASSWORD, today=today, fast=True)
    print(f"  seeded {customers} customers / {bookings} bookings in {time.perf_counter() - started:.0f} s",
          flush=True)
    return flask_app


def median_ms(action: Callable[[], Any], runs: int) -> float:
    action()  # warm-up: caches and the first plan
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def login(client) -> None:
    token = CSRF.search(client.get("/login/").get_data(as_text=True)).group(1)
    response = client.post("/login/", data={"username": "owner", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, "owner login failed"


# --- (a) the list ------------------------------------------------------------------------------
def cases(flask_app, today: date) -> list[dict[str, Any]]:
    """Date window = the list's default window; the employee and the customer name with the most
    keyword hits in it (the worst realistic case for the keyword)."""
    from app.extensions import db
    from app.views.booking_history import default_window

    tz = ZoneInfo(flask_app.config.get("TIMEZONE", "Europe/Berlin"))
    with flask_app.test_request_context():
        since, until = default_window(datetime.combine(today, datetime.min.time(), tzinfo=tz))
        bounds = [datetime.fromisoformat(value).replace(tzinfo=tz).astimezone(timezone.utc) for value in (since, until)]
        hits = sa.text(
            "SELECT b.employee_id, lower(substr(c.last_name, 1, 4)), count(*) FROM booking b "
            "JOIN customer c ON c.id = b.customer_id WHERE b.start_at >= :since AND b.start_at < :until "
            "AND b.comment LIKE :like GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1"
        ).bindparams(sa.bindparam("since", type_=_utc_type()), sa.bindparam("until", type_=_utc_type()))
        employee, prefix, _ = db.session.execute(hits, {"since": bounds[0], "until": bounds[1],
                                                         "like": f"%{KEYWORD}%"}).one()
    window = {"_flt_1_start_at": since, "_flt_2_start_at": until}
    return [
        {"label": "window only (default page)", "args": window, "sql": {"bounds": bounds}},
        {"label": f"employee + window + keyword '{KEYWORD}'",
         "args": {**window, "_flt_0_employee": employee, "_flt_0_comment": KEYWORD},
         "sql": {"bounds": bounds, "employee": employee, "keyword": KEYWORD}},
        {"label": f"customer '{prefix}…' + window + keyword",
         "args": {**window, "_flt_1_customer_name": prefix, "_flt_0_comment": KEYWORD},
         "sql": {"bounds": bounds, "prefix": prefix, "keyword": KEYWORD}},
        # the page's cost without rows: session user, permissions, menu, search form, template
        {"label": f"employee + window + keyword '{NO_HIT}' (no rows)",
         "args": {**window, "_flt_0_employee": employee, "_flt_0_comment": NO_HIT},
         "sql": {"bounds": bounds, "employee": employee, "keyword": NO_HIT}},
    ]


def _utc_type():
    from app.models.types import UTCDateTime

    return UTCDateTime()


def raw_statements(dialect: str, bounds: list[datetime], employee: int | None = None, keyword: str | None = None,
                   prefix: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """The count and the page select the list needs, written by hand."""
    where = ["b.start_at >= :since", "b.start_at < :until"]
    params: dict[str, Any] = {"since": bounds[0], "until": bounds[1]}
    if employee is not None:
        where.append("b.employee_id = :employee")
        params["employee"] = employee
    if keyword:
        if dialect == "sqlite":
            where.append("b.id IN (SELECT rowid FROM booking_comment_fts WHERE booking_comment_fts MATCH :kw)")
            params["kw"] = f'"{keyword}"*'
        else:
            where.append("b.comment ILIKE :kw")
            params["kw"] = f"%{keyword}%"
    if prefix:
        where.append("b.customer_id IN (SELECT id FROM customer WHERE lower(last_name) >= :lo AND "
                     "lower(last_name) < :hi OR lower(first_name) >= :lo AND lower(first_name) < :hi)")
        params.update(lo=prefix, hi=prefix[:-1] + chr(ord(prefix[-1]) + 1))
    condition = " AND ".join(where)
    typed = [sa.bindparam("since", type_=_utc_type()), sa.bindparam("until", type_=_utc_type())]
    count = sa.text(f"SELECT count(*) FROM booking b WHERE {condition}").bindparams(*typed)
    page = sa.text(
        "SELECT b.id, b.start_at, b.price, c.first_name, c.last_name, c.emoji_marker, s.name, e.first_name, "
        "e.last_name, st.name, st.color, l.name FROM booking b JOIN customer c ON c.id = b.customer_id "
        "JOIN service s ON s.id = b.service_id JOIN booking_status st ON st.id = b.status_id "
        "LEFT JOIN employee e ON e.id = b.employee_id LEFT JOIN location l ON l.id = b.location_id "
        f"WHERE {condition} ORDER BY b.start_at DESC, b.id DESC LIMIT {PAGE_SIZE}"
    ).bindparams(*typed)
    return count, page, params


def bench_list(flask_app, runs: int) -> list[dict[str, Any]]:
    client = flask_app.test_client()
    login(client)
    return [measure_case(flask_app, client, case, runs) for case in cases(flask_app, flask_app.config["BENCH_TODAY"])]


def measure_case(flask_app, client, case: dict[str, Any], runs: int) -> dict[str, Any]:
    from app.extensions import db

    url = f"/bookingview/list/?{urlencode(case['args'])}"
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    shown = len(set(re.findall(r'/bookingview/show/(\d+)"', response.get_data(as_text=True))))
    page_ms = median_ms(lambda: client.get(url), runs)
    with flask_app.app_context():
        count_sql, page_sql, params = raw_statements(db.engine.dialect.name, **case["sql"])
        with db.engine.connect() as conn:
            total = conn.execute(count_sql, params).scalar()

            def raw() -> None:
                conn.execute(count_sql, params).scalar()
                conn.execute(page_sql, params).all()

            raw_ms = median_ms(raw, runs)
    assert shown == min(total, PAGE_SIZE), (case["label"], shown, total)  # the page shows what raw SQL counts
    return {"label": case["label"], "page": page_ms, "raw": raw_ms, "rows": total}


# --- (b) availability ----------------------------------------------------------------------------
def bench_availability(flask_app, runs: int) -> list[dict[str, Any]]:
    from app.extensions import db
    from app.models import Booking
    from app.services.availability import free_slots

    today = flask_app.config["BENCH_TODAY"]
    start, end = today + timedelta(days=1), today + timedelta(days=14)
    now = datetime.now(timezone.utc)
    with flask_app.app_context():
        since = datetime.combine(start, datetime.min.time(), tzinfo=timezone.utc)
        upcoming = (Booking.start_at >= since, Booking.start_at < since + timedelta(days=14))
        service = db.session.scalar(sa.select(Booking.service_id).where(*upcoming).group_by(Booking.service_id)
                                    .order_by(sa.func.count().desc()).limit(1))
        busiest = db.session.scalars(
            sa.select(Booking.employee_id).where(*upcoming, Booking.service_id == service)
            .group_by(Booking.employee_id).order_by(sa.func.count().desc()).limit(10)
        ).all()
        team = len(free_slots(service, start, end, now=now, employee_ids=busiest))
        team_ms = median_ms(lambda: free_slots(service, start, end, now=now, employee_ids=busiest), runs)
        ten = sum(len(free_slots(service, start, end, emp, now=now)) for emp in busiest)
        ten_ms = median_ms(lambda: [free_slots(service, start, end, emp, now=now) for emp in busiest], runs)
        every = len(free_slots(service, start, end, now=now))
        every_ms = median_ms(lambda: free_slots(service, start, end, now=now), runs)
    return [
        {"label": f"{len(busiest)} employees × 14 days (1 call)", "ms": team_ms, "slots": team},
        {"label": f"{len(busiest)} employees × 14 days ({len(busiest)} calls)", "ms": ten_ms, "slots": ten},
        {"label": "every employee × 14 days (1 call)", "ms": every_ms, "slots": every},
    ]


def run(url: str, args: argparse.Namespace, database: str) -> None:
    flask_app = prepare(url, args.customers, args.bookings, args.reuse, args.today)
    flask_app.config["BENCH_TODAY"] = args.today
    try:
        print(f"\n{database}: {args.customers} customers, {args.bookings} bookings, {args.requests} requests each")
        print(f"  {'(a) booking list':45} {'page ms':>8} {'raw SQL ms':>10} {'ratio':>6} {'rows':>7}")
        for row in bench_list(flask_app, args.requests):
            print(f"  {row['label']:45} {row['page']:8.1f} {row['raw']:10.1f} {row['page'] / row['raw']:6.1f}"
                  f" {row['rows']:7}", flush=True)
        print(f"  {'(b) free_slots':45} {'ms':>8} {'slots':>10}")
        for row in bench_availability(flask_app, args.requests):
            print(f"  {row['label']:45} {row['ms']:8.1f} {row['slots']:10}", flush=True)
    finally:
        with flask_app.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--postgres-url", help="admin URL; runs PostgreSQL instead of SQLite")
    parser.add_argument("--sqlite-file", default=DEFAULT_SQLITE_FILE)
    parser.add_argument("--reuse", action="store_true", help="reuse a seeded database and keep it")
    parser.add_argument("--today", type=date.fromisoformat, default=date.today(),
                        help="reference day of the seed and the window (default: today)")
    args = parser.parse_args()
    if args.postgres_url:
        url = None
        if args.reuse:
            from app.dbtools import with_database

            url = with_database(args.postgres_url, PG_DATABASE)
            if not _seeded(url):
                url = None
        url = url or fresh_postgres(args.postgres_url, PG_DATABASE)
        if url is None:
            return
        try:
            run(url, args, "PostgreSQL")
        finally:
            if not args.reuse:
                drop_postgres(args.postgres_url, PG_DATABASE)
        return
    path = Path(args.sqlite_file)
    if not args.reuse:
        path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        run(f"sqlite:///{path}", args, f"SQLite ({path.stat().st_size // 10**6 if path.exists() else 0} MB file)")
    finally:
        if not args.reuse:
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
