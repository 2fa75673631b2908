"""booking history search: comment keyword index (pg_trgm / FTS5) and customer name indexes

PostgreSQL: a GIN trigram index on booking.comment serves `comment ILIKE '%word%'`
(extension pg_trgm). SQLite: an FTS5 external-content table over booking.comment,
kept in step by AFTER INSERT/UPDATE/DELETE triggers and queried with MATCH.
Both dialects: indexes on lower(last_name) / lower(first_name) of customer for the
case-insensitive "Kund:in beginnt mit" filter. None of these objects is in the
SQLAlchemy metadata; migrations/env.py and the drift test skip them by name
(app.views.booking_history.SEARCH_SCHEMA_OBJECTS).

Revision ID: 8a1b2c3d4e50
Revises: 7c1e2f9a4b10
Create Date: 2026-11-22 22:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '8a1b2c3d4e50'
down_revision = '7c1e2f9a4b10'
branch_labels = None
depends_on = None

FTS = 'booking_comment_fts'
NAME_INDEXES = {'ix_customer_last_name_lower': 'last_name', 'ix_customer_first_name_lower': 'first_name'}
# FTS5 external content: a row leaves the index with the values it was indexed with.
SQLITE_TRIGGERS = {
    f'tr_{FTS}_insert': f"""
        CREATE TRIGGER tr_{FTS}_insert AFTER INSERT ON booking BEGIN
            INSERT INTO {FTS}(rowid, comment) VALUES (NEW.id, NEW.comment);
        END""",
    f'tr_{FTS}_delete': f"""
        CREATE TRIGGER tr_{FTS}_delete AFTER DELETE ON booking BEGIN
            INSERT INTO {FTS}({FTS}, rowid, comment) VALUES ('delete', OLD.id, OLD.comment);
        END""",
    f'tr_{FTS}_update': f"""
        CREATE TRIGGER tr_{FTS}_update AFTER UPDATE OF id, comment ON booking BEGIN
            INSERT INTO {FTS}({FTS}, rowid, comment) VALUES ('delete', OLD.id, OLD.comment);
            INSERT INTO {FTS}(rowid, comment) VALUES (NEW.id, NEW.comment);
        END""",
}


def upgrade():
    for name, column in NAME_INDEXES.items():
        op.execute(f'CREATE INDEX {name} ON customer (lower({column}))')
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_booking_comment_trgm ON booking USING gin (comment gin_trgm_ops)')
    elif dialect == 'sqlite':
        op.execute(f"CREATE VIRTUAL TABLE {FTS} USING fts5(comment, content='booking', content_rowid='id')")
        op.execute(f"INSERT INTO {FTS}({FTS}) VALUES ('rebuild')")
        for ddl in SQLITE_TRIGGERS.values():
            op.execute(ddl)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        # pg_trgm stays installed: other objects of the database may use it.
        op.execute('DROP INDEX IF EXISTS ix_booking_comment_trgm')
    elif dialect == 'sqlite':
        for name in SQLITE_TRIGGERS:
            op.execute(f'DROP TRIGGER IF EXISTS {name}')
        op.execute(f'DROP TABLE IF EXISTS {FTS}')
    for name in NAME_INDEXES:
        op.execute(f'DROP INDEX IF EXISTS {name}')
