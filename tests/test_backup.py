"""Backups of the real test database (SQLite by default, PostgreSQL with TEST_DATABASE_URL):
a backup restored into a new empty database holds every table row by row and every rule
(the overlap constraint/trigger refuses a double booking there, the FTS5 triggers index);
a non-empty target, a file that is not a backup or a truncated one is refused and nothing
changes; rotation keeps exactly the newest N and never touches other files; the nightly job
and the `flask backup` commands."""
from __future__ import annotations

import logging
import os
import re
import sqlite3
import stat
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.dbtools import create_database, drop_database, with_database
from app.services.backup import (
    NAME_RE,
    BackupError,
    create_backup,
    list_backups,
    parse_keep,
    restore_backup,
    rotate_backups,
)

# the comparisons reflect every table; SQLAlchemy skips the lower(name) indexes (compared as schema objects)
pytestmark = pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
NOT_EMPTY = "Die Zieldatenbank ist nicht leer"
NOT_A_BACKUP = "ist keine Sicherung einer"


def is_pg(url: str) -> bool:
    return url.startswith("postgresql")


@pytest.fixture()
def empty_database(database_url, tmp_path):
    """A new empty database of the test run's kind: PostgreSQL a database of its own
    (dropped afterwards), SQLite a new file in tmp_path."""
    if is_pg(database_url):
        url = create_database(with_database(database_url, f"tb_restore_{os.getpid()}_{uuid.uuid4().hex[:8]}"))
        yield url
        drop_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'restored.db'}"


@pytest.fixture()
def backup_dir(app, tmp_path, monkeypatch):
    folder = tmp_path / "backups"
    monkeypatch.setitem(app.config, "BACKUP_DIR", str(folder))
    return folder


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=NullPool)


def _order(table: sa.Table) -> list:
    # PostgreSQL's json has no ordering operator: those columns are ordered by their text
    return [sa.cast(c, sa.Text) if isinstance(c.type, sa.JSON) else c for c in table.columns]


def dump_tables(url: str) -> dict[str, list[tuple]]:
    """Every table of the database (reflected), its rows ordered by all columns."""
    engine = _engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            return {name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*_order(table)))]
                    for name, table in metadata.tables.items()}
    finally:
        engine.dispose()


def schema_objects(url: str) -> dict[str, list[tuple]]:
    """What is not table data: triggers, constraints, indexes, functions, extensions, sequences."""
    engine = _engine(url)
    if is_pg(url):
        queries = {
            "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
            "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                        "WHERE NOT tgisinternal ORDER BY 1, 2",
            "constraints": "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) "
                           "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
            "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                       "ORDER BY 1, 2",
            "functions": "SELECT proname, pg_get_function_identity_arguments(oid), md5(prosrc) FROM pg_proc "
                         "WHERE pronamespace = 'public'::regnamespace ORDER BY 1, 2, 3",
            "sequences": "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
        }
    else:
        queries = {
            "schema": "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
            "sequences": "SELECT name, seq FROM sqlite_sequence ORDER BY name",
        }
    try:
        with engine.connect() as conn:
            has_sequence = is_pg(url) or conn.scalar(sa.text(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"))
            objects = {key: [tuple(row) for row in conn.execute(sa.text(sql))]
                       for key, sql in queries.items() if key != "sequences" or has_sequence}
        if "constraints" in objects:
            objects["constraints"] = [(*row[:3], _same_meaning(row[3]) if row[2] == "c" else row[3])
                                      for row in objects["constraints"]]
        return objects
    finally:
        engine.dispose()


def _same_meaning(definition: str) -> str:
    """A CHECK definition without the casts and parentheses PostgreSQL adds when it parses its own
    output again (`IN (…)` on varchar comes back as `ARRAY[('a'::character varying)::text, …]`)."""
    return re.sub(r"[()\s]|::(?:text|character varying)(?:\[\])?", "", definition)


def table_names(url: str) -> list[str]:
    engine = _engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def copy_booking(url: str, booking_id: int, **replace) -> int:
    """INSERT … SELECT a copy of a booking (new id, stored values as they are) with some
    columns replaced; returns the new id."""
    engine = _engine(url)
    try:
        booking = sa.Table("booking", sa.MetaData(), autoload_with=engine)
        columns = [c.name for c in booking.columns if c.name != "id"]
        values = [sa.literal(replace[name], booking.c[name].type).label(name) if name in replace else booking.c[name]
                  for name in columns]
        with engine.begin() as conn:
            conn.execute(sa.insert(booking).from_select(columns, sa.select(*values).where(booking.c.id == booking_id)))
            return conn.scalar(sa.select(sa.func.max(booking.c.id)))
    finally:
        engine.dispose()


# --- the round trip -----------------------------------------------------------------------
def test_backup_restores_every_table_row_by_row_and_the_rules(app, world, database_url, empty_database, tmp_path):
    with app.app_context():
        path = create_backup(tmp_path / "backups")
    assert NAME_RE.match(path.name)
    assert path.suffix == (".pgdump" if is_pg(database_url) else ".sqlite3")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind

    restore_backup(path, empty_database)

    source, restored = dump_tables(database_url), dump_tables(empty_database)
    assert set(restored) == set(source)
    assert {"alembic_version", "transaction", "booking", "booking_version", "customer_version",
            "ab_user", "ab_role", "ab_permission_view", "setting"} <= set(source)
    for name in source:
        assert restored[name] == source[name], f"table {name} differs after the restore"
    assert source["booking"] and source["ab_user"] and source["transaction"] and source["alembic_version"]
    objects, restored_objects = schema_objects(database_url), schema_objects(empty_database)
    assert set(restored_objects) == set(objects)
    for key, rows in objects.items():
        missing, extra = set(rows) - set(restored_objects[key]), set(restored_objects[key]) - set(rows)
        assert not missing and not extra, f"{key}: missing {sorted(missing)}, extra {sorted(extra)}"
        assert restored_objects[key] == rows

    # the rules came along: a cancelled copy of booking1 is accepted, an active one overlaps
    copy = copy_booking(empty_database, world.booking1, cancelled=True, comment="Kopie Erster Termin")
    with pytest.raises(sa.exc.IntegrityError) as refused:
        copy_booking(empty_database, world.booking1)
    assert ("ex_booking_employee_overlap" if is_pg(database_url) else "booking_overlap_employee") in str(refused.value)
    engine = _engine(empty_database)
    try:
        with engine.connect() as conn:
            if is_pg(database_url):
                assert {"btree_gist", "pg_trgm"} <= set(conn.scalars(sa.text("SELECT extname FROM pg_extension")))
            else:  # the FTS5 table and its insert trigger: the copy is found by its comment
                found = set(conn.scalars(sa.text(
                    "SELECT rowid FROM booking_comment_fts WHERE booking_comment_fts MATCH 'Erster'")))
                assert found == {world.booking1, copy}
    finally:
        engine.dispose()


def test_restore_refuses_a_non_empty_database_and_changes_nothing(app, database_url, empty_database, tmp_path):
    with app.app_context():
        path = create_backup(tmp_path)
    before = dump_tables(database_url)
    with pytest.raises(BackupError, match=NOT_EMPTY):
        restore_backup(path, database_url)  # the live database itself
    assert dump_tables(database_url) == before

    restore_backup(path, empty_database)
    restored = dump_tables(empty_database)
    with pytest.raises(BackupError, match=NOT_EMPTY):
        restore_backup(path, empty_database)  # a second time: no longer empty
    assert dump_tables(empty_database) == restored


def _other_kind_file(database_url: str, path: Path) -> Path:
    """A genuine database file of the other kind, named like a backup of this kind."""
    if is_pg(database_url):
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE customer (id INTEGER PRIMARY KEY)")
        conn.commit()
        conn.close()
    else:
        path.write_bytes(b"PGDMP\x01\x0e\x00" + bytes(200))
    return path


@pytest.mark.parametrize("case", ["text", "truncated", "other_kind", "missing"])
def test_restore_refuses_what_is_not_a_backup(app, database_url, empty_database, tmp_path, case):
    suffix = ".pgdump" if is_pg(database_url) else ".sqlite3"
    path = tmp_path / f"terminbuch-20300101-000000{suffix}"
    if case == "text":
        path.write_text("Das ist keine Sicherung, nur ein Text mit der richtigen Endung.\n" * 50)
        message = NOT_A_BACKUP
    elif case == "truncated":
        with app.app_context():
            real = create_backup(tmp_path / "real")
        data = real.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        message = "pg_restore ist fehlgeschlagen" if is_pg(database_url) else "unvollständig"
    elif case == "other_kind":
        _other_kind_file(database_url, path)
        message = NOT_A_BACKUP
    else:
        message = "gibt es nicht"
    with pytest.raises(BackupError, match=message):
        restore_backup(path, empty_database)
    assert table_names(empty_database) == []


def test_in_memory_sqlite_is_refused(tmp_path):
    from app import create_app
    from app.extensions import db

    memory_app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True, "SECRET_KEY": "x",
                             "INSTANCE_DIR": str(tmp_path), "SERVER_NAME": None})
    with memory_app.app_context():
        try:
            with pytest.raises(BackupError, match="Arbeitsspeicher"):
                create_backup(tmp_path / "backups")
        finally:
            db.session.remove()
            db.engine.dispose()
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())
    with sqlite3.connect(tmp_path / "real.sqlite3") as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(BackupError, match="Arbeitsspeicher"):
        restore_backup(tmp_path / "real.sqlite3", "sqlite://")


def test_password_goes_through_the_environment_not_the_command_line():
    from app.services.backup import _libpq

    conninfo, env = _libpq(make_url("postgresql+psycopg2://tb:s3cr%40t@db.example:5433/terminbuch"))
    assert "s3cr" not in conninfo
    assert conninfo == "postgresql://tb@db.example:5433/terminbuch"
    assert env["PGPASSWORD"] == "s3cr@t"


# --- rotation -----------------------------------------------------------------------------
def _fake_backups(folder: Path, days: range, year: int = 2030) -> list[Path]:
    """Backup-named files of January `year` (content irrelevant to rotation), oldest first."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for day in days:
        path = folder / f"terminbuch-{year}01{day:02d}-031500.sqlite3"
        path.write_bytes(b"SQLite format 3\x00")
        paths.append(path)
    return paths


def test_rotation_keeps_exactly_the_newest_and_leaves_other_files_alone(tmp_path):
    backups = _fake_backups(tmp_path, range(1, 11))
    second = tmp_path / "terminbuch-20300110-031500-2.sqlite3"  # two backups in the same second
    second.write_bytes(b"x")
    pgdump = tmp_path / "terminbuch-20300109-120000.pgdump"
    pgdump.write_bytes(b"PGDMP")
    others = [tmp_path / name for name in (
        "notes.txt", "terminbuch.db", "terminbuch-2030.sqlite3", "terminbuch-20300101-031500.sqlite3.bak",
        ".terminbuch-abc.partial", "mein-terminbuch-20290101-000000.sqlite3",
    )]
    for path in others:
        path.write_text("nicht anfassen")
    (tmp_path / "terminbuch-20290101-000000.sqlite3.d").mkdir()  # a folder is not a backup either

    assert list_backups(tmp_path)[:4] == [second, backups[9], pgdump, backups[8]]
    removed = rotate_backups(3, tmp_path)
    assert sorted(removed) == sorted(backups[:9])
    assert list_backups(tmp_path) == [second, backups[9], pgdump]
    assert all(path.read_text() == "nicht anfassen" for path in others)
    assert (tmp_path / "terminbuch-20290101-000000.sqlite3.d").is_dir()
    assert rotate_backups(3, tmp_path) == []
    with pytest.raises(BackupError):
        rotate_backups(0, tmp_path)
    assert len(list_backups(tmp_path)) == 3


def test_keep_setting_parses_whole_numbers_only():
    assert parse_keep("7") == 7
    assert parse_keep(" ") == 14
    for bad in ("0", "-1", "zwei", "1.5"):
        with pytest.raises(ValueError, match="ganze Zahl"):
            parse_keep(bad)


# --- the nightly job ----------------------------------------------------------------------
def _set_keep(app, value: str) -> None:
    from app.extensions import db
    from app.jobs.base import acting_as
    from app.models import Setting

    with app.app_context(), acting_as():
        db.session.scalars(sa.select(Setting).where(Setting.key == "backup_keep")).one().value = value
        db.session.commit()


def test_nightly_backup_backs_up_and_rotates_to_the_setting(app, backup_dir, caplog):
    from app.jobs.backups import nightly_backup

    old = _fake_backups(backup_dir, range(1, 17), year=2020)
    (backup_dir / "notes.txt").write_text("bleibt")
    with app.app_context():
        from app.extensions import db
        from app.models import Setting

        # the setting from `flask init`
        assert db.session.scalar(sa.select(Setting.value).where(Setting.key == "backup_keep")) == "14"
        with caplog.at_level(logging.INFO, logger="app.jobs.backups"):
            name = nightly_backup()
    assert NAME_RE.match(name)
    records = [r for r in caplog.records if r.name == "app.jobs.backups"]
    assert len(records) == 1 and records[0].levelno == logging.INFO and name in records[0].getMessage()
    kept = list_backups(backup_dir)
    assert len(kept) == 14
    assert kept[0].name == name and kept[1:] == old[::-1][:13]
    assert (backup_dir / "notes.txt").read_text() == "bleibt"

    _set_keep(app, "2")
    try:
        with app.app_context():
            second = nightly_backup()
            assert [p.name for p in list_backups(backup_dir)] == [second, name]
            # a file stamped later (a clock that was once wrong) never pushes out the backup just made
            future = _fake_backups(backup_dir, range(31, 32), year=2999)
            third = nightly_backup()
    finally:
        _set_keep(app, "14")
    assert [p.name for p in list_backups(backup_dir)] == [future[0].name, third]


def test_default_folder_is_instance_backups_readable_by_the_owner_only(app, monkeypatch):
    monkeypatch.setitem(app.config, "BACKUP_DIR", None)
    with app.app_context():
        path = create_backup()
        assert list_backups()[0] == path
    try:
        assert path.parent == Path(app.config["INSTANCE_DIR"]) / "backups"
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        path.unlink()


# --- the commands -------------------------------------------------------------------------
def test_cli_create_list_restore(app, backup_dir, empty_database, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["backup", "list"])
    assert result.exit_code == 0 and "Keine Sicherungen" in result.output

    result = runner.invoke(args=["backup", "create"])
    assert result.exit_code == 0, result.output
    [path] = list_backups(backup_dir)
    assert "Sicherung geschrieben" in result.output and path.name in result.output
    result = runner.invoke(args=["backup", "list"])
    assert result.exit_code == 0 and path.name in result.output

    with app.app_context():  # by name from the backup folder, into the configured (non-empty) database
        before = dump_tables(app.config["SQLALCHEMY_DATABASE_URI"])
    result = runner.invoke(args=["backup", "restore", path.name])
    assert result.exit_code != 0
    assert NOT_EMPTY in result.output and "Es wurde nichts geändert" in result.output
    assert dump_tables(app.config["SQLALCHEMY_DATABASE_URI"]) == before

    text = tmp_path / "terminbuch-20300101-000000.sqlite3"
    text.write_text("kein Backup")
    result = runner.invoke(args=["backup", "restore", str(text), "--database-url", empty_database])
    assert result.exit_code != 0 and NOT_A_BACKUP in result.output
    assert table_names(empty_database) == []

    result = runner.invoke(args=["backup", "restore", str(path), "--database-url", empty_database])
    assert result.exit_code == 0, result.output
    assert "zurückgespielt" in result.output
    assert dump_tables(empty_database)["alembic_version"] == before["alembic_version"]
