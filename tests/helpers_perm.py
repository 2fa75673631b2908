"""Helpers for the permission, row-level and trap tests: REST tokens, CSRF
tokens, flashed messages, and "a row this user may see" for any view."""
from __future__ import annotations

import re

from flask import g

from tests.conftest import PASSWORD, csrf_token

LOGIN_PATH = "/login/"
LIST_LINK = re.compile(r'href="(/[a-z]+/show/(\d+))"')


def api_token(app, username: str, password: str = PASSWORD) -> str:
    """A JWT access token from FAB's REST login (the REST API takes no session cookie)."""
    response = app.test_client().post(
        "/api/v1/security/login",
        json={"username": username, "password": password, "provider": "db", "refresh": False},
    )
    assert response.status_code == 200, f"REST login of {username} failed: {response.status_code}"
    return response.json["access_token"]


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def session_csrf(client) -> str:
    """A CSRF token valid for this client's session (Flask-WTF tokens are per session):
    taken from the login page for anonymous clients, from the own-password form otherwise."""
    response = client.get("/resetmypassword/form")
    url = "/resetmypassword/form" if response.status_code == 200 else LOGIN_PATH
    return csrf_token(client, url)


def pop_flashes(client) -> list[tuple[str, str]]:
    """The messages flashed so far in this client's session (and forget them)."""
    with client.session_transaction() as session:
        return list(session.pop("_flashes", []))


def is_login_redirect(response) -> bool:
    return response.status_code == 302 and LOGIN_PATH in response.headers.get("Location", "")


def visible_pks(app, view, username: str, limit: int = 1) -> list:
    """Primary keys of rows of `view`'s model that `username` may see, through the
    view's own base filters (the row rules) — as the view itself would query them."""
    sm = app.appbuilder.sm
    with app.test_request_context():
        g.user = sm.find_user(username=username)
        _count, items = view.datamodel.query(view._base_filters, page=0, page_size=limit)
        return [view.datamodel.get_pk_value(item) for item in items]


def html(response) -> str:
    return response.get_data(as_text=True)
