"""Configuration, read from the environment. Nothing secret lives in the repository."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask_appbuilder.const import AUTH_DB

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_PATH", BASE_DIR / "instance"))


def _secret_key() -> str:
    """SECRET_KEY from the environment, else generated once into instance/secret_key."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        # Heroku-style URLs name the dialect "postgres"; SQLAlchemy wants "postgresql".
        return url.replace("postgres://", "postgresql://", 1)
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{INSTANCE_DIR / 'terminbuch.db'}"


class Config:
    SECRET_KEY = _secret_key()
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    REDIS_URL = os.environ.get("REDIS_URL") or None
    # Without Redis jobs run in the web process: "thread" (one background thread) or "sync".
    INLINE_JOBS = os.environ.get("INLINE_JOBS", "thread")
    # Seconds between the retries of a failed notification or geocoding job (app/jobs/queue.py).
    JOB_RETRY_INTERVALS = (30, 120, 600)
    REMINDER_DISPATCH_SECONDS = int(os.environ.get("REMINDER_DISPATCH_SECONDS", "300"))
    BACKUP_DIR = os.environ.get("BACKUP_DIR") or None  # default: instance/backups

    # Notification channels (app/services/channels.py); empty = that channel is not set up.
    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "587"))
    MAIL_USE_TLS = os.environ.get("MAIL_USE_TLS", "1") == "1"  # STARTTLS
    MAIL_USE_SSL = os.environ.get("MAIL_USE_SSL", "0") == "1"  # SMTPS (port 465)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_SENDER = os.environ.get("MAIL_SENDER", "termine@localhost")
    SMS_GATEWAY_URL = os.environ.get("SMS_GATEWAY_URL") or None
    SMS_GATEWAY_TOKEN = os.environ.get("SMS_GATEWAY_TOKEN") or None
    SMS_SENDER = os.environ.get("SMS_SENDER", "Terminbuch")
    TELEGRAM_API_URL = os.environ.get("TELEGRAM_API_URL", "https://api.telegram.org")
    TELEGRAM_BOT_TOKEN = os.environ.get("TELEGRAM_BOT_TOKEN") or None
    NOTIFY_TIMEOUT = float(os.environ.get("NOTIFY_TIMEOUT", "10"))
    # Geocoding (Nominatim's /search API; a self-hosted one or a local test server) and the map.
    GEOCODER_URL = os.environ.get("GEOCODER_URL", "https://nominatim.openstreetmap.org")
    GEOCODER_USER_AGENT = os.environ.get("GEOCODER_USER_AGENT", "Terminbuch/1.0 (back office; self-hosted)")
    GEOCODER_TIMEOUT = float(os.environ.get("GEOCODER_TIMEOUT", "10"))
    GEOCODER_MIN_DELAY = float(os.environ.get("GEOCODER_MIN_DELAY", "1.0"))  # Nominatim: at most 1 request/s
    MAP_TILES_URL = os.environ.get("MAP_TILES_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    MAP_TILES_ATTRIBUTION = os.environ.get(
        "MAP_TILES_ATTRIBUTION", '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>-Mitwirkende')
    TIMEZONE = os.environ.get("TIMEZONE", "Europe/Berlin")
    PORT = int(os.environ.get("PORT", "8080"))
    INSTANCE_DIR = str(INSTANCE_DIR)
    # Request bodies beyond this are cut with 413 (the largest document_max_mb plus form overhead);
    # the upload itself is limited by the setting while it is read.
    MAX_CONTENT_LENGTH = 101 * 1024 * 1024

    APP_NAME = os.environ.get("APP_NAME", "Terminbuch")
    APP_THEME = ""
    AUTH_TYPE = AUTH_DB
    AUTH_ROLE_ADMIN = "Owner"
    AUTH_ROLE_PUBLIC = "Public"
    AUTH_USER_REGISTRATION = False

    # Migrations own the schema; roles and permissions are synced by `flask init`.
    FAB_CREATE_DB = False
    FAB_UPDATE_PERMS = False
    # The user/role REST API is not needed (users are managed in the screens): less surface.
    FAB_ADD_SECURITY_API = False
    FAB_API_SWAGGER_UI = False
    FAB_API_MAX_PAGE_SIZE = 100
    # Upper bound for ?psize_… on every list view (FAB leaves it unbounded).
    MAX_PAGE_SIZE = 100

    BABEL_DEFAULT_LOCALE = os.environ.get("BABEL_DEFAULT_LOCALE", "de")
    BABEL_DEFAULT_FOLDER = "translations"
    LANGUAGES = {
        "de": {"flag": "de", "name": "Deutsch"},
        "en": {"flag": "gb", "name": "English"},
    }

    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    RATELIMIT_ENABLED = False


class TestConfig(Config):
    TESTING = True
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
