"""CSV/XLSX export of exactly the rows a list shows: the list's own filter arguments
(`_flt_<n>_<col>`), order (`_oc_`/`_od_`) and row rules, streamed in chunks.
Above the setting `export_async_threshold` the file is built by a background job
(app/jobs/exports.py, progress in the job's meta) and downloaded from "Meine Exporte",
where the Owner also finds the nightly exports (`nightly_export`)."""
from __future__ import annotations

import csv
import io
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter
from flask import abort, current_app, flash, g, redirect, request, send_file, stream_with_context, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.exceptions import FABException
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from flask_appbuilder.urltools import get_filter_args, get_order_args
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.extensions import db
from app.formatting import business_tz, fmt_datetime, fmt_money, to_local
from app.models import ExportFile, Setting
from app.models.exports import EXPORT_STATUSES
from app.models.types import utcnow
from app.security import OWNER, restrict, role_names
from app.views.base import SecureModelView, check_list_args

log = logging.getLogger(__name__)

CHUNK_ROWS = 1000
DEFAULT_ASYNC_THRESHOLD = 20000
THRESHOLD_KEY = "export_async_threshold"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CSV_DATETIME = "%d.%m.%Y %H:%M"
CSV_DATE = "%d.%m.%Y"
XLSX_DATETIME = "DD.MM.YYYY HH:MM"
XLSX_DATE = "DD.MM.YYYY"
XLSX_MONEY = '#,##0.00 "€"'
# The nightly export's files (app/jobs/exports.py): the only names the download serves.
NIGHTLY_NAME = re.compile(r"buchungen-\d{4}-\d{2}-\d{2}\.xlsx")
RUNNING_STATUSES = ("queued", "running")
REFRESH_SECONDS = 5
REFRESH_HOURS = 24  # an export "running" for longer than this (its worker died) no longer reloads the page


# --- cell values ----------------------------------------------------------------
def guard_formula(text: str) -> str:
    """A text cell Excel would run as a formula gets a leading apostrophe (CSV/formula injection)."""
    return "'" + text if text.startswith(FORMULA_START) else text


def column_value(item: Any, col: str) -> Any:
    """The value of a (dotted) column or method of `item`, as FAB's list reads it."""
    value = item
    for part in col.split("."):
        value = getattr(value, part, None) if value is not None else None
    return value() if callable(value) else value


def csv_cell(value: Any, money: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("Ja") if value else _("Nein")
    if isinstance(value, datetime):
        return to_local(value).strftime(CSV_DATETIME) if value.tzinfo else value.strftime(CSV_DATETIME)
    if isinstance(value, date):
        return value.strftime(CSV_DATE)
    if isinstance(value, (Decimal, float)):
        return (f"{value:.2f}" if money else str(value)).replace(".", ",")
    if isinstance(value, int):
        return str(value)
    return guard_formula(str(value))


def excel_datetime(value: datetime) -> datetime:
    """Naive wall-clock time of the business (Excel has no time zones)."""
    return to_local(value).replace(tzinfo=None) if value.tzinfo else value


# --- the rows of the list ---------------------------------------------------------
def export_threshold() -> int:
    raw = db.session.scalar(select(Setting.value).where(Setting.key == THRESHOLD_KEY))
    try:
        return max(int((raw or "").strip()), 0)
    except ValueError:
        return DEFAULT_ASYNC_THRESHOLD


class ExportRows:
    """The filtered, ordered query of a list view for the current request's arguments."""

    def __init__(self, view, progress: Callable[[int, int], None] | None = None, progress_every: int = 500):
        """`progress(rows_done, rows_total)` is called every `progress_every` rows and at the end."""
        check_list_args(view)
        self.view = view
        self.progress, self.progress_every = progress, max(progress_every, 1)
        datamodel = view.datamodel
        order_column, order_direction = get_order_args().get(type(view).__name__, ("", ""))
        order_column, order_direction = view._safe_order(view, order_column, order_direction)
        if not order_column and view.base_order:
            order_column, order_direction = view.base_order
        get_filter_args(view._filters)  # exactly what FAB's _list does with the same arguments
        filters = view._filters.get_joined_filters(view._base_filters)
        query = datamodel.session.query(datamodel.obj)
        self.count = datamodel.query_count(query, filters, None)
        query = datamodel.apply_all(query, filters, order_column, order_direction)
        # equal sort values in id order: the file's order is the same on every run
        self.query = query.order_by(*datamodel.obj.__mapper__.primary_key)

    @property
    def columns(self) -> list[str]:
        return list(self.view.export_columns or self.view.list_columns)

    def headers(self) -> list[str]:
        return [str(self.view.label_columns.get(col, col)) for col in self.columns]

    def money_columns(self) -> set[str]:
        formatters = self.view.formatters_columns
        return {col for col in self.columns if formatters.get(col) is fmt_money}

    def __iter__(self) -> Iterator[list[Any]]:
        """Rows of values, fetched CHUNK_ROWS at a time (a server-side cursor on PostgreSQL)."""
        columns = self.columns
        formatters = [self._memoized(self.view.export_formatters.get(col)) for col in columns]
        progress, every, done = self.progress, self.progress_every, 0
        if progress is not None:
            progress(0, self.count)
        for item in self.query.yield_per(CHUNK_ROWS):
            values = [column_value(item, col) for col in columns]
            yield [value if fmt is None or value is None else fmt(value) for value, fmt in zip(values, formatters,
                                                                                              strict=True)]
            done += 1
            if progress is not None and done % every == 0:
                progress(done, max(self.count, done))
        if progress is not None:
            progress(done, done)  # at the end the total is exact (rows may have come or gone since the COUNT)

    @staticmethod
    def _memoized(formatter: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
        """Formatters map a few codes to labels: translate each code once per export, not per row."""
        if formatter is None:
            return None
        cache: dict[Any, str] = {}

        def cached(value: Any) -> str:
            if value not in cache:
                cache[value] = str(formatter(value))
            return cache[value]

        return cached


# --- writers ------------------------------------------------------------------------
def csv_chunks(rows: ExportRows) -> Iterator[str]:
    """The CSV German Excel opens cleanly: BOM, `;`, decimal comma, dd.mm.yyyy hh:mm."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    money = [col in rows.money_columns() for col in rows.columns]
    writer.writerow([guard_formula(header) for header in rows.headers()])
    yield "\ufeff" + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for number, values in enumerate(rows, start=1):
        writer.writerow([csv_cell(value, is_money) for value, is_money in zip(values, money, strict=True)])
        if number % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_csv(rows: ExportRows, path: Path) -> int:
    with path.open("w", encoding="utf-8", newline="") as out:
        for chunk in csv_chunks(rows):
            out.write(chunk)
    return rows.count


def write_xlsx(rows: ExportRows, path: Path) -> int:
    """xlsxwriter in constant_memory mode: each row is flushed once the next begins."""
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(path.parent)})
    try:
        sheet = workbook.add_worksheet(str(rows.view.list_title)[:31] or "Export")
        formats = {
            "header": workbook.add_format({"bold": True}),
            "datetime": workbook.add_format({"num_format": XLSX_DATETIME}),
            "date": workbook.add_format({"num_format": XLSX_DATE}),
            "money": workbook.add_format({"num_format": XLSX_MONEY}),
        }
        headers = rows.headers()
        for col, header in enumerate(headers):
            sheet.set_column(col, col, max(12, min(len(header) + 4, 40)))
            sheet.write_string(0, col, guard_formula(header), formats["header"])
        money = [col in rows.money_columns() for col in rows.columns]
        count = 0
        for count, values in enumerate(rows, start=1):
            for col, value in enumerate(values):
                write_xlsx_cell(sheet, count, col, value, money[col], formats)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(count, 1), len(headers) - 1)
    finally:
        workbook.close()
    return count


def write_xlsx_cell(sheet, row: int, col: int, value: Any, money: bool, formats: dict) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_string(row, col, _("Ja") if value else _("Nein"))
    elif isinstance(value, datetime):
        sheet.write_datetime(row, col, excel_datetime(value), formats["datetime"])
    elif isinstance(value, date):
        sheet.write_datetime(row, col, datetime(value.year, value.month, value.day), formats["date"])
    elif isinstance(value, (Decimal, float, int)):
        sheet.write_number(row, col, float(value), formats["money"] if money else None)
    else:
        sheet.write_string(row, col, guard_formula(str(value)))


WRITERS = {"csv": write_csv, "xlsx": write_xlsx}


def exports_dir() -> Path:
    folder = Path(current_app.config["INSTANCE_DIR"]) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def nightly_dir() -> Path:
    folder = exports_dir() / "nightly"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def nightly_files() -> list[Path]:
    """The nightly export files (only names of NIGHTLY_NAME), oldest first (the date is in the name)."""
    return sorted(path for path in nightly_dir().iterdir() if NIGHTLY_NAME.fullmatch(path.name) and path.is_file())


def export_filename(view, fmt: str) -> str:
    day = datetime.now(business_tz()).strftime("%Y-%m-%d")
    return f"{view.export_name}_{day}.{fmt}"


# --- the views ----------------------------------------------------------------------
class ExportMixin:
    """Adds /export/csv and /export/xlsx (permission `can_export`) to a SecureModelView list.
    The routes take the list's query string; above the threshold a GET asks to confirm
    and the confirming POST (CSRF-checked) queues the background job."""

    export_columns: list[str] = []
    # column → plain value for the file (a code → its German label); not the HTML list formatters
    export_formatters: dict[str, Callable[[Any], Any]] = {}
    export_name = "export"
    list_template = "terminbuch/list_export.html"

    @expose("/export/csv", methods=["GET", "POST"])
    @has_access
    @permission_name("export")
    def export_csv(self):
        return self._export("csv")

    @expose("/export/xlsx", methods=["GET", "POST"])
    @has_access
    @permission_name("export")
    def export_xlsx(self):
        return self._export("xlsx")

    def _export(self, fmt: str):
        rows = ExportRows(self)
        if request.method == "POST":
            return self._queue_export(fmt, rows.count)
        threshold = export_threshold()
        if rows.count > threshold:
            query = request.query_string.decode("utf-8", "replace")
            return self.render_template(
                "terminbuch/exports_confirm.html", title=_("Export im Hintergrund"), count=rows.count,
                fmt=fmt.upper(), threshold=threshold, action=request.full_path,
                back=f"{url_for(f'{self.endpoint}.list')}?{query}",
            )
        filename = export_filename(self, fmt)
        if fmt == "xlsx":
            return send_xlsx(rows, filename)
        response = Response(stream_with_context(csv_chunks(rows)), mimetype=MIMETYPES["csv"])
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def _queue_export(self, fmt: str, count: int):
        export = ExportFile(
            user_id=g.user.id, view_name=type(self).__name__, format=fmt,
            query_string=request.query_string.decode("utf-8", "replace"), status="queued",
            row_count=count, filename=export_filename(self, fmt),
        )
        db.session.add(export)
        db.session.flush()
        from app.jobs.exports import start_export

        start_export(db.session, export.id)
        flash(_("Der Export (%(count)d Zeilen) wird im Hintergrund erstellt. Sie finden ihn unter "
                "„Meine Exporte“.", count=count), "info")
        return redirect(url_for("ExportFileView.list"))


def send_xlsx(rows: ExportRows, filename: str) -> Response:
    """Write the workbook to a temporary file and send it; the file is gone once opened
    (an unlinked file stays readable until the response closes it)."""
    path = exports_dir() / f"tmp-{secrets.token_hex(16)}.xlsx"
    try:
        write_xlsx(rows, path)
        handle = path.open("rb")
    finally:
        path.unlink(missing_ok=True)
    return send_file(handle, mimetype=MIMETYPES["xlsx"], as_attachment=True, download_name=filename)


def build_export_file(view, fmt: str, path: Path, progress: Callable[[int, int], None] | None = None,
                      progress_every: int = 500) -> int:
    """The export of `view` for the current (job's) request arguments into `path`; the row count.
    `progress(rows_done, rows_total)`: see ExportRows."""
    return WRITERS[fmt](ExportRows(view, progress, progress_every), path)


def _view_title(view_name: str) -> str:
    for view in current_app.appbuilder.baseviews:
        if type(view).__name__ == view_name:
            return str(view.list_title)
    return view_name


def _download_link(export_id: int | None) -> Markup | str:
    if export_id is None:
        return ""
    url = url_for("ExportFileView.download", pk=export_id)
    return Markup('<a class="btn btn-sm btn-primary" href="{url}"><i class="fa fa-download"></i> {label}</a>').format(
        url=url, label=_("Herunterladen"))


def job_progress(export_id: int) -> tuple[int, int | None] | None:
    """(rows_done, rows_total) from the meta of the RQ job `export-<id>`; None without Redis,
    without the job (not started, expired) or without progress in it yet."""
    from app.jobs.exports import export_job_id
    from app.jobs.queue import redis_connection

    connection = redis_connection()
    if connection is None:
        return None
    from redis.exceptions import RedisError
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        meta = Job.fetch(export_job_id(export_id), connection=connection).meta or {}
    except (NoSuchJobError, RedisError):  # the page shows the plain status instead
        return None
    except Exception:  # an unreadable job must not take "Meine Exporte" down
        log.warning("progress of export %s unreadable", export_id, exc_info=True)
        return None
    done, total = meta.get("rows_done"), meta.get("rows_total")
    if not isinstance(done, int):
        return None
    return done, total if isinstance(total, int) and total > 0 else None


def _status_text(ref: tuple[int, str]) -> str:
    """The status; a running export with its job's progress: „läuft – 1.500 von 20.000 Zeilen (7 %)“."""
    export_id, status = ref
    progress = job_progress(export_id) if status == "running" else None
    if progress is None:
        return str(EXPORT_STATUSES.get(status, status))
    done, total = progress
    if total is None:
        return _("läuft – %(done)s Zeilen", done=format_decimal(done))
    return _("läuft – %(done)s von %(total)s Zeilen (%(percent)s %%)", done=format_decimal(done),
             total=format_decimal(total), percent=format_decimal(min(done * 100 // total, 100)))


def is_owner() -> bool:
    user = getattr(g, "user", None)
    return user is not None and OWNER in role_names(user)


class ExportFileView(SecureModelView):
    """„Meine Exporte“: the current user's own exports (row rule) with status and download;
    while one of them is queued or running the page reloads itself (REFRESH_SECONDS) and shows
    the job's progress. The Owner also sees the nightly export files (app/jobs/exports.py)."""

    datamodel = SQLAInterface(ExportFile)
    list_title = _l("Meine Exporte")
    base_permissions = ["can_list", "can_show", "can_download"]
    include_route_methods = {"list", "show", "download", "nightly"}
    exclude_route_methods: set[str] = set()
    list_template = "terminbuch/export_list.html"
    # status_progress: the status, for a running export with the job's progress (_status_text)
    list_columns = ["created_at", "view_name", "format", "status_progress", "row_count", "finished_at", "error",
                    "download_id"]
    show_columns = ["created_at", "view_name", "format", "query_string", "status_progress", "row_count",
                    "finished_at", "error", "filename", "download_id"]
    search_columns = ["format", "status"]
    base_order = ("created_at", "desc")
    label_columns = {
        "created_at": _l("Angefordert am"), "view_name": _l("Liste"), "format": _l("Format"),
        "status": _l("Status"), "status_progress": _l("Status"), "row_count": _l("Zeilen"),
        "finished_at": _l("Fertig am"), "error": _l("Fehler"), "download_id": _l("Datei"), "query_string": _l("Filter"),
        "filename": _l("Dateiname"),
    }
    formatters_columns = {
        "created_at": fmt_datetime, "finished_at": fmt_datetime, "view_name": _view_title,
        "format": lambda fmt: fmt.upper(), "status": lambda status: EXPORT_STATUSES.get(status, status),
        "status_progress": _status_text, "download_id": _download_link,
        "error": lambda text: _(text) if text else "",  # stored in German (app/jobs/exports.py), shown translated
    }

    @expose("/download/<int:pk>")
    @has_access
    def download(self, pk):
        """Only the requester's own, finished export (others: 404); never from static."""
        export = self._visible_item(pk)
        if export is None or export.status != "done" or not export.stored_name:
            abort(404)
        path = exports_dir() / export.stored_name
        if not path.is_file():
            abort(404)
        return send_file(path, mimetype=MIMETYPES[export.format], as_attachment=True,
                         download_name=export.filename)

    @expose("/list/")
    @has_access
    def list(self):
        """FAB's list, plus the reload while an export is under way and the Owner's nightly files."""
        self.update_redirect()
        try:
            widgets = self._list()
        except FABException as exc:  # as FAB's own list does
            log.warning("export list refused: %s", exc)
            flash(_("Die Liste konnte mit diesen Angaben nicht geladen werden."), "warning")
            return redirect(self.get_redirect())
        nightly = None
        if is_owner():
            nightly = [{"name": path.name, "size": path.stat().st_size} for path in reversed(nightly_files())]
        return self.render_template(
            self.list_template, title=self.list_title, widgets=widgets, nightly_files=nightly,
            refresh_seconds=REFRESH_SECONDS if self._under_way() else None,
        )

    @staticmethod
    def _under_way() -> bool:
        """One of the user's own exports is queued or running (and not for a day: its worker died)."""
        since = utcnow() - timedelta(hours=REFRESH_HOURS)
        query = select(ExportFile.id).where(ExportFile.status.in_(RUNNING_STATUSES), ExportFile.created_at >= since)
        return db.session.scalar(restrict(query, ExportFile).limit(1)) is not None

    @expose("/nightly/<name>")
    @has_access
    @permission_name("download")
    def nightly(self, name):
        """A nightly export file: the Owner only (others 403), a name of NIGHTLY_NAME only (404)."""
        if not is_owner():
            abort(403)
        if not NIGHTLY_NAME.fullmatch(name):
            abort(404)
        path = nightly_dir() / name
        if not path.is_file():
            abort(404)
        return send_file(path, mimetype=MIMETYPES["xlsx"], as_attachment=True, download_name=name)
