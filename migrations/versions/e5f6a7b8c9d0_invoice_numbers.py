"""invoices: gapless numbers per year, issued invoices immutable in the database

`invoice_counter` holds the last sequence number of each year (issuing increments it
inside the issuing transaction). Triggers refuse to change the content of an issued or
cancelled invoice, to delete it, and to insert, change or delete lines of it; still
allowed: paid_at, customer_id (merge of duplicates), the addressee when it is still
empty, and status issued -> cancelled (Storno).

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-11-23 02:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5f6a7b8c9d0'
down_revision = 'd4e5f6a7b8c9'
branch_labels = None
depends_on = None

MESSAGE = 'Ausgestellte Rechnungen sind unveraenderlich (Korrektur nur per Storno)'

# NULL-safe "changed" on both databases: PostgreSQL IS DISTINCT FROM, SQLite IS NOT.
FROZEN = ('year', 'sequence', 'number', 'cancels_id', 'created_at', 'issued_at', 'note', 'id')


def _invoice_changed(distinct: str) -> str:
    frozen = ' OR '.join(f'NEW.{column} {distinct} OLD.{column}' for column in FROZEN)
    return (f"OLD.status <> 'draft' AND ({frozen}"
            f" OR (OLD.recipient_name IS NOT NULL AND (NEW.recipient_name {distinct} OLD.recipient_name"
            f" OR NEW.recipient_address {distinct} OLD.recipient_address))"
            f" OR (NEW.status <> OLD.status AND NOT (OLD.status = 'issued' AND NEW.status = 'cancelled')))")


def _issued(invoice_id: str) -> str:
    return f"EXISTS (SELECT 1 FROM invoice WHERE invoice.id = {invoice_id} AND invoice.status <> 'draft')"


POSTGRES_UP = [
    f"""CREATE FUNCTION invoice_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF {_invoice_changed('IS DISTINCT FROM')} THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER invoice_immutable BEFORE UPDATE OR DELETE ON invoice
    FOR EACH ROW EXECUTE FUNCTION invoice_immutable()""",
    f"""CREATE FUNCTION invoice_line_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND {_issued('OLD.invoice_id')} THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP <> 'DELETE' AND {_issued('NEW.invoice_id')} THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER invoice_line_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_line
    FOR EACH ROW EXECUTE FUNCTION invoice_line_immutable()""",
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS invoice_line_immutable ON invoice_line",
    "DROP FUNCTION IF EXISTS invoice_line_immutable()",
    "DROP TRIGGER IF EXISTS invoice_immutable ON invoice",
    "DROP FUNCTION IF EXISTS invoice_immutable()",
]

_RAISE = f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
SQLITE_UP = [
    f"CREATE TRIGGER invoice_immutable_update BEFORE UPDATE ON invoice WHEN {_invoice_changed('IS NOT')} {_RAISE}",
    f"CREATE TRIGGER invoice_immutable_delete BEFORE DELETE ON invoice WHEN OLD.status <> 'draft' {_RAISE}",
    f"CREATE TRIGGER invoice_line_immutable_insert BEFORE INSERT ON invoice_line WHEN {_issued('NEW.invoice_id')} {_RAISE}",
    f"CREATE TRIGGER invoice_line_immutable_update BEFORE UPDATE ON invoice_line "
    f"WHEN {_issued('OLD.invoice_id')} OR {_issued('NEW.invoice_id')} {_RAISE}",
    f"CREATE TRIGGER invoice_line_immutable_delete BEFORE DELETE ON invoice_line WHEN {_issued('OLD.invoice_id')} {_RAISE}",
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "invoice_line_immutable_delete", "invoice_line_immutable_update", "invoice_line_immutable_insert",
    "invoice_immutable_delete", "invoice_immutable_update")]


def upgrade():
    op.create_table('invoice_counter',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last_sequence', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('year')
    )
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_UP if dialect == 'postgresql' else SQLITE_UP if dialect == 'sqlite' else []:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_DOWN if dialect == 'postgresql' else SQLITE_DOWN if dialect == 'sqlite' else []:
        op.execute(statement)
    op.drop_table('invoice_counter')
