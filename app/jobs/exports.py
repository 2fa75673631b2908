"""Export jobs: build an export file above the threshold, as the user who asked for it
(progress in the RQ job's meta), and the nightly Excel export of the booking list."""
from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.formatting import business_tz
from app.jobs.base import acting_as
from app.jobs.queue import enqueue_after_commit
from app.models import ExportFile, Setting
from app.models.types import utcnow
from app.security import SYSTEM_USERNAME

log = logging.getLogger(__name__)
EXPORT_QUEUE = "exports"
JOB = "app.jobs.exports.build_export"
PROGRESS_ROWS = 500  # the job's meta gets rows_done/rows_total every so many rows

# The nightly export: the booking list ("Termine", BookingView) as XLSX, see nightly_export().
NIGHTLY_VIEW = "BookingView"
NIGHTLY_QUERY_KEY, NIGHTLY_KEEP_KEY = "nightly_export_query", "nightly_export_keep"
DEFAULT_NIGHTLY_KEEP = 7


def export_job_id(export_id: int) -> str:
    """The RQ job id of ExportFile `export_id`: "Meine Exporte" reads its progress by it."""
    return f"export-{export_id}"


def start_export(session: Session, export_id: int) -> None:
    """Commit the export request and have it built after the commit: by an RQ worker (queue
    `exports`, job id `export-<id>`) with Redis, else in the web process's job thread."""
    enqueue_after_commit(session, JOB, export_id, queue=EXPORT_QUEUE, job_id=export_job_id(export_id))
    session.commit()


@contextmanager
def _app_context() -> Iterator[None]:
    """The running app's context, or a new app for a worker started without one."""
    if has_app_context():
        yield
        return
    from app import create_app

    with create_app().app_context():
        yield


def build_export(export_id: int) -> None:
    """Build the file of ExportFile `export_id` (status queued → running → done/failed)."""
    with _app_context():
        export = db.session.get(ExportFile, export_id)
        if export is None or export.status != "queued":
            return
        export.status = "running"
        db.session.commit()
        stored_name = f"{secrets.token_hex(16)}.{export.format}"
        try:
            count = _write(export, stored_name)
        except Exception:  # recorded on the row: the user sees it in "Meine Exporte"
            log.exception("export %s failed", export_id)
            db.session.rollback()
            _remove(stored_name)
            export = db.session.get(ExportFile, export_id)
            # the user reads a German sentence; the exception text stays in the log
            export.status, export.finished_at = "failed", utcnow()
            export.error = str(_l("Der Export ist fehlgeschlagen. Bitte erneut anfordern."))
            db.session.commit()
            return
        export.status, export.stored_name, export.row_count = "done", stored_name, count
        export.finished_at = utcnow()
        db.session.commit()


def _write(export: ExportFile, stored_name: str) -> int:
    from app.views.export import exports_dir

    return replay_export(export.view_name, export.format, export.query_string, export.user.username,
                         exports_dir() / stored_name, progress=_job_progress())


def replay_export(view_name: str, fmt: str, query_string: str, username: str, path: Path,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Replay a list's query string in a request context of the view, acting as `username`:
    the row rules (employee_scope reads g.user) are theirs, not the worker's. The on-demand
    background export and the nightly export both build their file here (build_export_file)."""
    from app.views.export import build_export_file

    view = next((view for view in current_app.appbuilder.baseviews if type(view).__name__ == view_name), None)
    if view is None:
        raise LookupError(f"no view {view_name!r}")
    route = f"{view.route_base}/export/{quote(fmt)}"
    with current_app.test_request_context(route, query_string=query_string), acting_as(username):
        return build_export_file(view, fmt, path, progress=progress, progress_every=PROGRESS_ROWS)


def _job_progress() -> Callable[[int, int], None] | None:
    """Inside an RQ job: a callback storing rows_done/rows_total in the job's meta."""
    from rq import get_current_job

    job = get_current_job()
    if job is None:
        return None

    def report(done: int, total: int) -> None:
        job.meta.update(rows_done=done, rows_total=total)
        try:
            job.save_meta()
        except Exception:  # progress is a nicety: the export goes on without it
            log.warning("could not store the progress of job %s", job.id, exc_info=True)

    return report


def _remove(stored_name: str) -> None:
    from app.views.export import exports_dir

    (exports_dir() / stored_name).unlink(missing_ok=True)


# --- the nightly export -------------------------------------------------------------------
def _setting(key: str) -> str:
    return (db.session.scalar(select(Setting.value).where(Setting.key == key)) or "").strip()


def nightly_keep() -> int:
    """Setting `nightly_export_keep`: how many nightly files stay (at least 1; not a number: 7)."""
    try:
        return max(int(_setting(NIGHTLY_KEEP_KEY)), 1)
    except ValueError:
        return DEFAULT_NIGHTLY_KEEP


def nightly_query(raw: str) -> str:
    """Setting `nightly_export_query` as the export's query string. It takes what the address bar
    of the filtered booking list shows: the part after "?" (a whole URL is fine too). Paging is
    dropped. Without a date filter (`_flt_<n>_start_at`) the export holds all years: the list's
    own „alle Jahre“ start (the list itself shows only a recent window without one)."""
    from app.views.base import PAGING_ARG
    from app.views.booking_history import ALL_YEARS_FROM, START_FILTER_ARG

    text = raw.strip().split("#", 1)[0]
    if "?" in text:
        text = text.split("?", 1)[1]
    pairs = [(key, value) for key, value in parse_qsl(text, keep_blank_values=True) if not PAGING_ARG.match(key)]
    if not any(START_FILTER_ARG.match(key) for key, _value in pairs):
        pairs.append(("_flt_1_start_at", ALL_YEARS_FROM))
    return urlencode(pairs)


def nightly_export() -> str | None:
    """The booking list as XLSX into `<INSTANCE_DIR>/exports/nightly/buchungen-YYYY-MM-DD.xlsx`
    (the business's local date; a second run the same day replaces the file), built as the
    system user (Owner rights: every row) through the on-demand export's code, so rows and
    columns are the same as the list's export with the same filters. Written to a temporary
    name and renamed; then only the newest `nightly_export_keep` files of that name pattern
    stay. A filter the list refuses (setting `nightly_export_query`): an error in the log, no
    file, the older files untouched. Returns the file's path, or None. Needs an app context
    (the worker gives each job one; cron: app/jobs/schedule.py)."""
    from app.views.export import nightly_dir, nightly_files

    folder = nightly_dir()
    target = folder / f"buchungen-{datetime.now(business_tz()):%Y-%m-%d}.xlsx"  # of NIGHTLY_NAME
    temp = folder / f"tmp-{secrets.token_hex(8)}-{target.name}"  # never of the pattern: not served, not rotated
    raw = _setting(NIGHTLY_QUERY_KEY)
    try:
        count = replay_export(NIGHTLY_VIEW, "xlsx", nightly_query(raw), SYSTEM_USERNAME, temp)
    except HTTPException as exc:  # the list's own answer to bad filters (400 "Ungültiger Filter.")
        temp.unlink(missing_ok=True)
        log.error("nightly export not written: the list refuses %s=%r (%s)", NIGHTLY_QUERY_KEY, raw,
                  exc.description)
        return None
    except BaseException:
        temp.unlink(missing_ok=True)
        log.exception("nightly export failed")
        raise
    finally:
        db.session.rollback()  # the export only reads: end its transaction
    os.replace(temp, target)
    keep = nightly_keep()
    for old in nightly_files()[:-keep]:
        old.unlink(missing_ok=True)
    if count:
        log.info("nightly export %s: %d rows", target.name, count)
    else:  # written (the list shows nothing either), but likely not what was meant
        log.warning("nightly export %s has no rows: check %s=%r", target.name, NIGHTLY_QUERY_KEY, raw)
    return str(target)
