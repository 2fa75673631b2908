"""CSV/XLSX export: exactly the rows of the filtered list (same filters, order, row
rules), German headers, Excel formats, formula injection guarded, the background
export above the threshold (inline without Redis, a real RQ worker with Redis) and
"Meine Exporte" (downloads by the requester only)."""
from __future__ import annotations

import csv
import html as html_lib
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from tests.conftest import TEST_REDIS_URL as REDIS_URL  # this worker's Redis database
from tests.helpers_perm import html, is_login_redirect, session_csrf

WINDOW = {"_flt_1_start_at": "2037-01-01 00:00:00", "_flt_2_start_at": "2037-03-01 00:00:00"}
ASC = {"_oc_BookingView": "start_at", "_od_BookingView": "asc"}
BOOKING_HEADERS = ["Beginn", "Ende", "Kund:in", "Dienstleistung", "Mitarbeiter:in", "Status", "Filiale", "Preis",
                   "Quelle", "Kommentar"]
SHOW_LINK = re.compile(r'href="/bookingview/show/(\d+)')
EXPORT_LINK = re.compile(r'id="tb-export-(csv|xlsx)"\s+href="([^"]+)"')
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


# --- data: 8 bookings of employee1, 4 of employee2 in Jan/Feb 2037 ------------------
@pytest.fixture(scope="module")
def export_data(app, world):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking, Customer

    with app.app_context(), acting_as():
        evil = Customer(first_name="=HYPERLINK(\"http://x\")", last_name="Formel", phone="+49301111",
                        email="formel@example.org")
        db.session.add(evil)
        bookings = []
        for n in range(12):
            employee = world.employee1 if n < 8 else world.employee2
            # Mondays to Thursdays, 08:00 UTC = 09:00 in Berlin (winter time); price 1234.50 + n
            day = datetime(2037, 1, 5, 8, 0, tzinfo=timezone.utc) + timedelta(days=7 * (n % 8) + n // 8)
            customer = {"customer": evil} if n == 0 else {"customer_id": world.customer1}
            bookings.append(Booking(
                **customer, service_id=world.service, employee_id=employee, start_at=day,
                price=Decimal("1234.50") + n, comment=f"Export {n:02d}" if n else "-1 Minus und @Start",
            ))
        db.session.add_all(bookings)
        db.session.commit()
        ids = [b.id for b in bookings]
        comments = {b.id: b.comment for b in bookings}
        evil_id = evil.id
    yield {"ids": ids, "comments": comments, "evil": evil_id}
    with app.app_context(), acting_as():
        for pk in ids:
            db.session.delete(db.session.get(Booking, pk))
        db.session.delete(db.session.get(Customer, evil_id))
        db.session.commit()


# --- helpers ------------------------------------------------------------------------
def list_page(client, params: dict) -> tuple[list[int], dict[str, str]]:
    """Row ids of the list page (in order) and its export links."""
    response = client.get(f"/bookingview/list/?{urlencode({**params, 'psize_BookingView': 100})}",
                          follow_redirects=True)
    assert response.status_code == 200
    page = html(response)
    ids = list(dict.fromkeys(int(pk) for pk in SHOW_LINK.findall(page)))
    links = {fmt: html_lib.unescape(url) for fmt, url in EXPORT_LINK.findall(page)}
    return ids, links


def read_csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith("\ufeff".encode()), "no UTF-8 BOM"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def read_xlsx(data: bytes) -> list[dict]:
    """The first sheet's rows as lists of cells {value, format, bold} (no openpyxl: the XML)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    shared = []
    if "xl/sharedStrings.xml" in names:
        root = ET.fromstring(archive.read("xl/sharedStrings.xml"))
        shared = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in root.findall("m:si", NS)]
    styles = ET.fromstring(archive.read("xl/styles.xml"))
    num_formats = {fmt.get("numFmtId"): fmt.get("formatCode") for fmt in styles.iter(f"{{{NS['m']}}}numFmt")}
    fonts = [font.find("m:b", NS) is not None for font in styles.find("m:fonts", NS)]
    xfs = styles.find("m:cellXfs", NS).findall("m:xf", NS)
    sheet = ET.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.find("m:sheetData", NS).findall("m:row", NS):
        cells = []
        for cell in row.findall("m:c", NS):
            kind, value = cell.get("t"), cell.find("m:v", NS)
            if kind == "s":
                text = shared[int(value.text)]
            elif kind == "inlineStr":
                text = "".join(t.text or "" for t in cell.iter(f"{{{NS['m']}}}t"))
            else:
                text = float(value.text) if value is not None else None
            xf = xfs[int(cell.get("s", 0))]
            cells.append({"value": text, "format": num_formats.get(xf.get("numFmtId")),
                          "bold": fonts[int(xf.get("fontId", 0))]})
        rows.append(cells)
    return rows, sheet


def excel_date(serial: float) -> datetime:
    return datetime(1899, 12, 30) + timedelta(days=serial)


def comments_of(export_data, ids: list[int]) -> list[str]:
    return [export_data["comments"][pk] for pk in ids]


@contextmanager
def setting(app, key: str, value: str):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Setting

    with app.app_context(), acting_as():
        row = db.session.scalar(select(Setting).where(Setting.key == key))
        old, row.value = row.value, value
        db.session.commit()
    try:
        yield
    finally:
        with app.app_context(), acting_as():
            db.session.scalar(select(Setting).where(Setting.key == key)).value = old
            db.session.commit()


@contextmanager
def redis_config(app, url: str | None):
    old = app.config.get("REDIS_URL")
    app.config["REDIS_URL"] = url
    try:
        yield
    finally:
        app.config["REDIS_URL"] = old


# --- export equals the filtered list -----------------------------------------------------
FILTERED = [
    pytest.param(lambda w: {**WINDOW, **ASC, "_flt_0_employee": w.employee1}, 8, id="employee1-asc"),
    pytest.param(lambda w: {**WINDOW, "_oc_BookingView": "price", "_od_BookingView": "desc"}, 12, id="price-desc"),
    pytest.param(lambda w: {**WINDOW, **ASC, "_flt_1_employee": w.employee1}, 4, id="not-employee1"),
    # the booking history's own filters (customer name, comment keyword on the search index)
    pytest.param(lambda w: {**WINDOW, **ASC, "_flt_0_customer_name": "formel"}, 1, id="customer-name"),
    pytest.param(lambda w: {**WINDOW, "_flt_0_comment": "Export", "_oc_BookingView": "price",
                            "_od_BookingView": "asc"}, 11, id="comment-keyword"),
]


@pytest.mark.parametrize(("params", "expected"), FILTERED)
def test_csv_export_equals_the_filtered_list(manager, world, export_data, params, expected):
    ids, links = list_page(manager, params(world))
    assert len(ids) == expected
    response = manager.get(links["csv"])
    assert response.status_code == 200
    assert response.is_streamed, "the CSV must be streamed, not built in memory"
    rows = read_csv(response)
    assert rows[0] == BOOKING_HEADERS
    assert [row[-1].lstrip("'") for row in rows[1:]] == comments_of(export_data, ids)


@pytest.mark.parametrize(("params", "expected"), FILTERED)
def test_xlsx_export_equals_the_filtered_list(manager, world, export_data, params, expected):
    ids, links = list_page(manager, params(world))
    assert len(ids) == expected
    response = manager.get(links["xlsx"])
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    rows, _sheet = read_xlsx(response.get_data())
    assert [cell["value"] for cell in rows[0]] == BOOKING_HEADERS
    assert [row[-1]["value"].lstrip("'") for row in rows[1:]] == comments_of(export_data, ids)


def test_csv_is_german_excel_csv(manager, world, export_data):
    query = urlencode({**WINDOW, **ASC, "_flt_0_employee": world.employee1})
    response = manager.get(f"/bookingview/export/csv?{query}")
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="termine_\d{4}-\d{2}-\d{2}\.csv"', disposition)
    assert response.mimetype == "text/csv"
    rows = read_csv(response)
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["Beginn"] == "05.01.2037 09:00"  # 08:00 UTC in Berlin
    assert first["Ende"] == "05.01.2037 10:00"
    assert first["Preis"] == "1234,50"
    assert first["Mitarbeiter:in"] == "Eva Eins"
    assert first["Quelle"] == "Büro"  # the German label, not the code "backoffice"
    assert all(len(row) == len(BOOKING_HEADERS) for row in rows)


def test_csv_streams_in_chunks(manager, world, export_data):
    query = urlencode({**WINDOW, **ASC})
    response = manager.get(f"/bookingview/export/csv?{query}")
    assert response.is_streamed
    chunks = list(response.response)
    assert len(chunks) >= 2, "header and rows come as separate chunks of the generator"
    assert "".join(chunk if isinstance(chunk, str) else chunk.decode() for chunk in chunks).count("\r\n") == 13


def test_xlsx_has_excel_formats(manager, world, export_data):
    query = urlencode({**WINDOW, **ASC, "_flt_0_employee": world.employee1})
    response = manager.get(f"/bookingview/export/xlsx?{query}")
    assert re.search(r'filename="?termine_\d{4}-\d{2}-\d{2}\.xlsx', response.headers["Content-Disposition"])
    rows, sheet = read_xlsx(response.get_data())
    assert all(cell["bold"] for cell in rows[0])
    start, end, price = rows[1][0], rows[1][1], rows[1][7]
    assert start["format"] == "DD.MM.YYYY HH:MM" and end["format"] == "DD.MM.YYYY HH:MM"
    assert excel_date(start["value"]) == datetime(2037, 1, 5, 9, 0)  # a real date cell, local time
    assert price["value"] == 1234.5 and "#,##0.00" in price["format"] and "€" in price["format"]
    assert rows[1][4]["value"] == "Eva Eins"
    assert sheet.find("m:autoFilter", NS).get("ref") == "A1:J9"
    pane = sheet.find("m:sheetViews/m:sheetView/m:pane", NS)
    assert pane.get("state") == "frozen" and pane.get("ySplit") == "1"


def test_formula_injection_is_guarded(manager, world, export_data):
    query = urlencode({**WINDOW, **ASC, "_flt_0_employee": world.employee1})
    csv_rows = read_csv(manager.get(f"/bookingview/export/csv?{query}"))
    assert csv_rows[1][2] == "'=HYPERLINK(\"http://x\") Formel"
    assert csv_rows[1][-1] == "'-1 Minus und @Start"
    assert csv_rows[2][-1] == "Export 01"  # harmless text unchanged
    xlsx_rows, _sheet = read_xlsx(manager.get(f"/bookingview/export/xlsx?{query}").get_data())
    assert xlsx_rows[1][2]["value"] == "'=HYPERLINK(\"http://x\") Formel"
    assert xlsx_rows[1][-1]["value"] == "'-1 Minus und @Start"

    customers = read_csv(manager.get("/customerview/export/csv?" + urlencode({"_flt_0_last_name": "Formel"})))
    assert customers[0][:5] == ["Nachname", "Vorname", "Markierung", "E-Mail", "Telefon"]
    assert len(customers) == 2
    assert customers[1][1] == "'=HYPERLINK(\"http://x\")" and customers[1][4] == "'+49301111"


# --- row rules and permissions -------------------------------------------------------------
def test_employee_exports_only_own_rows_even_with_forged_filters(employee, world, export_data):
    forged = urlencode({**WINDOW, **ASC, "_flt_0_employee": world.employee2})
    rows = read_csv(employee.get(f"/bookingview/export/csv?{forged}"))
    assert rows == [BOOKING_HEADERS]
    xlsx_rows, _sheet = read_xlsx(employee.get(f"/bookingview/export/xlsx?{forged}").get_data())
    assert len(xlsx_rows) == 1

    ids, links = list_page(employee, {**WINDOW, **ASC})
    rows = read_csv(employee.get(links["csv"]))
    assert [row[-1].lstrip("'") for row in rows[1:]] == comments_of(export_data, ids)
    assert len(rows) == 9 and {row[4] for row in rows[1:]} == {"Eva Eins"}

    customers = read_csv(employee.get("/customerview/export/csv"))
    names = {row[0] for row in customers[1:]}
    assert "Berg" in names and "Colleague" not in names  # employee2's customer stays hidden


def test_viewer_may_not_export(viewer, world, export_data):
    for url in ("/bookingview/export/csv", "/bookingview/export/xlsx", "/customerview/export/csv",
                "/exportfileview/list/"):
        assert viewer.get(url).status_code == 403, url
    _ids, links = list_page(viewer, {**WINDOW, **ASC})
    assert links == {}, "the viewer's list shows no export buttons"
    assert "tb-export-csv" not in html(viewer.get("/customerview/list/"))


def test_customer_list_has_export_buttons_with_its_query(manager):
    page = html(manager.get("/customerview/list/?_flt_0_last_name=Berg"))
    links = {fmt: html_lib.unescape(url) for fmt, url in EXPORT_LINK.findall(page)}
    assert links == {"csv": "/customerview/export/csv?_flt_0_last_name=Berg",
                     "xlsx": "/customerview/export/xlsx?_flt_0_last_name=Berg"}
    rows = read_csv(manager.get(links["csv"]))
    assert ["Berg", "Anna"] in [row[:2] for row in rows[1:]]
    assert all(row[0].startswith("Berg") for row in rows[1:])


def test_anonymous_goes_to_login(client_for):
    anonymous = client_for(None)
    for url in ("/bookingview/export/csv", "/customerview/export/xlsx", "/exportfileview/list/"):
        assert is_login_redirect(anonymous.get(url)), url


def test_bad_filter_or_order_is_refused_not_500(manager):
    assert manager.get("/bookingview/export/csv?_flt_9_employee=1").status_code == 400
    assert manager.get("/bookingview/export/xlsx?_flt_0_employee=abc").status_code == 400
    response = manager.get("/bookingview/export/csv?_oc_BookingView=customer_id&_od_BookingView=up")
    assert response.status_code == 200  # an undeclared order column falls back to the list's order


def test_threshold_setting_is_seeded(app):
    from app.extensions import db
    from app.models import Setting

    with app.app_context():
        assert db.session.scalar(select(Setting.value).where(Setting.key == "export_async_threshold")) == "20000"


# --- background export ----------------------------------------------------------------------
def exports_of(app, user_id: int) -> list:
    from app.extensions import db
    from app.models import ExportFile

    with app.app_context():
        return db.session.scalars(
            select(ExportFile).where(ExportFile.user_id == user_id).order_by(ExportFile.id)).all()


def request_background_export(client, url: str):
    """GET asks to confirm (creates nothing), the confirming POST (with CSRF) queues the job."""
    page = client.get(url)
    assert page.status_code == 200 and "im Hintergrund" in html(page)
    assert page.headers.get("Content-Disposition") is None
    assert client.post(url).status_code == 400, "a POST without CSRF token must be refused"
    return client.post(url, data={"csrf_token": session_csrf(client)})


def test_above_threshold_runs_in_background_inline_without_redis(app, manager, owner, world, export_data):
    query = urlencode({**WINDOW, **ASC, "_flt_0_employee": world.employee1})
    before = len(exports_of(app, world.user_manager))
    with setting(app, "export_async_threshold", "5"), redis_config(app, None):
        url = f"/bookingview/export/xlsx?{query}"
        page = manager.get(url)
        assert len(exports_of(app, world.user_manager)) == before, "the GET must create nothing"
        response = request_background_export(manager, url)
    assert response.status_code == 302 and response.headers["Location"].endswith("/exportfileview/list/")
    exports = exports_of(app, world.user_manager)
    assert len(exports) == before + 1
    export = exports[-1]
    assert (export.status, export.row_count, export.format) == ("done", 8, "xlsx")
    assert export.view_name == "BookingView" and export.finished_at is not None
    assert "im Hintergrund" in html(page)

    listing = html(manager.get("/exportfileview/list/"))
    assert f"/exportfileview/download/{export.id}" in listing
    download = manager.get(f"/exportfileview/download/{export.id}")
    assert download.status_code == 200
    assert re.search(r"termine_\d{4}-\d{2}-\d{2}\.xlsx", download.headers["Content-Disposition"])
    rows, _sheet = read_xlsx(download.get_data())
    ids, _links = list_page(manager, {**WINDOW, **ASC, "_flt_0_employee": world.employee1})
    assert [row[-1]["value"].lstrip("'") for row in rows[1:]] == comments_of(export_data, ids)

    # someone else's export: not listed, not downloadable (404, not 403: its existence is not told)
    assert f"/exportfileview/download/{export.id}" not in html(owner.get("/exportfileview/list/"))
    assert owner.get(f"/exportfileview/download/{export.id}").status_code == 404
    assert owner.get(f"/exportfileview/show/{export.id}").status_code == 404
    detail = manager.get(f"/exportfileview/show/{export.id}")
    assert detail.status_code == 200 and "Fertig" in html(detail) and export.stored_name not in html(detail)
    assert manager.get("/exportfileview/download/987654321").status_code == 404


def test_csv_above_threshold_also_runs_in_background(app, employee, world, export_data):
    with setting(app, "export_async_threshold", "2"), redis_config(app, None):
        response = request_background_export(employee, f"/bookingview/export/csv?{urlencode({**WINDOW, **ASC})}")
    assert response.status_code == 302
    export = exports_of(app, world.user_employee1)[-1]
    assert (export.status, export.row_count) == ("done", 8)
    rows = read_csv(employee.get(f"/exportfileview/download/{export.id}"))
    assert len(rows) == 9 and {row[4] for row in rows[1:]} == {"Eva Eins"}


def test_rq_worker_builds_the_export_as_the_requester(app, client_for, manager, world, export_data):
    """A real Redis queue and a real RQ worker (burst mode, in this process): the job
    applies the requester's row rules (12 bookings in the window, 4 of them hers)."""
    from redis import Redis
    from rq import Queue, SimpleWorker

    from app.jobs.exports import EXPORT_QUEUE

    connection = Redis.from_url(REDIS_URL)
    queue = Queue(EXPORT_QUEUE, connection=connection)
    queue.empty()
    employee2 = client_for("employee2")
    url = f"/bookingview/export/csv?{urlencode({**WINDOW, **ASC})}"
    with setting(app, "export_async_threshold", "3"), redis_config(app, REDIS_URL):
        assert request_background_export(employee2, url).status_code == 302
        export = exports_of(app, world.user_employee2)[-1]
        assert (export.status, export.row_count) == ("queued", 4), "built by the worker, not inline"
        assert queue.count == 1
        assert employee2.get(f"/exportfileview/download/{export.id}").status_code == 404, "not ready yet"
        with app.app_context():
            SimpleWorker([queue], connection=connection).work(burst=True)
    assert queue.count == 0
    export = exports_of(app, world.user_employee2)[-1]
    assert (export.status, export.row_count) == ("done", 4)
    rows = read_csv(employee2.get(f"/exportfileview/download/{export.id}"))
    ids, _links = list_page(employee2, {**WINDOW, **ASC})
    assert [row[-1].lstrip("'") for row in rows[1:]] == comments_of(export_data, ids)
    assert len(ids) == 4 and {row[4] for row in rows[1:]} == {"Zoe Zwei"}
    assert manager.get(f"/exportfileview/download/{export.id}").status_code == 404
    assert client_for("Employee").get(f"/exportfileview/download/{export.id}").status_code == 404


def test_failed_job_is_recorded_and_a_finished_one_not_rebuilt(app, world):
    from app.extensions import db
    from app.jobs.exports import build_export
    from app.models import ExportFile

    with app.app_context():
        broken = ExportFile(user_id=world.user_manager, view_name="NoSuchView", format="csv", filename="x.csv")
        done = ExportFile(user_id=world.user_manager, view_name="BookingView", format="csv", filename="y.csv",
                          status="done", stored_name=None)
        db.session.add_all([broken, done])
        db.session.commit()
        broken_id, done_id = broken.id, done.id
        build_export(broken_id)
        build_export(done_id)
        db.session.expire_all()
        broken = db.session.get(ExportFile, broken_id)
        assert broken.status == "failed" and broken.stored_name is None
        assert broken.error == "Der Export ist fehlgeschlagen. Bitte erneut anfordern."  # no exception text
        assert db.session.get(ExportFile, done_id).stored_name is None


# --- progress of a background export -------------------------------------------------------------
def test_rq_job_reports_its_progress_in_the_job_meta(app, manager, world, export_data, rq_queues, monkeypatch):
    """A real RQ worker (burst, the app's own worker class) builds the export of job id
    `export-<id>`; with progress every 3 rows and chunks of 4 the meta is saved several
    times on the way and ends with rows_done == rows_total == the rows of the file."""
    from rq.job import Job

    import app.jobs.exports as jobs
    import app.views.export as export_views
    from app.jobs.worker import make_worker

    monkeypatch.setattr(jobs, "PROGRESS_ROWS", 3)
    monkeypatch.setattr(export_views, "CHUNK_ROWS", 4)
    saved: list[dict] = []
    original = Job.save_meta

    def recording_save_meta(job):
        saved.append(dict(job.meta))
        return original(job)

    monkeypatch.setattr(Job, "save_meta", recording_save_meta)
    queue = rq_queues[jobs.EXPORT_QUEUE]
    url = f"/bookingview/export/xlsx?{urlencode({**WINDOW, **ASC})}"
    with setting(app, "export_async_threshold", "5"):
        assert request_background_export(manager, url).status_code == 302
        export = exports_of(app, world.user_manager)[-1]
        assert (export.status, export.row_count) == ("queued", 12)
        assert queue.job_ids == [f"export-{export.id}"], "a deterministic job id"
        make_worker(app, [jobs.EXPORT_QUEUE], simple=True).work(burst=True)
    export = exports_of(app, world.user_manager)[-1]
    assert (export.status, export.row_count) == ("done", 12)
    meta = Job.fetch(f"export-{export.id}", connection=queue.connection).meta
    assert meta["rows_done"] == meta["rows_total"] == export.row_count == 12
    done = [entry["rows_done"] for entry in saved]
    assert done[0] == 0 and done == sorted(done) and done[-1] == 12
    assert {3, 6, 9} <= set(done), f"progress on the way, not only at the end: {done}"
    assert all(entry["rows_total"] == 12 for entry in saved)
    rows, _sheet = read_xlsx(manager.get(f"/exportfileview/download/{export.id}").get_data())
    assert len(rows) - 1 == meta["rows_done"]


REFRESH = '<meta http-equiv="refresh" content="5">'


def test_meine_exporte_shows_the_progress_of_a_running_export(app, client_for, world, rq_queues):
    """An export in status running with a job meta set here: „läuft – 1.500 von 20.000 Zeilen
    (7 %)“ (English: "running – 1,500 of 20,000 rows (7%)") and the page reloads itself; a
    running export without its job shows „Läuft“; nothing under way: no reload."""
    from rq.job import Job

    from app.extensions import db
    from app.jobs.exports import JOB, export_job_id
    from app.models import ExportFile

    connection = rq_queues["exports"].connection
    with app.app_context():
        running = ExportFile(user_id=world.user_employee2, view_name="BookingView", format="xlsx",
                             status="running", row_count=20000, filename="termine_lauf.xlsx")
        db.session.add(running)
        db.session.commit()
        export_id = running.id
    job = Job.create(JOB, args=(export_id,), id=export_job_id(export_id), connection=connection,
                     meta={"rows_done": 1500, "rows_total": 20000})
    job.save()
    client = client_for("employee2")
    try:
        page = html(client.get("/exportfileview/list/"))
        assert "läuft – 1.500 von 20.000 Zeilen (7 %)" in page
        assert REFRESH in page
        assert client.get("/lang/en").status_code == 302
        page = html(client.get("/exportfileview/list/"))
        assert "running – 1,500 of 20,000 rows (7%)" in page and REFRESH in page
        assert client.get("/lang/de").status_code == 302
        assert "läuft – 1.500 von 20.000 Zeilen (7 %)" in html(client.get(f"/exportfileview/show/{export_id}"))

        job.meta = {"rows_done": 20000, "rows_total": 20000}
        job.save_meta()
        assert "läuft – 20.000 von 20.000 Zeilen (100 %)" in html(client.get("/exportfileview/list/"))
        job.delete()  # a job that is gone (expired): the plain status, still reloading
        page = html(client.get("/exportfileview/list/"))
        assert "läuft –" not in page and "Läuft" in page and REFRESH in page
        with redis_config(app, None):  # no Redis at all: the same
            page = html(client.get("/exportfileview/list/"))
            assert "Läuft" in page and REFRESH in page

        with app.app_context():
            db.session.get(ExportFile, export_id).status = "done"
            db.session.commit()
        page = html(client.get("/exportfileview/list/"))
        assert REFRESH not in page and "läuft" not in page.lower()
        assert 'id="tb-nightly-exports"' not in page, "the nightly files are the Owner's"
    finally:
        with app.app_context():
            db.session.delete(db.session.get(ExportFile, export_id))
            db.session.commit()


def test_a_long_stale_running_export_does_not_reload_the_page_forever(app, client_for, world):
    from app.extensions import db
    from app.models import ExportFile

    with app.app_context():
        stale = ExportFile(user_id=world.user_employee2, view_name="BookingView", format="csv", status="running",
                           filename="alt.csv", created_at=datetime.now(timezone.utc) - timedelta(days=2))
        db.session.add(stale)
        db.session.commit()
        stale_id = stale.id
    try:
        page = html(client_for("employee2").get("/exportfileview/list/"))
        assert "Läuft" in page and REFRESH not in page
    finally:
        with app.app_context():
            db.session.delete(db.session.get(ExportFile, stale_id))
            db.session.commit()
