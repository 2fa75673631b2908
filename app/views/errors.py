"""Error pages 400/403/404/405/413 in the app layout and the UI language; the REST API keeps JSON."""
from __future__ import annotations

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import HTTPException

TITLES = {
    400: _l("Ungültige Anfrage"), 403: _l("Kein Zugriff"), 404: _l("Seite nicht gefunden"),
    405: _l("Aktion nicht möglich"), 413: _l("Datei zu groß"),
}
TEXTS = {
    400: _l("Die Anfrage konnte nicht verarbeitet werden. Bitte die Seite neu laden und es noch einmal versuchen."),
    403: _l("Für diese Seite oder Aktion fehlt die Berechtigung."),
    404: _l("Diese Seite oder dieser Eintrag existiert nicht (mehr)."),
    405: _l("Diese Aktion ist auf diesem Weg nicht möglich (z. B. Löschen nur über die Schaltfläche)."),
    413: _l("Die gesendeten Daten sind zu groß. Bitte eine kleinere Datei wählen."),
}


def own_description(error: HTTPException) -> str | None:
    """The text given to abort(code, text), not werkzeug's English default."""
    return error.description if error.description != type(error).description else None


def error_page(error: HTTPException):
    if request.path.startswith("/api/"):
        return jsonify(message=own_description(error) or error.name), error.code
    appbuilder = current_app.appbuilder
    g.setdefault("user", current_user)  # an abort() in a before_request comes before FAB's own sets it
    html = render_template(
        "terminbuch/error.html", appbuilder=appbuilder, base_template=appbuilder.base_template,
        code=error.code, title=TITLES[error.code], text=own_description(error) or TEXTS[error.code],
    )
    return html, error.code


def register_error_pages(app: Flask) -> None:
    for code in TITLES:
        app.register_error_handler(code, error_page)
