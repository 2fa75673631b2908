"""Migrations own the schema: `flask db upgrade` builds it on an empty SQLite
file and an empty PostgreSQL database, the models and the migrations do not
drift apart (autogenerate finds nothing), and downgrade/upgrade round-trips."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.dbtools import create_database, drop_database, with_database

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_base_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or ""
    return url if url.startswith("postgresql") else DEFAULT_PG_URL


def _pg_answers() -> bool:
    engine = sa.create_engine(_pg_base_url(), connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


# PostgreSQL is tested whenever it answers; with REQUIRE_SERVICES=1 it is tested
# even when it does not — and then fails instead of silently dropping out.
BACKENDS = ["sqlite"] + (["postgresql"] if REQUIRE_SERVICES or _pg_answers() else [])


@contextmanager
def empty_database(backend: str):
    """The URL of a brand-new, empty database, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tb-mig-") as folder:
            yield f"sqlite:///{folder}/empty.db"
        return
    url = create_database(with_database(_pg_base_url(), f"tb_mig_{os.getpid()}"))
    try:
        yield url
    finally:
        drop_database(url)


@contextmanager
def app_on(url: str):
    """A fresh app on `url`, inside its app context; its engine is disposed afterwards."""
    from app import create_app
    from app.extensions import db

    flask_app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-migrations",
        "INSTANCE_DIR": tempfile.mkdtemp(prefix="tb-mig-instance-"),
    })
    with flask_app.app_context():
        try:
            yield flask_app
        finally:
            db.session.remove()
            db.engine.dispose()


def _script():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    return ScriptDirectory.from_config(config)


def table_names(engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def schema_diff(connection, metadata) -> list:
    from app.views.booking_history import include_object  # the search objects the metadata does not declare

    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include_object})
    return compare_metadata(context, metadata)


def model_metadata():
    from flask_appbuilder import Model

    import app.models  # noqa: F401  (every model on the metadata)

    return Model.metadata


@pytest.fixture(scope="module", params=BACKENDS)
def migrated(request):
    """(backend, app) with `flask db upgrade` run on an empty database of that backend."""
    from flask_migrate import upgrade

    from app.extensions import db

    backend = request.param
    with empty_database(backend) as url, app_on(url) as flask_app:
        assert table_names(db.engine) == set(), "the database is not empty"
        upgrade()
        yield backend, flask_app


def test_upgrade_builds_the_whole_schema_on_an_empty_database(migrated):
    from app.extensions import db

    _backend, _app = migrated
    tables = table_names(db.engine)
    expected = set(model_metadata().tables)
    assert expected - tables == set(), "tables missing after upgrade"
    # our tables, their version tables, Continuum's transaction table and FAB's security tables
    for must in ("customer", "customer_version", "booking", "booking_version", "transaction", "ab_user",
                 "alembic_version"):
        assert must in tables
    with db.engine.connect() as conn:
        stamped = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert stamped == _script().get_current_head()


def test_upgraded_schema_enforces_the_named_check_constraints(migrated):
    """The migration carries the models' check constraints, not only the tables."""
    from app.extensions import db

    with db.engine.connect() as conn:
        trans = conn.begin()
        try:
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(sa.text(
                    "INSERT INTO customer (first_name, last_name, emoji_marker, country, consent_email, "
                    "consent_sms, created_at) VALUES ('A', 'B', '123456789', 'DE', false, false, :now)"
                ), {"now": "2030-01-01 00:00:00"})
        finally:
            trans.rollback()


def test_models_and_migrations_do_not_drift(migrated):
    from app.extensions import db

    with db.engine.connect() as conn:
        diff = schema_diff(conn, model_metadata())
    assert diff == [], f"models and migrations differ — run `flask db migrate`: {diff}"


def test_drift_check_sees_an_extra_column(migrated):
    """The drift check is not blind: a column the migration lacks is reported."""
    from app.extensions import db

    metadata = sa.MetaData()
    for table in model_metadata().tables.values():
        table.to_metadata(metadata)
    metadata.tables["customer"].append_column(sa.Column("shoe_size", sa.Integer(), nullable=True))
    with db.engine.connect() as conn:
        diff = schema_diff(conn, metadata)
    assert [(op[0], op[2], op[3].name) for op in diff if op[0] == "add_column"] == [
        ("add_column", "customer", "shoe_size")
    ]


def test_drift_check_sees_an_extra_table_and_a_changed_type(migrated):
    from app.extensions import db

    metadata = sa.MetaData()
    for table in model_metadata().tables.values():
        table.to_metadata(metadata)
    sa.Table("gift_voucher", metadata, sa.Column("id", sa.Integer, primary_key=True))
    metadata.tables["service"].c.name.type = sa.String(length=999)
    with db.engine.connect() as conn:
        diff = schema_diff(conn, metadata)
    kinds = {(op[0], op[1].name) for op in diff if op[0] == "add_table"}
    assert kinds == {("add_table", "gift_voucher")}
    changed = [op for op in diff if isinstance(op, list) and op[0][0] == "modify_type"]
    assert [(op[0][2], op[0][3]) for op in changed] == [("service", "name")]


def test_downgrade_to_base_and_upgrade_again_on_sqlite():
    from flask_migrate import downgrade, upgrade

    from app.extensions import db

    with empty_database("sqlite") as url, app_on(url):
        upgrade()
        full = table_names(db.engine)
        assert "booking" in full
        downgrade(revision="base")
        assert table_names(db.engine) <= {"alembic_version"}, "downgrade left tables behind"
        upgrade()
        assert table_names(db.engine) == full
        with db.engine.connect() as conn:
            assert schema_diff(conn, model_metadata()) == []


def test_migrations_have_a_single_head():
    """Two migrations branching off the same parent would make `flask db upgrade` fail."""
    script = _script()
    assert len(script.get_heads()) == 1, script.get_heads()
    assert [rev.down_revision for rev in script.walk_revisions()][-1] is None


def _sqlite_schema(engine) -> set[tuple[str, str, str]]:
    """Every table, index and trigger SQLite holds; triggers with their SQL (whitespace-
    normalised). Tables by name only: a batch copy rewrites their SQL text."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        return {(kind, name, " ".join((sql or "").split()) if kind == "trigger" else "") for kind, name, sql in rows}


def test_each_downgrade_step_gives_back_the_schema_of_its_revision_on_sqlite():
    """Stepping down from head, the schema after each downgrade equals the schema an
    upgrade to that revision builds — with its triggers (a batch copy of `booking`
    loses them silently: the overlap rule or the keyword index would be gone)."""
    from flask_migrate import downgrade, upgrade

    from app.extensions import db

    revisions = [rev.revision for rev in _script().walk_revisions()]  # head first
    expected = {}
    with empty_database("sqlite") as url, app_on(url):
        for revision in reversed(revisions):
            upgrade(revision=revision)
            expected[revision] = _sqlite_schema(db.engine)
    with empty_database("sqlite") as url, app_on(url):
        upgrade()
        for revision in revisions[1:]:
            downgrade(revision=revision)
            assert _sqlite_schema(db.engine) == expected[revision], f"downgrade to {revision} differs"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_bonus_migration_steps_down_and_up_keeping_the_invoice_triggers(backend):
    """58bb3cf409f6 adds invoice_line columns without a table copy: down to its parent and up
    again, the immutability triggers of e5f6a7b8c9d0 are still there, and nothing drifts."""
    from flask_migrate import downgrade, upgrade

    from app.extensions import db

    def triggers() -> set[str]:
        with db.engine.connect() as conn:
            if backend == "sqlite":
                rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            else:
                rows = conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
            return {name for (name,) in rows if "immutable" in name}

    with empty_database(backend) as url, app_on(url):
        upgrade()
        at_head = triggers()
        assert at_head and all(any(name.startswith(table) for name in at_head)
                               for table in ("invoice_immutable", "invoice_line_immutable"))
        downgrade(revision="e5f6a7b8c9d0")
        assert triggers() == at_head
        assert "bonus_program_service" not in table_names(db.engine)
        upgrade()
        assert triggers() == at_head
        with db.engine.connect() as conn:
            assert schema_diff(conn, model_metadata()) == []
