"""Export jobs: build an export file above the threshold, as the user who asked for it."""
from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.extensions import db
from app.jobs.base import acting_as
from app.jobs.queue import enqueue_after_commit, redis_connection
from app.models import ExportFile
from app.models.types import utcnow

log = logging.getLogger(__name__)
EXPORT_QUEUE = "exports"
JOB = "app.jobs.exports.build_export"


def start_export(session: Session, export_id: int) -> None:
    """Commit the export request and have it built: by an RQ worker (queue `exports`) when
    Redis is configured, otherwise inline right after the commit (until the jobs issue lands)."""
    if redis_connection() is not None:
        enqueue_after_commit(session, JOB, export_id, queue=EXPORT_QUEUE)
        session.commit()
        return
    session.commit()
    build_export(export_id)


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
    """Replay the list's query string in a request context of the view, acting as the
    requester: the row rules (employee_scope reads g.user) are theirs, not the worker's."""
    from app.views.export import build_export_file, exports_dir

    view = next((view for view in current_app.appbuilder.baseviews if type(view).__name__ == export.view_name),
                None)
    if view is None:
        raise LookupError(f"no view {export.view_name!r}")
    username = export.user.username
    path = f"{view.route_base}/export/{quote(export.format)}?{export.query_string}"
    with current_app.test_request_context(path), acting_as(username):
        return build_export_file(view, export.format, exports_dir() / stored_name)


def _remove(stored_name: str) -> None:
    from app.views.export import exports_dir

    (exports_dir() / stored_name).unlink(missing_ok=True)
