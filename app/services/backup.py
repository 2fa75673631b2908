"""Backups of the configured database and their restore into an empty one.

SQLite: Python's sqlite3 online backup API copies a consistent snapshot page by
page (schema, FTS5 tables and triggers included) into
`terminbuch-YYYYMMDD-HHMMSS.sqlite3`. PostgreSQL: `pg_dump --format=custom`
(extensions, functions, EXCLUDE constraints, triggers, sequences) into
`terminbuch-YYYYMMDD-HHMMSS.pgdump`; the password goes through PGPASSWORD, never
on the command line. The time stamp is UTC, so names sort in time order across
daylight saving changes. A backup is written under a temporary name and renamed
when complete: a half-written file never counts as a backup.

A file is recognised as a backup by its content (the SQLite header, resp. the
pg_dump custom format's "PGDMP"), never by its extension. A restore goes only
into an empty database and either brings everything or nothing."""
from __future__ import annotations

import logging
import os
import re
import sqlite3
import struct
import subprocess
import tempfile
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

PG_DUMP = "/usr/bin/pg_dump"
PG_RESTORE = "/usr/bin/pg_restore"
KEEP_KEY = "backup_keep"
DEFAULT_KEEP = 14
SQLITE, POSTGRESQL = "sqlite", "postgresql"
SUFFIXES = {SQLITE: ".sqlite3", POSTGRESQL: ".pgdump"}
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# terminbuch-20300304-021500.sqlite3, a second backup within the same second: …-021500-2.sqlite3
NAME_RE = re.compile(r"^terminbuch-(\d{8}-\d{6})(?:-(\d+))?\.(sqlite3|pgdump)$")
# User objects of a PostgreSQL database (tables, views, sequences, …) outside the system schemas.
PG_USER_RELATIONS = sa.text(
    "SELECT count(*) FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
)


class BackupError(RuntimeError):
    """A backup or restore that was refused or failed (German message); a restore left the target unchanged."""


# --- where and under which names ------------------------------------------------------
def default_dir() -> Path:
    """Config BACKUP_DIR, else <INSTANCE_DIR>/backups."""
    configured = current_app.config.get("BACKUP_DIR")
    if configured:
        return Path(configured)
    return Path(current_app.config["INSTANCE_DIR"]) / "backups"


def _prepare_dir(folder: Path) -> Path:
    """The folder, created readable by this user only (a backup holds every customer's data)."""
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is cut by the umask
    return folder


def _sort_key(path: Path) -> tuple[str, int]:
    match = NAME_RE.match(path.name)
    assert match is not None
    return match.group(1), int(match.group(2) or 1)


def list_backups(target_dir: Path | None = None) -> list[Path]:
    """The backups of the folder (files named like a backup), newest first."""
    folder = Path(target_dir) if target_dir is not None else default_dir()
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if NAME_RE.match(path.name) and path.is_file()]
    return sorted(found, key=_sort_key, reverse=True)


def _new_name(folder: Path, kind: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    suffix = SUFFIXES[kind]
    path = folder / f"terminbuch-{stamp}{suffix}"
    number = 1
    while path.exists():
        number += 1
        path = folder / f"terminbuch-{stamp}-{number}{suffix}"
    return path


# --- settings ---------------------------------------------------------------------------
def parse_keep(value: str | None) -> int:
    """The setting backup_keep: a whole number ≥ 1 (empty: the default 14).
    ValueError with a German message for anything else."""
    text = (value or "").strip()
    if not text:
        return DEFAULT_KEEP
    if not text.isdigit() or int(text) < 1:
        raise ValueError(_("Anzahl der Sicherungen: bitte eine ganze Zahl ≥ 1 eingeben."))
    return int(text)


def keep_setting(session: Session) -> int:
    """backup_keep from the settings; an unusable value counts as the default (logged)."""
    from app.models import Setting

    value = session.scalar(sa.select(Setting.value).where(Setting.key == KEEP_KEY))
    try:
        return parse_keep(value)
    except ValueError:
        log.warning("setting %s=%r is not a whole number >= 1: keeping %s backups", KEEP_KEY, value, DEFAULT_KEEP)
        return DEFAULT_KEEP


def rotate_backups(keep: int, target_dir: Path | None = None, current: Path | None = None) -> list[Path]:
    """Delete all but the `keep` newest backups of the folder; returns the deleted files.
    Files not named like a backup are never touched, nor `current` (the backup just
    written, even if a file with a later time stamp exists)."""
    if keep < 1:
        raise BackupError(_("Mindestens eine Sicherung muss aufbewahrt werden."))
    backups = list_backups(target_dir)
    if current is not None and current in backups:
        backups.remove(current)
        keep -= 1
    removed = backups[keep:]
    for path in removed:
        path.unlink()
    return removed


# --- URLs ---------------------------------------------------------------------------------
def _kind(url: URL) -> str:
    backend = url.get_backend_name()
    if backend in (SQLITE, POSTGRESQL):
        return backend
    raise BackupError(_("Sicherungen gibt es nur für SQLite und PostgreSQL, nicht für %(backend)s.",
                        backend=backend))


def _sqlite_file(url: URL) -> Path:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:") or url.query.get("mode") == "memory":
        raise BackupError(_("Eine SQLite-Datenbank im Arbeitsspeicher kann nicht gesichert oder "
                            "wiederhergestellt werden: bitte eine Datenbankdatei verwenden."))
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    return Path(database).resolve()


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries the password."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    conninfo = URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                          database=url.database, query=url.query).render_as_string(hide_password=False)
    return conninfo, env


def _run(command: list[str], env: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError(_("%(tool)s konnte nicht gestartet werden: %(error)s", tool=what, error=exc)) from exc
    if result.returncode != 0:
        raise BackupError(_("%(tool)s ist fehlgeschlagen: %(error)s", tool=what,
                            error=result.stderr.strip() or result.returncode))


# --- back up ------------------------------------------------------------------------------
def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


def _copy_sqlite(source: Path, target: Path, *, into_empty: bool = False) -> None:
    """Copy the database `source` (opened read-only) into `target` with SQLite's online backup API."""
    with closing(_connect_readonly(source)) as src, closing(sqlite3.connect(target)) as dst:
        if into_empty:
            _refuse_non_empty(dst.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        src.backup(dst)


def _sqlite_backup(source: Path, target: Path) -> None:
    try:
        _copy_sqlite(source, target)
    except sqlite3.Error as exc:
        raise BackupError(_("Die SQLite-Datenbank konnte nicht gesichert werden: %(error)s", error=exc)) from exc
    _check_sqlite_file(target)


def _pg_dump(url: URL, target: Path) -> None:
    conninfo, env = _libpq(url)
    _run([PG_DUMP, "--format=custom", "--no-owner", "--no-privileges", f"--file={target}",
          f"--dbname={conninfo}"], env, "pg_dump")
    if _file_kind(target) != POSTGRESQL:
        raise BackupError(_("pg_dump hat keine Sicherung im Custom-Format geschrieben."))


def create_backup(target_dir: Path | None = None) -> Path:
    """Back up the app's database (db.engine.url) into the folder (default: BACKUP_DIR or
    <INSTANCE_DIR>/backups); returns the new file."""
    from app.extensions import db

    url = db.engine.url
    kind = _kind(url)
    source = _sqlite_file(url) if kind == SQLITE else None
    folder = _prepare_dir(Path(target_dir) if target_dir is not None else default_dir())
    fd, name = tempfile.mkstemp(prefix=".terminbuch-", suffix=".partial", dir=folder)  # mode 0o600
    os.close(fd)
    partial = Path(name)
    try:
        if source is not None:
            _sqlite_backup(source, partial)
        else:
            _pg_dump(url, partial)
        _fsync(partial)
        final = _new_name(folder, kind)
        os.replace(partial, final)
        _fsync(folder)
    finally:
        partial.unlink(missing_ok=True)
    return final


# --- what a file is -----------------------------------------------------------------------
def _file_kind(path: Path) -> str | None:
    """SQLITE or POSTGRESQL by the file's first bytes, None for anything else."""
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head == SQLITE_MAGIC:
        return SQLITE
    if head.startswith(PGDUMP_MAGIC):
        return POSTGRESQL
    return None


def _check_sqlite_file(path: Path) -> None:
    """A complete, consistent SQLite file (not truncated, quick_check ok)."""
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise BackupError(_("Die Datei %(name)s ist keine SQLite-Sicherung.", name=path.name))
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages = struct.unpack(">I", header[28:32])[0]
    valid_count = header[24:28] == header[92:96]  # the header's page count is only valid then
    if valid_count and path.stat().st_size < page_size * pages:
        raise BackupError(_("Die Sicherung %(name)s ist unvollständig (abgeschnitten).", name=path.name))
    try:
        conn = _connect_readonly(path)
        try:
            result = [row[0] for row in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(_("Die Sicherung %(name)s ist beschädigt: %(error)s", name=path.name, error=exc)) from exc
    if result != ["ok"]:
        raise BackupError(_("Die Sicherung %(name)s ist beschädigt: %(error)s", name=path.name,
                            error="; ".join(result[:3])))


# --- restore ------------------------------------------------------------------------------
def _refuse_non_empty(objects: int) -> None:
    if objects:
        raise BackupError(_("Die Zieldatenbank ist nicht leer: eine Sicherung wird nur in eine leere "
                            "Datenbank zurückgespielt. Es wurde nichts geändert."))


def _restore_sqlite(path: Path, url: URL) -> None:
    target = _sqlite_file(url)
    _check_sqlite_file(path)
    if not target.parent.is_dir():
        raise BackupError(_("Der Ordner %(folder)s der Zieldatenbank existiert nicht.", folder=target.parent))
    try:
        _copy_sqlite(path, target, into_empty=True)
    except sqlite3.Error as exc:
        raise BackupError(_("Die Sicherung konnte nicht zurückgespielt werden: %(error)s", error=exc)) from exc


def _restore_pg(path: Path, url: URL) -> None:
    conninfo, env = _libpq(url)
    _run([PG_RESTORE, "--list", str(path)], env, "pg_restore")  # a readable table of contents
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            _refuse_non_empty(conn.scalar(PG_USER_RELATIONS))
    except SQLAlchemyError as exc:
        error = getattr(exc, "orig", None) or exc
        raise BackupError(_("Die Zieldatenbank ist nicht erreichbar: %(error)s", error=error)) from exc
    finally:
        engine.dispose()
    _run([PG_RESTORE, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
          f"--dbname={conninfo}", str(path)], env, "pg_restore")


def restore_backup(path: Path, database_url: str) -> None:
    """Play backup `path` into the EMPTY database `database_url` (all or nothing).
    BackupError (German) for a non-empty target, a file that is not a backup of the
    target's kind, or a failed restore."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(_("Die Sicherung %(name)s gibt es nicht.", name=str(path)))
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise BackupError(_("Ungültige Datenbank-URL.")) from exc
    kind = _kind(url)
    if _file_kind(path) != kind:
        raise BackupError(_("Die Datei %(name)s ist keine Sicherung einer %(kind)s-Datenbank; "
                            "es wurde nichts geändert.",
                            name=path.name, kind="SQLite" if kind == SQLITE else "PostgreSQL"))
    if kind == SQLITE:
        _restore_sqlite(path, url)
    else:
        _restore_pg(path, url)
    log.info("backup %s restored into %s", path.name, url.render_as_string(hide_password=True))
