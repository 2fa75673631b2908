"""XLSX export of 100,000 filtered bookings: time and peak memory, against xlsxwriter alone.

    .venv/bin/python bench/export_xlsx.py                          # SQLite temp file
    .venv/bin/python bench/export_xlsx.py --postgres-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/export_xlsx.py --customers 10000 --bookings 120000 --rows 100000

Seeds a fresh database with the demo seeder (Core path), picks the booking list
filter "Beginn < T" with T such that exactly `--rows` bookings match, and runs, each
in a child process of its own (so the peak RSS is the export's, not the seeder's):

- `app`: the export as the "Exportieren (Excel)" button / the background job does it
  (`app.views.export.build_export_file` in a request context of /bookingview/export/xlsx
  with the list's query string: FAB filters, row rules, ORM rows in chunks, xlsxwriter
  `constant_memory`);
- `raw`: the same rows and cells from one SQL query (Core, joined names, fetched in
  chunks) written by xlsxwriter alone with the same formats — the floor for this work.

Each child prints its peak RSS before the export (baseline: app loaded, warmed up) and
after it (VmHWM); the target is a peak below 150 MB.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import drop_postgres, fresh_app, fresh_postgres  # noqa: E402

PG_DATABASE = "tb_bench_export"
LIMIT_MB = 150


def rss_mb() -> float:
    """Peak RSS of this process so far: VmHWM (ru_maxrss would include the pre-exec copy of
    the forking parent — the seeder's memory — in a child started by subprocess)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- parent: seed, pick the filter, run the children ---------------------------------
def seed(url: str, customers: int, bookings: int) -> None:
    from app.demo import seed_demo
    from app.extensions import db

    flask_app = fresh_app(url)
    with flask_app.app_context():
        started = time.perf_counter()
        seed_demo(customers=customers, bookings=bookings, seed=42, password="bench-only-password",
                  today=date(2026, 6, 15), fast=True)
        print(f"  seeded {customers} customers, {bookings} bookings in {time.perf_counter() - started:.0f} s",
              flush=True)
        db.session.remove()
        db.engine.dispose()


def cutoff(url: str, rows: int) -> str:
    """The local wall-clock time T with exactly `rows` bookings starting before it (as typed in the filter)."""
    from app.formatting import to_local
    from app.models import Booking

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        starts = conn.execute(sa.select(Booking.start_at).order_by(Booking.start_at).offset(rows).limit(1)).scalar()
        before = conn.execute(sa.select(sa.func.count()).where(Booking.start_at < starts)).scalar()
    engine.dispose()
    from app import create_app

    with create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"}).app_context():
        local = to_local(starts).strftime("%Y-%m-%d %H:%M:%S")
    print(f"  filter: Beginn < {local} (local) → {before} bookings", flush=True)
    return local


def run_child(mode: str, url: str, query: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--url", url, "--query", query],
        check=True, capture_output=True, text=True, cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- children -------------------------------------------------------------------------
def child_app(url: str, query: str, path: Path) -> dict:
    from app import create_app
    from app.jobs.base import acting_as
    from app.views.export import build_export_file

    flask_app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "INSTANCE_DIR": str(path.parent)})
    view = next(v for v in flask_app.appbuilder.baseviews if type(v).__name__ == "BookingView")
    with flask_app.app_context(), acting_as():
        # warm-up with a filter that matches nothing: imports, mappers, caches
        with flask_app.test_request_context("/bookingview/export/xlsx?_flt_2_start_at=1900-01-01+00:00:00"):
            build_export_file(view, "xlsx", path.with_suffix(".warm.xlsx"))
    return _measured(lambda: _app_export(flask_app, view, query, path, build_export_file, acting_as))


def _app_export(flask_app, view, query, path, build_export_file, acting_as) -> int:
    with flask_app.app_context(), acting_as(), flask_app.test_request_context(f"/bookingview/export/xlsx?{query}"):
        return build_export_file(view, "xlsx", path)


def child_raw(url: str, query: str, path: Path) -> dict:
    """The same rows and cells: one Core query, xlsxwriter constant_memory, no ORM, no FAB."""
    import xlsxwriter

    from app import create_app
    from app.extensions import db
    from app.formatting import business_tz, to_local
    from app.models import Booking, BookingStatus, Customer, Employee, Location, Service

    flask_app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    until = parse_qs(query)["_flt_2_start_at"][0]
    with flask_app.app_context():
        limit = datetime.fromisoformat(until).replace(tzinfo=business_tz())
        stmt = (
            sa.select(Booking.start_at, Booking.end_at, Customer.first_name, Customer.last_name, Service.name,
                      Employee.first_name, Employee.last_name, BookingStatus.name, Location.name, Booking.price,
                      Booking.source, Booking.comment)
            .join(Customer, Booking.customer_id == Customer.id).join(Service, Booking.service_id == Service.id)
            .join(Employee, Booking.employee_id == Employee.id)
            .outerjoin(BookingStatus, Booking.status_id == BookingStatus.id)
            .outerjoin(Location, Booking.location_id == Location.id)
            .where(Booking.start_at < limit).order_by(Booking.start_at.desc(), Booking.id)
        )
        def work() -> int:
            book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
            sheet = book.add_worksheet("Termine")
            dt = book.add_format({"num_format": "DD.MM.YYYY HH:MM"})
            money = book.add_format({"num_format": '#,##0.00 "€"'})
            bold = book.add_format({"bold": True})
            for col, header in enumerate(["Beginn", "Ende", "Kund:in", "Dienstleistung", "Mitarbeiter:in",
                                          "Status", "Filiale", "Preis", "Quelle", "Kommentar"]):
                sheet.write_string(0, col, header, bold)
            row = 0
            with db.engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=1000).execute(stmt)
                for start, end, cfirst, clast, service, efirst, elast, status, location, price, source, comment \
                        in result:
                    row += 1
                    sheet.write_datetime(row, 0, to_local(start).replace(tzinfo=None), dt)
                    sheet.write_datetime(row, 1, to_local(end).replace(tzinfo=None), dt)
                    sheet.write_string(row, 2, f"{cfirst} {clast}")
                    sheet.write_string(row, 3, service)
                    sheet.write_string(row, 4, f"{efirst} {elast}")
                    sheet.write_string(row, 5, status or "")
                    sheet.write_string(row, 6, location or "")
                    if price is not None:
                        sheet.write_number(row, 7, float(price), money)
                    sheet.write_string(row, 8, source or "")
                    if comment:
                        sheet.write_string(row, 9, comment)
            sheet.freeze_panes(1, 0)
            sheet.autofilter(0, 0, row, 9)
            book.close()
            return row

        return _measured(work)


def _measured(work) -> dict:
    baseline = rss_mb()
    started = time.perf_counter()
    rows = work()
    return {"rows": rows, "seconds": time.perf_counter() - started, "baseline_mb": baseline, "peak_mb": rss_mb()}


# --- main -------------------------------------------------------------------------------
def bench(url: str, args) -> None:
    seed(url, args.customers, args.bookings)
    local = cutoff(url, args.rows)
    # the list's own arguments: "Beginn kleiner als T", newest first (the list's default order)
    query = urlencode({"_flt_2_start_at": local, "_oc_BookingView": "start_at", "_od_BookingView": "desc"})
    results = {mode: run_child(mode, url, query) for mode in ("app", "raw")}
    for mode, label in (("app", "app export (FAB filters, ORM)"), ("raw", "xlsxwriter alone (Core query)")):
        result = results[mode]
        print(f"  {label:32} {result['rows']:>7} rows {result['seconds']:6.1f} s   RSS baseline "
              f"{result['baseline_mb']:5.0f} MB, peak {result['peak_mb']:5.0f} MB "
              f"(+{result['peak_mb'] - result['baseline_mb']:.0f} MB)", flush=True)
    ratio = results["app"]["seconds"] / results["raw"]["seconds"]
    verdict = "OK" if results["app"]["peak_mb"] < LIMIT_MB else "OVER"
    print(f"  time ratio app/raw {ratio:.2f}×; app peak {results['app']['peak_mb']:.0f} MB "
          f"< {LIMIT_MB} MB: {verdict}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--bookings", type=int, default=120000)
    parser.add_argument("--rows", type=int, default=100000, help="bookings the filter lets through")
    parser.add_argument("--postgres-url", help="admin URL; runs PostgreSQL instead of SQLite")
    parser.add_argument("--child", choices=["app", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--query", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory(prefix="tb-bench-xlsx-") as tmp:
            work = child_app if args.child == "app" else child_raw
            result = work(args.url, args.query, Path(tmp) / "export.xlsx")
            result["file_mb"] = (Path(tmp) / "export.xlsx").stat().st_size / 1e6
        print(json.dumps(result))
        return
    database = "PostgreSQL" if args.postgres_url else "SQLite (temp file)"
    print(f"XLSX export: {args.rows} of {args.bookings} bookings ({args.customers} customers), {database}",
          flush=True)
    if args.postgres_url:
        url = fresh_postgres(args.postgres_url, PG_DATABASE)
        if url is None:
            return
        try:
            bench(url, args)
        finally:
            drop_postgres(args.postgres_url, PG_DATABASE)
    else:
        with tempfile.TemporaryDirectory(prefix="tb-bench-") as tmp:
            bench(f"sqlite:///{tmp}/export.db", args)


if __name__ == "__main__":
    main()
