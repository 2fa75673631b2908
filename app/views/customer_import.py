""""Kunden importieren": upload (CSV/XLSX) → column mapping → preview with per-row errors
and duplicates → import in one transaction, or cancel. Manager and Owner (app/security.py).

The file waits in INSTANCE_DIR/imports/<token>; the token, the user it belongs to and the
chosen mapping live in the Flask session. Every form carries the token: a form of another
user's (or an already finished) import is refused with 403. A POST without token answers
the upload page with a German error (200); nothing is ever changed by a GET."""
from __future__ import annotations

import secrets
from typing import Any

from flask import flash, g, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.security.decorators import permission_name
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.services.customer_import import (
    FIELDS,
    MAX_MB,
    MAX_ROWS,
    PREVIEW_ROWS,
    SKIP,
    ImportBlocked,
    ImportRefused,
    Table,
    cell_text,
    check_mapping,
    claim_import,
    claimed_path,
    discard_import,
    guess_mapping,
    import_path,
    import_rows,
    load_import,
    read_table,
    read_upload,
    release_import,
    store_import,
    summarize,
    validate_table,
)
from app.services.documents import safe_filename

SESSION_KEY = "tb_customer_import"
MODES = ("all", "valid")  # alles oder nichts | nur fehlerfreie Zeilen
DUPLICATE_CHOICES = ("skip", "create")  # überspringen | trotzdem anlegen
SAMPLE_ROWS = 3
MORE_ERRORS = 300  # error rows listed below the preview's first rows


def _user_id() -> int | None:
    user = getattr(g, "user", None)
    return getattr(user, "id", None)


def current_import() -> dict[str, Any] | None:
    """This user's started import, or None. One begun by someone else on this browser (logged
    out, another user logged in) is dropped with its file; so is one whose file is gone."""
    state = session.get(SESSION_KEY)
    if not isinstance(state, dict):
        return None
    try:
        token = state.get("token", "")
        exists = state.get("user_id") == _user_id() and (import_path(token).exists()
                                                          or claimed_path(token).exists())  # being imported
    except FileNotFoundError:
        exists = False
    if not exists:
        forget_import()
        return None
    return state


def forget_import() -> None:
    state = session.pop(SESSION_KEY, None)
    if isinstance(state, dict):
        discard_import(state.get("token"))


class CustomerImportView(BaseView):
    route_base = "/customerimport"
    default_view = "index"

    # --- 1. upload -------------------------------------------------------------------
    @expose("/", methods=["GET"])
    @has_access
    def index(self):
        return self.upload_page()

    def upload_page(self, error: str | None = None, status: int = 200):
        return self.render_template(
            "terminbuch/import_upload.html", title=_("Kunden importieren"), error=error,
            pending=current_import(), max_mb=MAX_MB, max_rows=MAX_ROWS,
        ), status

    @expose("/upload", methods=["POST"])
    @has_access
    @permission_name("import")
    def upload(self):
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return self.upload_page(_("Bitte eine CSV- oder Excel-Datei wählen."))
        try:
            data = read_upload(upload.stream)
            token = store_import(data)
        except ImportRefused as exc:
            return self.upload_page(str(exc), 400)
        forget_import()
        session[SESSION_KEY] = {"token": token, "user_id": _user_id(), "filename": safe_filename(upload.filename),
                                "mapping": None}
        return redirect(url_for(f"{self.endpoint}.mapping"))

    def checked_import(self) -> tuple[dict[str, Any] | None, Any]:
        """(the import the form's token names, None) or (None, the page refusing it)."""
        token = request.form.get("token", "")
        if not token:
            return None, self.upload_page(_("Es gibt keinen begonnenen Import. Bitte zuerst eine Datei hochladen."))
        state = current_import()
        if state is None or not secrets.compare_digest(str(token), str(state["token"])):
            return None, self.upload_page(_("Dieser Import gehört nicht zu Ihrer Sitzung oder ist schon beendet. "
                                            "Bitte die Datei neu hochladen."), 403)
        return state, None

    def table_of(self, state: dict[str, Any]) -> tuple[Table | None, Any]:
        try:
            return read_table(load_import(state["token"])), None
        except FileNotFoundError:
            if claimed_path(state["token"]).exists():  # "Importieren" was clicked and runs
                return None, self.upload_page(_("Dieser Import läuft schon oder ist beendet."), 409)
            forget_import()
            return None, self.upload_page(_("Die Datei ist nicht mehr vorhanden."))
        except ImportRefused as exc:
            forget_import()
            return None, self.upload_page(str(exc))

    # --- 2. mapping ------------------------------------------------------------------
    @expose("/mapping", methods=["GET", "POST"])
    @has_access
    @permission_name("import")
    def mapping(self):
        if request.method == "GET":
            state = current_import()
            if state is None:
                return self.upload_page(_("Es gibt keinen begonnenen Import. Bitte zuerst eine Datei hochladen."))
        else:
            state, refused = self.checked_import()
            if state is None:
                return refused
        table, refused = self.table_of(state)
        if table is None:
            return refused
        if request.method == "GET":
            return self.mapping_page(state, table, state.get("mapping") or guess_mapping(table.header))
        chosen = [request.form.get(f"col_{index}", SKIP) for index in range(len(table.header))]
        errors = check_mapping(chosen, len(table.header))
        if errors:
            return self.mapping_page(state, table, chosen, errors)
        state["mapping"] = chosen
        session[SESSION_KEY] = state
        return redirect(url_for(f"{self.endpoint}.preview"))

    def mapping_page(self, state: dict[str, Any], table: Table, mapping: list[str], errors: list[str] | None = None):
        samples = [[text for text in (cell_text(values[index]) for _line, values in table.rows[:SAMPLE_ROWS]) if text]
                   for index in range(len(table.header))]
        return self.render_template(
            "terminbuch/import_mapping.html", title=_("Kunden importieren: Spalten zuordnen"), state=state,
            columns=list(zip(table.header, samples, mapping, strict=True)), fields=FIELDS, skip=SKIP,
            errors=errors or [], rows=len(table.rows),
        )

    # --- 3. preview ------------------------------------------------------------------
    @expose("/preview", methods=["GET"])
    @has_access
    @permission_name("import")
    def preview(self):
        state = current_import()
        if state is None:
            return self.upload_page(_("Es gibt keinen begonnenen Import. Bitte zuerst eine Datei hochladen."))
        return self.preview_page(state)

    def preview_page(self, state: dict[str, Any], error: str | None = None, mode: str = MODES[0],
                     duplicates: str = DUPLICATE_CHOICES[0], results=None):
        table, refused = self.table_of(state)
        if table is None:
            return refused
        mapping = state.get("mapping")
        if not mapping or check_mapping(mapping, len(table.header)):
            return self.mapping_page(state, table, mapping or guess_mapping(table.header))
        if results is None:
            results = validate_table(db.session, table, mapping)
        shown = [key for key in FIELDS if key in mapping]
        more_errors = [result for result in results[PREVIEW_ROWS:] if result.errors][:MORE_ERRORS]
        return self.render_template(
            "terminbuch/import_preview.html", title=_("Kunden importieren: Vorschau"), state=state, error=error,
            results=results[:PREVIEW_ROWS], more_errors=more_errors, summary=summarize(results), fields=FIELDS,
            shown=shown, mode=mode, duplicates=duplicates, preview_rows=PREVIEW_ROWS,
        )

    # --- 4. import or cancel ----------------------------------------------------------------
    @expose("/import", methods=["POST"])
    @has_access
    @permission_name("import")
    def run(self):
        state, refused = self.checked_import()
        if state is None:
            return refused
        mode, duplicates = request.form.get("mode", ""), request.form.get("duplicates", "")
        if mode not in MODES or duplicates not in DUPLICATE_CHOICES:
            return self.preview_page(state, _("Bitte wählen, wie mit fehlerhaften Zeilen und Dubletten "
                                              "verfahren werden soll."))
        token = state["token"]
        try:
            data = claim_import(token)
        except ImportRefused as exc:
            return self.upload_page(str(exc), 409)
        results = None
        try:
            table = read_table(data)
            mapping = state.get("mapping")
            if not mapping or check_mapping(mapping, len(table.header)):
                release_import(token)
                return self.mapping_page(state, table, mapping or guess_mapping(table.header))
            results = validate_table(db.session, table, mapping)
            outcome = import_rows(db.session, results, all_or_nothing=mode == "all",
                                  create_duplicates=duplicates == "create")
            db.session.commit()
        except ImportRefused as exc:  # the file was checked at the upload: only if it changed on disk
            forget_import()
            return self.upload_page(str(exc))
        except ImportBlocked as exc:
            db.session.rollback()
            release_import(token)
            return self.preview_page(state, str(exc), mode, duplicates, results)
        except IntegrityError:
            db.session.rollback()
            release_import(token)
            return self.preview_page(state, _("Nichts importiert: die Daten haben sich inzwischen geändert (z. B. "
                                              "wurde eine E-Mail-Adresse vergeben). Bitte die Vorschau prüfen."),
                                     mode, duplicates)
        except BaseException:
            db.session.rollback()
            release_import(token)
            raise
        filename = state.get("filename", "")
        forget_import()
        return self.render_template("terminbuch/import_result.html", title=_("Kunden importiert"),
                                    outcome=outcome, filename=filename)

    @expose("/cancel", methods=["POST"])
    @has_access
    @permission_name("import")
    def cancel(self):
        state, refused = self.checked_import()
        if state is None:
            return refused
        forget_import()
        flash(_("Import abgebrochen; es wurde nichts gespeichert."), "info")
        return redirect(url_for(f"{self.endpoint}.index"))
