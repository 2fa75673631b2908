"""Customer documents: upload by content type and size, row-checked download, audited delete."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_token
from tests.helpers_perm import session_csrf

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(200)


def docx_bytes(prefix: str = "word/") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{prefix}document.xml", "<w:document/>")
    return buffer.getvalue()


def zip_without_office() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("evil.js", "alert(1)")
    return buffer.getvalue()


def stored_files(app) -> set[str]:
    folder = Path(app.config["INSTANCE_DIR"]) / "documents"
    return set(os.listdir(folder)) if folder.exists() else set()


def document_rows(app) -> list:
    from app.extensions import db
    from app.models import Document

    with app.app_context():
        return db.session.scalars(sa.select(Document).order_by(Document.id)).all()


def upload(client, customer: int | None, content: bytes, filename: str, title: str = "Befund",
           content_type: str = "application/pdf", token: str | None = None):
    url = "/documentview/add" + (f"?customer={customer}" if customer else "")
    data = {"title": title, "file": (io.BytesIO(content), filename, content_type)}
    if customer:
        data["customer"] = str(customer)
    data["csrf_token"] = token if token is not None else csrf_token(client, url)
    return client.post("/documentview/add", data=data, content_type="multipart/form-data")


@pytest.fixture()
def cleanup(app):
    """Remove the documents a test stored (rows and files)."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Document
    from app.services.documents import remove_file

    before = {doc.id for doc in document_rows(app)}
    yield
    with app.app_context(), acting_as():
        for doc in db.session.scalars(sa.select(Document).where(Document.id.not_in(before or {0}))):
            remove_file(doc.stored_name)
            db.session.delete(doc)
        db.session.commit()


def new_document(app, before: set[int]):
    rows = [doc for doc in document_rows(app) if doc.id not in before]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize(("content", "filename", "expected_type"), [
    (PDF, "befund.pdf", "application/pdf"),
    (PNG, "foto.png", "image/png"),
    (docx_bytes(), "vertrag.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
])
def test_upload_stores_file_under_random_name_and_download_returns_the_bytes(
        app, world, manager, cleanup, content, filename, expected_type):
    before = {doc.id for doc in document_rows(app)}
    files_before = stored_files(app)
    response = upload(manager, world.customer1, content, f"../../{filename}", content_type="text/html")
    assert response.status_code == 302, response.get_data(as_text=True)
    doc = new_document(app, before)
    assert (doc.customer_id, doc.title, doc.filename) == (world.customer1, "Befund", filename)
    assert (doc.content_type, doc.size_bytes) == (expected_type, len(content))
    new_files = stored_files(app) - files_before
    assert new_files == {doc.stored_name} and filename not in doc.stored_name
    assert (Path(app.config["INSTANCE_DIR"]) / "documents" / doc.stored_name).read_bytes() == content

    download = manager.get(f"/documentview/file/{doc.id}")
    assert download.status_code == 200
    assert download.data == content
    assert download.headers["Content-Type"].startswith(expected_type)
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert filename in download.headers["Content-Disposition"]


@pytest.mark.parametrize(("content", "filename"), [
    (HTML, "rechnung.pdf"), (EXE, "bild.png"), (zip_without_office(), "tabelle.xlsx"), (docx_bytes("evil/"), "x.docx"),
])
def test_upload_with_content_not_matching_an_allowed_type_is_refused(app, world, manager, cleanup, content, filename):
    before, files_before = {doc.id for doc in document_rows(app)}, stored_files(app)
    response = upload(manager, world.customer1, content, filename)
    assert response.status_code == 400
    assert "Dieser Dateityp wird nicht angenommen" in response.get_data(as_text=True)
    assert {doc.id for doc in document_rows(app)} == before
    assert stored_files(app) == files_before


@pytest.fixture()
def one_mb_limit(app):
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Setting

    with app.app_context(), acting_as():
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "document_max_mb"))
        old, setting.value = setting.value, "1"
        db.session.commit()
    yield
    with app.app_context(), acting_as():
        setting = db.session.scalar(sa.select(Setting).where(Setting.key == "document_max_mb"))
        setting.value = old
        db.session.commit()


def test_upload_over_the_size_setting_is_refused_and_nothing_is_stored(app, world, manager, cleanup, one_mb_limit):
    before, files_before = {doc.id for doc in document_rows(app)}, stored_files(app)
    big = PDF + bytes(1024 * 1024)
    response = upload(manager, world.customer1, big, "gross.pdf")
    assert response.status_code == 400
    assert "Die Datei ist zu groß (höchstens 1 MB)" in response.get_data(as_text=True)
    assert {doc.id for doc in document_rows(app)} == before
    assert stored_files(app) == files_before
    # just below the limit is fine
    assert upload(manager, world.customer1, PDF + bytes(1024 * 1024 - len(PDF)), "knapp.pdf").status_code == 302


def test_body_over_max_content_length_gets_a_german_413_page(app, world, manager, cleanup):
    token = csrf_token(manager, "/documentview/add")
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        response = upload(manager, world.customer1, PDF + bytes(5000), "riesig.pdf", token=token)
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert response.status_code == 413
    assert "Datei zu groß" in response.get_data(as_text=True)


def test_document_max_mb_setting_is_validated(app):
    from app.services.documents import parse_max_mb

    assert parse_max_mb("5") == 5 and parse_max_mb(" ") == 10
    for bad in ("0", "abc", "101", "-1", "2.5"):
        with pytest.raises(ValueError, match="Höchstgröße für Dokumente"):
            parse_max_mb(bad)


@pytest.fixture()
def colleague_document(app, world, client_for, cleanup):
    """A document of customer2 (served by employee2 only), uploaded by employee2."""
    before = {doc.id for doc in document_rows(app)}
    assert upload(client_for("employee2"), world.customer2, PDF, "kollegin.pdf").status_code == 302
    return new_document(app, before)


def test_employee_cannot_reach_a_colleagues_customer_document_by_any_route(
        app, world, employee, colleague_document):
    pk = colleague_document.id
    assert employee.get(f"/documentview/file/{pk}").status_code == 404
    assert employee.get(f"/documentview/show/{pk}").status_code == 404
    assert "kollegin.pdf" not in employee.get("/documentview/list/").get_data(as_text=True)
    # nor upload into that customer's file
    before, files_before = {doc.id for doc in document_rows(app)}, stored_files(app)
    response = upload(employee, world.customer2, PDF, "fremd.pdf")
    assert response.status_code == 400 and "Bitte eine Kund:in wählen" in response.get_data(as_text=True)
    assert {doc.id for doc in document_rows(app)} == before and stored_files(app) == files_before


def test_employee_uploads_for_own_customer_and_downloads(app, world, employee, cleanup):
    before = {doc.id for doc in document_rows(app)}
    assert upload(employee, world.customer1, PDF, "eigen.pdf").status_code == 302
    doc = new_document(app, before)
    assert employee.get(f"/documentview/file/{doc.id}").data == PDF


def test_viewer_cannot_upload_or_download(app, world, viewer, colleague_document):
    assert viewer.get("/documentview/add").status_code == 403
    response = viewer.post("/documentview/add", data={
        "customer": str(world.customer1), "title": "x", "file": (io.BytesIO(PDF), "x.pdf"),
        "csrf_token": session_csrf(viewer),
    }, content_type="multipart/form-data")
    assert response.status_code == 403
    assert viewer.get(f"/documentview/file/{colleague_document.id}").status_code == 403


def test_upload_without_csrf_token_is_refused(app, world, manager, cleanup):
    before, files_before = {doc.id for doc in document_rows(app)}, stored_files(app)
    response = manager.post("/documentview/add", data={
        "customer": str(world.customer1), "title": "x", "file": (io.BytesIO(PDF), "x.pdf"),
    }, content_type="multipart/form-data")
    assert response.status_code == 400
    assert {doc.id for doc in document_rows(app)} == before and stored_files(app) == files_before


def test_customer_page_links_the_upload_with_the_customer(app, world, manager, client_for):
    html = manager.get(f"/customerview/show/{world.customer1}").get_data(as_text=True)
    assert f"/documentview/add?_flt_0_customer={world.customer1}" in html
    assert "tb-document-upload" in html and "Hochladen" in html
    viewer_html = client_for("Viewer").get(f"/customerview/show/{world.customer1}").get_data(as_text=True)
    assert "tb-document-upload" not in viewer_html
    form = manager.get(f"/documentview/add?_flt_0_customer={world.customer1}").get_data(as_text=True)
    assert f'name="customer" value="{world.customer1}"' in form and 'enctype="multipart/form-data"' in form
    # without a customer: searched by AJAX, not every customer as an <option>
    blank = manager.get("/documentview/add").get_data(as_text=True)
    assert 'class="form-control tb-ajax-select"' in blank and 'name="customer"' in blank and "Berg" not in blank


def test_delete_removes_the_file_after_commit_and_leaves_a_version_by_the_actor(app, world, manager, cleanup):
    from sqlalchemy_continuum import transaction_class, version_class

    from app.extensions import db
    from app.models import Document

    before = {doc.id for doc in document_rows(app)}
    assert upload(manager, world.customer1, PDF, "weg.pdf").status_code == 302
    doc = new_document(app, before)
    path = Path(app.config["INSTANCE_DIR"]) / "documents" / doc.stored_name
    assert path.exists()
    # a GET does not delete
    manager.get(f"/documentview/delete/{doc.id}")
    assert path.exists() and any(d.id == doc.id for d in document_rows(app))

    token = session_csrf(manager)
    response = manager.post(f"/documentview/delete/{doc.id}", data={"csrf_token": token})
    assert response.status_code == 302
    assert not path.exists()
    assert all(d.id != doc.id for d in document_rows(app))
    cls, tx = version_class(Document), transaction_class(Document)
    with app.app_context():
        last = db.session.execute(
            sa.select(cls.operation_type, tx.user_id).join(tx, tx.id == cls.transaction_id)
            .where(cls.id == doc.id).order_by(cls.transaction_id.desc()).limit(1)).one()
    assert tuple(last) == (2, world.user_manager)


def test_employee_cannot_delete_documents(app, world, employee, cleanup):
    before = {doc.id for doc in document_rows(app)}
    assert upload(employee, world.customer1, PDF, "bleibt.pdf").status_code == 302
    doc = new_document(app, before)
    token = session_csrf(employee)
    assert employee.post(f"/documentview/delete/{doc.id}", data={"csrf_token": token}).status_code == 403
    assert (Path(app.config["INSTANCE_DIR"]) / "documents" / doc.stored_name).exists()


def test_document_page_offers_the_download(app, world, manager, colleague_document):
    page = manager.get(f"/documentview/show/{colleague_document.id}").get_data(as_text=True)
    assert f"/documentview/file/{colleague_document.id}" in page and "Herunterladen" in page


def test_settings_form_refuses_an_invalid_document_max_mb(app, owner):
    from app.extensions import db
    from app.models import Setting
    from tests.test_validation import form_values

    with app.app_context():
        setting_id = db.session.scalar(sa.select(Setting.id).where(Setting.key == "document_max_mb"))
    assert setting_id is not None, "document_max_mb is not seeded"
    url = f"/settingview/edit/{setting_id}"
    data = form_values(owner.get(url).get_data(as_text=True), "value")
    data["value"] = "500"
    page = owner.post(url, data=data, follow_redirects=True).get_data(as_text=True)
    assert "Höchstgröße für Dokumente muss eine ganze Zahl von 1 bis 100" in page
    with app.app_context():
        assert db.session.get(Setting, setting_id).value == "10"


def test_a_deleted_customer_takes_its_document_files_along(app, world, manager, cleanup):
    """Not only the document list's delete: a customer deleted with its documents leaves no file."""
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Customer

    with app.app_context(), acting_as():
        customer = Customer(first_name="Fina", last_name="Fortgang")
        db.session.add(customer)
        db.session.commit()
        customer_id = customer.id
    before = {doc.id for doc in document_rows(app)}
    assert upload(manager, customer_id, PDF, "akte.pdf").status_code == 302
    path = Path(app.config["INSTANCE_DIR"]) / "documents" / new_document(app, before).stored_name
    with app.app_context(), acting_as():
        db.session.delete(db.session.get(Customer, customer_id))
        db.session.flush()
        db.session.rollback()  # a delete that does not happen keeps the file
    assert path.exists()
    with app.app_context(), acting_as():
        db.session.delete(db.session.get(Customer, customer_id))
        db.session.commit()
    assert not path.exists()
