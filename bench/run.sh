#!/usr/bin/env bash
# Run the benchmarks; docs/performance.md records their numbers.
#   bench/run.sh          versioning overhead + demo seed at the default size + XLSX export of 100,000 rows
#                         + duplicate candidates at 100,000 customers + the bonus hook + 10,000 reminders
#                         through a worker to a local SMTP server (SQLite and PostgreSQL; Redis database 4)
#                         + the customer map at 10,000 customers (server render, size, headless Chromium)
#   bench/run.sh --big    also the demo seed at 100,000 customers / 1,000,000 bookings (several minutes)
#                         and the booking history list + availability at that size (bench/history_list.py)
# PostgreSQL: POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres); skipped when unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PG="${POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
# Drop the app's and Alembic's log lines from stderr, keep everything else (tracebacks).
quiet() { "$@" 2> >(grep -v -E '^[0-9-]+ [0-9:,]+ (INFO|WARNING|ERROR) |^INFO  \[alembic' >&2); }

echo "# $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores  load: $(cut -d' ' -f1-3 /proc/loadavg)"
quiet $PY bench/versioning_overhead.py --rows 10000 --rounds 3 --postgres-url "$PG"
echo
quiet $PY bench/seed_demo.py --path orm --path core
quiet $PY bench/seed_demo.py --path orm --path core --postgres-url "$PG"
echo
quiet $PY bench/export_xlsx.py
quiet $PY bench/export_xlsx.py --postgres-url "$PG"
echo
quiet $PY bench/duplicates.py  # duplicate candidates at 100,000 customers (target <= 10 s)
quiet $PY bench/duplicates.py --postgres-url "$PG"
echo
quiet $PY bench/bonus_hook.py  # the bonus ledger hook on bulk writes (ratio hook on / off)
quiet $PY bench/bonus_hook.py --postgres-url "$PG"
echo
quiet $PY bench/reminders.py  # 10,000 due reminders through a real worker to a local SMTP server
quiet $PY bench/reminders.py --postgres-url "$PG"
echo
quiet $PY bench/map_page.py  # the customer map at 10,000 customers: frame render, size, Chromium until clustered
quiet $PY bench/map_page.py --postgres-url "$PG"
if [[ "${1:-}" == "--big" ]]; then
    echo
    quiet $PY bench/seed_demo.py --customers 100000 --bookings 1000000
    quiet $PY bench/seed_demo.py --customers 100000 --bookings 1000000 --postgres-url "$PG"
    echo
    quiet $PY bench/history_list.py
    quiet $PY bench/history_list.py --postgres-url "$PG"
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
