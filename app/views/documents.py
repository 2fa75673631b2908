"""Upload into and download from the customer file (DocumentView's own routes)."""
from __future__ import annotations

from flask import abort, flash, redirect, request, send_file, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.widgets import ListWidget
from flask_babel import gettext as _
from sqlalchemy import select

from app.extensions import db
from app.models import Customer, Document
from app.security import restrict
from app.services.documents import DocumentRefused, document_path, max_bytes, remove_file, safe_filename, store_upload
from app.views.validators import parse_id


def visible_customer(customer_id: str | None) -> Customer | None:
    pk = parse_id(customer_id)
    if pk is None:
        return None
    return db.session.scalar(restrict(select(Customer).where(Customer.id == pk), Customer))


class DocumentListWidget(ListWidget):
    template = "terminbuch/document_list_widget.html"


class DocumentRoutesMixin:
    """Upload (replaces FAB's add form), download with the row rules, file removed after a delete."""

    list_widget = DocumentListWidget
    show_template = "terminbuch/document_show.html"

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        form = request.form if request.method == "POST" else request.args
        customer_id = form.get("customer") or request.args.get("_flt_0_customer")
        title, error = (form.get("title") or "").strip(), None
        if request.method == "POST":
            try:
                document = self._store(visible_customer(customer_id), title, request.files.get("file"))
            except DocumentRefused as exc:
                error = str(exc)
            else:
                flash(_("Dokument „%(title)s“ gespeichert.", title=document.title), "success")
                return redirect(url_for(f"{type(self).__name__}.show", pk=document.id))
        return self.render_template(
            "terminbuch/document_upload.html", title=_("Dokument hochladen"), error=error,
            customer=visible_customer(customer_id), form=self.add_form.refresh(), doc_title=title,
            max_mb=max_bytes() // (1024 * 1024),
        ), (400 if error else 200)

    def _store(self, customer: Customer | None, title: str, upload) -> Document:
        if customer is None:
            raise DocumentRefused(_("Bitte eine Kund:in wählen."))
        if not title or len(title) > 200:
            raise DocumentRefused(_("Bitte einen Titel mit höchstens 200 Zeichen angeben."))
        if upload is None or not upload.filename:
            raise DocumentRefused(_("Bitte eine Datei wählen."))
        stored_name, size, content_type = store_upload(upload.stream, max_bytes())
        document = Document(customer=customer, title=title, filename=safe_filename(upload.filename),
                            stored_name=stored_name, content_type=content_type, size_bytes=size)
        try:
            db.session.add(document)
            db.session.commit()
        except Exception:
            db.session.rollback()
            remove_file(stored_name)
            raise
        return document

    @expose("/file/<pk>")
    @has_access
    def download_file(self, pk):
        document = self._visible_item(pk)
        if document is None:
            abort(404)
        try:
            path = document_path(document.stored_name)
            response = send_file(path, mimetype=document.content_type, as_attachment=True,
                                 download_name=document.filename, max_age=0)
        except FileNotFoundError:
            abort(404)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, no-store"
        return response

