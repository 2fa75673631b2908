"""group slots: participants of a group session share the slot up to the capacity

A booking of a service with capacity > 1 is a place in a group session
(`booking.shared_slot`, kept by the booking flush listener). Bookings of the
same service, employee and start share the slot: the overlap rule lets them
through, every other overlap is still refused. The places of a session are
limited by the service's capacity.

PostgreSQL: the exclusion constraints get a third element, the slot key
(`tb_booking_slot`: one key per group session — service, start, employee —
and one per single booking; two
bookings conflict only when their keys differ). The capacity trigger takes a
transaction-level advisory lock per service before counting, so concurrent
bookings of the last place are serialised; it raises 'booking_capacity_full'.
SQLite: the overlap triggers skip places of the same session; a capacity
trigger counts (SQLite serialises writers).

Revision ID: ce5f60718293
Revises: bd4e5f607182
Create Date: 2026-11-22 22:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'ce5f60718293'
down_revision = 'bd4e5f607182'
branch_labels = None
depends_on = None

KEYS = ("employee", "resource")
# extract(epoch …) of a timestamptz does not depend on the session time zone: IMMUTABLE is true.
PG_SLOT_FUNCTION = """
CREATE OR REPLACE FUNCTION tb_booking_slot(shared boolean, service integer, start_at timestamptz,
                                           employee integer, booking integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN shared THEN 'g' || service || '@' || extract(epoch FROM start_at)::bigint
                                 || '#' || coalesce(employee, 0)
                ELSE 'b' || booking END
$$
"""
PG_CAPACITY_FUNCTION = """
CREATE OR REPLACE FUNCTION tb_booking_capacity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    places integer;
    taken integer;
BEGIN
    IF NOT NEW.shared_slot OR NEW.cancelled THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('tb_booking_capacity'), NEW.service_id);
    SELECT capacity INTO places FROM service WHERE id = NEW.service_id;
    SELECT count(*) INTO taken FROM booking AS b
     WHERE b.service_id = NEW.service_id AND b.start_at = NEW.start_at AND b.shared_slot AND NOT b.cancelled
       AND b.employee_id IS NOT DISTINCT FROM NEW.employee_id AND b.id <> NEW.id;
    IF taken >= places THEN
        RAISE EXCEPTION 'booking_capacity_full' USING ERRCODE = '23514';
    END IF;
    RETURN NEW;
END
$$
"""


def _pg_constraint(key: str, slot: bool) -> str:
    element = ", tb_booking_slot(shared_slot, service_id, start_at, employee_id, id) WITH <>" if slot else ""
    return (
        f"ALTER TABLE booking ADD CONSTRAINT ex_booking_{key}_overlap EXCLUDE USING gist "
        f"({key}_id WITH =, tstzrange(start_at, end_at, '[)') WITH &&{element}) "
        f"WHERE (NOT cancelled AND {key}_id IS NOT NULL)"
    )


def _sqlite_overlap_trigger(key: str, event: str, shared: bool) -> str:
    not_self = " AND b.id != NEW.id" if event == "UPDATE" else ""
    same_session = (
        " AND NOT (NEW.shared_slot AND b.shared_slot AND b.service_id = NEW.service_id"
        " AND b.start_at = NEW.start_at AND b.employee_id IS NEW.employee_id)"
    ) if shared else ""
    return f"""
        CREATE TRIGGER tr_booking_{key}_overlap_{event.lower()} BEFORE {event} ON booking
        FOR EACH ROW WHEN NEW.{key}_id IS NOT NULL AND NOT NEW.cancelled
        BEGIN
            SELECT RAISE(ABORT, 'booking_overlap_{key}') WHERE EXISTS (
                SELECT 1 FROM booking AS b INDEXED BY ix_booking_{key}_end
                WHERE b.{key}_id = NEW.{key}_id AND b.end_at > NEW.start_at
                  AND b.start_at < NEW.end_at AND NOT b.cancelled{not_self}{same_session}
            );
        END
    """


def _sqlite_capacity_trigger(event: str) -> str:
    not_self = " AND b.id != NEW.id" if event == "UPDATE" else ""
    return f"""
        CREATE TRIGGER tr_booking_capacity_{event.lower()} BEFORE {event} ON booking
        FOR EACH ROW WHEN NEW.shared_slot AND NOT NEW.cancelled
        BEGIN
            SELECT RAISE(ABORT, 'booking_capacity_full') WHERE (
                SELECT count(*) FROM booking AS b
                WHERE b.service_id = NEW.service_id AND b.start_at = NEW.start_at AND b.shared_slot
                  AND NOT b.cancelled AND b.employee_id IS NEW.employee_id{not_self}
            ) >= (SELECT capacity FROM service WHERE id = NEW.service_id);
        END
    """


def _drop_rules() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for key in KEYS:
            op.execute(f'ALTER TABLE booking DROP CONSTRAINT IF EXISTS ex_booking_{key}_overlap')
        op.execute('DROP TRIGGER IF EXISTS tr_booking_capacity ON booking')
        op.execute('DROP FUNCTION IF EXISTS tb_booking_capacity()')
        op.execute('DROP FUNCTION IF EXISTS tb_booking_slot(boolean, integer, timestamptz, integer, integer)')
    else:
        for event in ('insert', 'update'):
            for name in (*(f'{key}_overlap' for key in KEYS), 'capacity'):
                op.execute(f'DROP TRIGGER IF EXISTS tr_booking_{name}_{event}')


def _create_rules(shared: bool) -> None:
    """The overlap rules with group sessions (`shared`) or without (the previous revision's)."""
    if op.get_bind().dialect.name == 'postgresql':
        if shared:
            op.execute(PG_SLOT_FUNCTION)
            op.execute(PG_CAPACITY_FUNCTION)
            op.execute(
                "CREATE TRIGGER tr_booking_capacity BEFORE INSERT OR UPDATE ON booking "
                "FOR EACH ROW EXECUTE FUNCTION tb_booking_capacity()"
            )
        for key in KEYS:
            op.execute(_pg_constraint(key, shared))
    else:
        for event in ('INSERT', 'UPDATE'):
            for key in KEYS:
                op.execute(_sqlite_overlap_trigger(key, event, shared))
            if shared:
                op.execute(_sqlite_capacity_trigger(event))


def upgrade():
    op.add_column('booking', sa.Column('shared_slot', sa.Boolean(), server_default='0', nullable=False))
    op.add_column('booking_version', sa.Column('shared_slot', sa.Boolean(), server_default='0',
                                               autoincrement=False, nullable=True))
    _drop_rules()  # first: the backfill must not fire a trigger per row (minutes at 1M bookings)
    service = sa.table('service', sa.column('id', sa.Integer), sa.column('capacity', sa.Integer))
    groups = sa.select(service.c.id).where(service.c.capacity > 1)
    for table in ('booking', 'booking_version'):
        rows = sa.table(table, sa.column('service_id', sa.Integer), sa.column('shared_slot', sa.Boolean))
        op.execute(rows.update().where(rows.c.service_id.in_(groups)).values(shared_slot=True))
    _create_rules(shared=True)


def downgrade():
    _drop_rules()
    # plain DROP COLUMN (SQLite >= 3.35): a batch copy of `booking` would lose its other triggers
    op.drop_column('booking_version', 'shared_slot')
    op.drop_column('booking', 'shared_slot')
    _create_rules(shared=False)
