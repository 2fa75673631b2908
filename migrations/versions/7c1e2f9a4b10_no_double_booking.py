"""no double booking: booking.cancelled, overlap constraints (PostgreSQL) / triggers (SQLite)

An employee or a resource never holds two overlapping non-cancelled bookings;
the overlap is half-open, [start_at, end_at). `booking.cancelled` mirrors "the
status kind is cancellation" (kept by the booking flush listener), because a
constraint cannot look into booking_status.

PostgreSQL: exclusion constraints over tstzrange (btree_gist for `=` on the ids),
violations raise SQLSTATE 23P01. SQLite: BEFORE INSERT/UPDATE triggers raise
'booking_overlap_employee' / 'booking_overlap_resource'; SQLite serialises
writers, so the trigger's check and the write are one atomic step. SQLite
stores the datetimes as fixed-format UTC strings ('YYYY-MM-DD HH:MM:SS.ffffff'),
so comparing them as strings orders them correctly.

Revision ID: 7c1e2f9a4b10
Revises: 632336627101
Create Date: 2026-11-22 21:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c1e2f9a4b10'
down_revision = '632336627101'
branch_labels = None
depends_on = None

KEYS = ("employee", "resource")


def _sqlite_trigger(key: str, event: str) -> str:
    """The overlap check on the (key_id, end_at) index: bookings that end after
    the new one starts are few (the future), not every past booking."""
    not_self = " AND b.id != NEW.id" if event == "UPDATE" else ""
    return f"""
        CREATE TRIGGER tr_booking_{key}_overlap_{event.lower()} BEFORE {event} ON booking
        FOR EACH ROW WHEN NEW.{key}_id IS NOT NULL AND NOT NEW.cancelled
        BEGIN
            SELECT RAISE(ABORT, 'booking_overlap_{key}') WHERE EXISTS (
                SELECT 1 FROM booking AS b INDEXED BY ix_booking_{key}_end
                WHERE b.{key}_id = NEW.{key}_id AND b.end_at > NEW.start_at
                  AND b.start_at < NEW.end_at AND NOT b.cancelled{not_self}
            );
        END
    """


def upgrade():
    op.add_column('booking', sa.Column('cancelled', sa.Boolean(), server_default='0', nullable=False))
    op.add_column('booking_version', sa.Column('cancelled', sa.Boolean(), server_default='0',
                                               autoincrement=False, nullable=True))
    status = sa.table('booking_status', sa.column('id', sa.Integer), sa.column('kind', sa.String))
    cancellations = sa.select(status.c.id).where(status.c.kind == 'cancellation')
    for table in ('booking', 'booking_version'):
        rows = sa.table(table, sa.column('status_id', sa.Integer), sa.column('cancelled', sa.Boolean))
        op.execute(rows.update().where(rows.c.status_id.in_(cancellations)).values(cancelled=True))
    op.create_index('ix_booking_employee_end', 'booking', ['employee_id', 'end_at'], unique=False)
    op.create_index('ix_booking_resource_end', 'booking', ['resource_id', 'end_at'], unique=False)

    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS btree_gist')
        for key in KEYS:
            op.execute(
                f"ALTER TABLE booking ADD CONSTRAINT ex_booking_{key}_overlap EXCLUDE USING gist "
                f"({key}_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
                f"WHERE (NOT cancelled AND {key}_id IS NOT NULL)"
            )
    elif dialect == 'sqlite':
        for key in KEYS:
            for event in ('INSERT', 'UPDATE'):
                op.execute(_sqlite_trigger(key, event))


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        for key in KEYS:
            op.execute(f'ALTER TABLE booking DROP CONSTRAINT IF EXISTS ex_booking_{key}_overlap')
    elif dialect == 'sqlite':
        for key in KEYS:
            for event in ('INSERT', 'UPDATE'):
                op.execute(f'DROP TRIGGER IF EXISTS tr_booking_{key}_overlap_{event.lower()}')
    op.drop_index('ix_booking_resource_end', table_name='booking')
    op.drop_index('ix_booking_employee_end', table_name='booking')
    with op.batch_alter_table('booking_version', schema=None) as batch_op:
        batch_op.drop_column('cancelled')
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_column('cancelled')
