"""Configuration from the environment, secrets outside the repo, German UI, services."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _config_in_subprocess(env: dict[str, str], expr: str) -> str:
    """Evaluate `expr` on a freshly imported config module under `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in {
        "SECRET_KEY", "DATABASE_URL", "TIMEZONE", "PORT", "REDIS_URL", "INSTANCE_PATH"}}
    clean.update(env)
    out = subprocess.run(
        [sys.executable, "-c", f"import config; print({expr})"],
        cwd=ROOT, env=clean, capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


def test_secret_key_is_generated_once_into_instance(tmp_path):
    env = {"INSTANCE_PATH": str(tmp_path)}
    first = _config_in_subprocess(env, "config.Config.SECRET_KEY")
    second = _config_in_subprocess(env, "config.Config.SECRET_KEY")
    assert len(first) >= 32 and first == second
    assert (tmp_path / "secret_key").read_text().strip() == first
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    other = _config_in_subprocess({"INSTANCE_PATH": str(tmp_path / "other")}, "config.Config.SECRET_KEY")
    assert other != first


def test_secret_key_from_environment_wins(tmp_path):
    env = {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "from-env"}
    assert _config_in_subprocess(env, "config.Config.SECRET_KEY") == "from-env"
    assert not (tmp_path / "secret_key").exists()


def test_no_secret_is_committed():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [path for path in tracked if path.startswith("instance/")]
    assert "instance/" in (ROOT / ".gitignore").read_text()


def test_defaults_and_overrides(tmp_path):
    env = {"INSTANCE_PATH": str(tmp_path)}
    assert _config_in_subprocess(env, "config.Config.SQLALCHEMY_DATABASE_URI") == f"sqlite:///{tmp_path}/terminbuch.db"
    assert _config_in_subprocess(env, "config.Config.TIMEZONE") == "Europe/Berlin"
    assert _config_in_subprocess(env, "config.Config.PORT") == "8080"
    assert _config_in_subprocess(env, "config.Config.REDIS_URL") == "None"
    assert _config_in_subprocess(env, "config.Config.BABEL_DEFAULT_LOCALE") == "de"
    assert _config_in_subprocess(env, "sorted(config.Config.LANGUAGES)") == "['de', 'en']"
    env.update(DATABASE_URL="postgres://u@h/db", PORT="9000", TIMEZONE="Europe/Vienna", REDIS_URL="redis://x:1/2")
    assert _config_in_subprocess(env, "config.Config.SQLALCHEMY_DATABASE_URI") == "postgresql://u@h/db"
    assert _config_in_subprocess(env, "config.Config.PORT") == "9000"
    assert _config_in_subprocess(env, "config.Config.TIMEZONE") == "Europe/Vienna"
    assert _config_in_subprocess(env, "config.Config.REDIS_URL") == "redis://x:1/2"


def test_german_catalogue_is_compiled_from_its_source():
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    folder = ROOT / "app/translations/de/LC_MESSAGES"
    with open(folder / "messages.po", "rb") as po, open(folder / "messages.mo", "rb") as mo:
        source, compiled = read_po(po), read_mo(mo)
    assert {m.id: m.string for m in source if m.id} == {m.id: m.string for m in compiled if m.id}, (
        "run: .venv/bin/pybabel compile -d app/translations"
    )


ALL_BOOKINGS = "/bookingview/list/?_flt_1_start_at=2000-01-01+00:00:00"  # not the default window around today


def test_ui_is_german_by_default_and_english_on_the_switch(owner):
    html = owner.get(ALL_BOOKINGS).get_data(as_text=True)
    assert "Suchen" in html and "Anzahl Datensätze" in html
    add_html = owner.get("/bookingview/add").get_data(as_text=True)
    assert "Speichern" in add_html
    show_html = owner.get("/customerview/list/").get_data(as_text=True)
    assert 'title="Anzeigen"' in show_html or "Anzeigen" in show_html
    owner.get("/lang/en")
    english = owner.get(ALL_BOOKINGS).get_data(as_text=True)
    assert "Record Count" in english and "Anzahl Datensätze" not in english
    owner.get("/lang/de")
    assert "Anzahl Datensätze" in owner.get(ALL_BOOKINGS).get_data(as_text=True)


def test_services_answer_when_required():
    """CI sets REQUIRE_SERVICES=1: PostgreSQL and Redis must answer then."""
    import psycopg2
    import redis

    required = os.environ.get("REQUIRE_SERVICES") == "1"
    pg_url = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    try:
        psycopg2.connect(pg_url, connect_timeout=3).close()
        pg_ok = True
    except psycopg2.OperationalError:
        pg_ok = False
    try:
        redis_ok = redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_timeout=3).ping()
    except redis.RedisError:
        redis_ok = False
    if required:
        assert pg_ok, "PostgreSQL does not answer but REQUIRE_SERVICES=1"
        assert redis_ok, "Redis does not answer but REQUIRE_SERVICES=1"
    if os.environ.get("TEST_DATABASE_URL"):
        assert pg_ok


@pytest.mark.parametrize("path", ["/static/js/terminbuch.js", "/static/css/terminbuch.css"])
def test_own_assets_are_served_locally(app, path):
    assert app.test_client().get(path).status_code == 200


def test_pages_reference_no_external_asset_host(owner):
    import re

    html = owner.get("/bookingview/add").get_data(as_text=True) + owner.get("/").get_data(as_text=True)
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
