"""The nightly export (app/jobs/exports.py nightly_export): the booking list as XLSX under
exports/nightly, the same rows and columns as the list's own export with the same filters
(the whole history without filters), rotation to `nightly_export_keep` files of its own name
pattern, a refused filter logged and not written, and the Owner-only download on "Meine Exporte"."""
from __future__ import annotations

import io
import logging
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import openpyxl
import pytest
from sqlalchemy import func, select

from tests.helpers_perm import html, is_login_redirect
from tests.test_export import setting

ALL_YEARS = {"_flt_1_start_at": "1970-01-01 00:00:00"}
WINDOW_2041 = {"_flt_1_start_at": "2041-01-01 00:00:00", "_flt_2_start_at": "2042-01-01 00:00:00"}
NAME = re.compile(r"buchungen-\d{4}-\d{2}-\d{2}\.xlsx")


@pytest.fixture(scope="module")
def nightly_data(app, world):
    """Six bookings in 2041 (4 of employee1) and one in 2001, far outside the list's default window."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Booking

    with app.app_context(), acting_as():
        bookings = [
            Booking(customer_id=world.customer1, service_id=world.service,
                    employee_id=world.employee1 if n < 4 else world.employee2,
                    start_at=datetime(2041, 3, 4, 8, tzinfo=timezone.utc) + timedelta(days=n),
                    price=Decimal("50.00") + n, comment=f"Nacht {n}")
            for n in range(6)
        ]
        bookings.append(Booking(customer_id=world.customer2, service_id=world.service, employee_id=world.employee2,
                                start_at=datetime(2001, 5, 7, 8, tzinfo=timezone.utc), comment="Nacht alt"))
        db.session.add_all(bookings)
        db.session.commit()
        ids = [booking.id for booking in bookings]
    yield ids
    with app.app_context(), acting_as():
        for pk in ids:
            db.session.delete(db.session.get(Booking, pk))
        db.session.commit()


@pytest.fixture()
def nightly_folder(app):
    """The (emptied) folder of the nightly files; emptied again afterwards."""
    from app.views.export import nightly_dir

    with app.app_context():
        folder = nightly_dir()

    def empty():
        for path in folder.iterdir():
            path.unlink()

    empty()
    yield folder
    empty()


def run_nightly(app) -> str | None:
    from app.jobs.exports import nightly_export

    with app.app_context():
        return nightly_export()


def today_name(app) -> str:
    from app.formatting import business_tz

    with app.app_context():
        return f"buchungen-{datetime.now(business_tz()):%Y-%m-%d}.xlsx"


def xlsx_rows(data: bytes) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def on_demand(client, params: dict) -> list[list]:
    response = client.get(f"/bookingview/export/xlsx?{urlencode(params)}")
    assert response.status_code == 200 and response.headers.get("Content-Disposition"), "not sent at once"
    return xlsx_rows(response.get_data())


# --- the file equals the list's export ------------------------------------------------------
@pytest.mark.parametrize(("query", "same_as", "rows"), [
    # empty: the whole history (not the list's recent window) = the list's „alle Jahre“
    pytest.param(lambda w: "", lambda w: ALL_YEARS, None, id="whole-history"),
    # a filtered list's address bar (its window is fixed dates), sorted by price
    pytest.param(lambda w: urlencode({"_flt_0_employee": w.employee1, **WINDOW_2041, "_oc_BookingView": "price",
                                      "_od_BookingView": "desc", "page_BookingView": 1}),
                 lambda w: {"_flt_0_employee": w.employee1, **WINDOW_2041, "_oc_BookingView": "price",
                            "_od_BookingView": "desc"}, 4, id="filtered-sorted"),
    # a whole URL pasted, without a date filter: all years of the other filters
    pytest.param(lambda w: f"https://terminbuch.example/bookingview/list/?_flt_0_employee={w.employee2}",
                 lambda w: {"_flt_0_employee": w.employee2, **ALL_YEARS}, None, id="pasted-url"),
])
def test_nightly_file_equals_the_on_demand_export(app, owner, world, nightly_data, nightly_folder,
                                                  query, same_as, rows):
    from app.extensions import db
    from app.models import Booking

    with setting(app, "nightly_export_query", query(world)):
        path = run_nightly(app)
    assert path == str(nightly_folder / today_name(app))
    assert [p.name for p in nightly_folder.iterdir()] == [today_name(app)], "no temporary file left behind"
    nightly = xlsx_rows(Path(path).read_bytes())
    expected = on_demand(owner, same_as(world))
    assert nightly == expected  # same headers, rows, order and cell values
    assert nightly[0][:3] == ["Beginn", "Ende", "Kund:in"]
    comments = [row[-1] for row in nightly[1:]]
    if rows is not None:
        assert len(comments) == rows and set(comments) == {f"Nacht {n}" for n in range(4)}
        assert [row[7] for row in nightly[1:]] == [53.0, 52.0, 51.0, 50.0]  # price desc
    else:
        with app.app_context():
            stmt = select(func.count(Booking.id))
            if "employee" in query(world):
                stmt = stmt.where(Booking.employee_id == world.employee2)
            assert len(comments) == db.session.scalar(stmt)
        assert "Nacht alt" in comments, "the whole history, not the list's recent window"


def test_a_second_run_the_same_day_replaces_the_file(app, world, nightly_data, nightly_folder):
    with setting(app, "nightly_export_query", urlencode({"_flt_0_employee": world.employee1, **WINDOW_2041})):
        first = run_nightly(app)
    with setting(app, "nightly_export_query", urlencode({"_flt_0_employee": world.employee2, **WINDOW_2041})):
        second = run_nightly(app)
    assert first == second and len(list(nightly_folder.iterdir())) == 1
    assert len(xlsx_rows(Path(second).read_bytes())) == 1 + 2  # employee2's two bookings of 2041


# --- rotation -------------------------------------------------------------------------------
def test_rotation_keeps_the_newest_n_and_leaves_other_files_alone(app, nightly_data, nightly_folder):
    old = [f"buchungen-2000-01-{day:02d}.xlsx" for day in range(1, 10)]
    others = ["notizen.txt", "buchungen-2000-01-01.xlsx.bak", "buchungen-latest.xlsx", "Buchungen-2000-01-02.xlsx",
              "tmp-0123-buchungen-2000-01-03.xlsx", "buchungen-2000-1-4.xlsx"]
    for name in old + others:
        (nightly_folder / name).write_bytes(b"old")
    with setting(app, "nightly_export_query", ""), setting(app, "nightly_export_keep", "3"):
        run_nightly(app)
    remaining = sorted(p.name for p in nightly_folder.iterdir())
    kept = sorted(name for name in remaining if NAME.fullmatch(name))
    assert kept == sorted(["buchungen-2000-01-08.xlsx", "buchungen-2000-01-09.xlsx", today_name(app)])
    assert sorted(set(remaining) - set(kept)) == sorted(others), "files of another name are not touched"

    with setting(app, "nightly_export_query", ""):  # the default: 7
        run_nightly(app)
    assert len([p for p in nightly_folder.iterdir() if NAME.fullmatch(p.name)]) == 3, "fewer than 7: all stay"


@pytest.mark.parametrize(("raw", "keep"), [("7", 7), ("2", 2), ("0", 1), ("-3", 1), ("", 7), ("sieben", 7)])
def test_keep_setting_is_read_leniently(app, raw, keep):
    from app.jobs.exports import nightly_keep

    with setting(app, "nightly_export_keep", raw), app.app_context():
        assert nightly_keep() == keep


def test_settings_are_seeded(app):
    from app.extensions import db
    from app.models import Setting

    with app.app_context():
        values = dict(db.session.execute(select(Setting.key, Setting.value).where(
            Setting.key.in_(["nightly_export_query", "nightly_export_keep"]))).all())
    assert values == {"nightly_export_query": "", "nightly_export_keep": "7"}


# --- bad filters ----------------------------------------------------------------------------
def test_refused_filter_is_logged_and_writes_nothing(app, world, nightly_data, nightly_folder, caplog):
    """A filter the list itself refuses (400 there): no file, an error in the log, the old files stay."""
    (nightly_folder / "buchungen-2000-01-01.xlsx").write_bytes(b"old")
    bad = "_flt_9_employee=abc&_flt_0_employee=xyz"
    with setting(app, "nightly_export_query", bad), setting(app, "nightly_export_keep", "1"), \
            caplog.at_level(logging.ERROR, logger="app.jobs.exports"):
        assert run_nightly(app) is None
    assert [p.name for p in nightly_folder.iterdir()] == ["buchungen-2000-01-01.xlsx"], "nothing rotated away"
    errors = [r for r in caplog.records if r.name == "app.jobs.exports" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "nightly_export_query" in errors[0].getMessage() and bad in errors[0].getMessage()


def test_junk_the_list_ignores_still_writes_the_whole_history(app, owner, world, nightly_data, nightly_folder):
    """Arguments that are no filter at all (as in the list: ignored) and an unreadable "after"
    date (FAB drops that filter, in the list too): the file is written, with every booking."""
    with setting(app, "nightly_export_query", "%%%&&==x&_flt_1_start_at=kein-datum&\x01"):
        path = run_nightly(app)
    assert path is not None
    rows = xlsx_rows(Path(path).read_bytes())
    assert rows == on_demand(owner, {"_flt_1_start_at": "kein-datum"}) == on_demand(owner, ALL_YEARS)
    assert "Nacht alt" in [row[-1] for row in rows]


def test_an_empty_result_is_written_and_warned_about(app, nightly_data, nightly_folder, caplog):
    """"Beginn gleich kein-datum" matches nothing, in the list as here: a file with the header only."""
    with setting(app, "nightly_export_query", "_flt_0_start_at=kein-datum"), \
            caplog.at_level(logging.WARNING, logger="app.jobs.exports"):
        path = run_nightly(app)
    assert len(xlsx_rows(Path(path).read_bytes())) == 1
    assert any(r.levelno == logging.WARNING and "no rows" in r.getMessage() for r in caplog.records)


# --- download on "Meine Exporte" -------------------------------------------------------------
def test_owner_lists_and_downloads_the_nightly_files(app, owner, manager, nightly_data, nightly_folder):
    page = html(owner.get("/exportfileview/list/"))
    assert 'id="tb-nightly-exports"' in page and "Noch keine nächtlichen Exporte." in page
    path = Path(run_nightly(app))
    (nightly_folder / "notizen.txt").write_bytes(b"not listed")
    page = html(owner.get("/exportfileview/list/"))
    assert "Nächtliche Exporte" in page
    assert f'href="/exportfileview/nightly/{path.name}"' in page and "notizen.txt" not in page
    response = owner.get(f"/exportfileview/nightly/{path.name}")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f"filename={path.name}" in response.headers["Content-Disposition"]
    assert response.get_data() == path.read_bytes()
    response.close()
    assert 'id="tb-nightly-exports"' not in html(manager.get("/exportfileview/list/")), "the Owner's only"


def test_nightly_download_refuses_other_roles(app, client_for, nightly_data, nightly_folder):
    name = Path(run_nightly(app)).name
    url = f"/exportfileview/nightly/{name}"
    for role in ("Manager", "Employee"):  # may use "Meine Exporte", not the nightly files
        assert client_for(role).get(url).status_code == 403, role
    assert client_for("Viewer").get(url).status_code == 403
    assert is_login_redirect(client_for(None).get(url))


@pytest.mark.parametrize("name", [
    "..%2Fsecret.xlsx", "%2E%2E%2Fbuchungen-2000-01-01.xlsx", "..", "..%5Cbuchungen-2000-01-01.xlsx",
    "buchungen-2000-01-01.xlsx.bak", "notizen.txt", "buchungen-2000-01-02.xlsx",  # the last: no such file
    "%2Fetc%2Fpasswd", "buchungen-2000-01-01.xlsx%00",
])
def test_nightly_download_serves_only_names_of_the_pattern(app, owner, nightly_folder, name):
    from app.views.export import exports_dir

    with app.app_context():
        (exports_dir() / "secret.xlsx").write_bytes(b"someone's on-demand export")
    for other in ("buchungen-2000-01-01.xlsx", "buchungen-2000-01-01.xlsx.bak", "notizen.txt"):
        (nightly_folder / other).write_bytes(b"x")
    try:
        response = owner.get(f"/exportfileview/nightly/{name}")
        assert response.status_code == 404, name
        assert b"someone's" not in response.get_data()
        assert owner.get("/exportfileview/nightly/buchungen-2000-01-01.xlsx").status_code == 200
    finally:
        with app.app_context():
            (exports_dir() / "secret.xlsx").unlink()
