"""bonus ledger (actor, reversals, referral payouts), bonus program category, gross-priced
invoice lines and bonus discount lines (issue 5)

invoice_line gets its columns by a plain ALTER TABLE ADD COLUMN on SQLite too: a batch copy
would drop the immutability triggers of migration e5f6a7b8c9d0.

Revision ID: 58bb3cf409f6
Revises: e5f6a7b8c9d0
Create Date: 2026-12-04 03:32:56.846642

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '58bb3cf409f6'
down_revision = 'e5f6a7b8c9d0'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('bonus_program', 'bonus_program_version'):
        op.add_column(table, sa.Column('category', sa.String(length=20), nullable=True))
    # A program earns on the services listed here; without any, on its category's; with neither, on all.
    op.create_table('bonus_program_service',
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['bonus_program.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('program_id', 'service_id')
    )
    op.create_table('bonus_program_service_version',
    sa.Column('program_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('service_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('operation_type', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('program_id', 'service_id', 'transaction_id')
    )
    op.create_index(op.f('ix_bonus_program_service_version_operation_type'), 'bonus_program_service_version',
                    ['operation_type'], unique=False)
    op.create_index('ix_bonus_program_service_version_pk_transaction_id', 'bonus_program_service_version',
                    ['program_id', 'service_id', sa.literal_column('transaction_id DESC')], unique=False)
    op.create_index(op.f('ix_bonus_program_service_version_transaction_id'), 'bonus_program_service_version',
                    ['transaction_id'], unique=False)

    with op.batch_alter_table('bonus_transaction', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reverses_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('referred_customer_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('discount', sa.Numeric(precision=10, scale=2), nullable=True))
        batch_op.create_index('ix_bonus_transaction_booking', ['booking_id'], unique=False)
        batch_op.create_unique_constraint('uq_bonus_transaction_referred', ['referred_customer_id'])
        batch_op.create_unique_constraint('uq_bonus_transaction_reverses', ['reverses_id'])
        batch_op.create_foreign_key('fk_bonus_transaction_created_by', 'ab_user', ['created_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key('fk_bonus_transaction_reverses', 'bonus_transaction', ['reverses_id'], ['id'], ondelete='SET NULL')
        batch_op.create_check_constraint('ck_bonus_transaction_referral',
                                         "kind = 'referral' OR referred_customer_id IS NULL")
        batch_op.create_check_constraint('ck_bonus_transaction_reverses', "reverses_id IS NULL OR kind = 'correction'")
        batch_op.create_check_constraint('ck_bonus_transaction_discount',
                                         "discount IS NULL OR (kind = 'redeem' AND discount > 0)")

    for column in ('created_by_id', 'reverses_id', 'referred_customer_id'):
        op.add_column('bonus_transaction_version', sa.Column(column, sa.Integer(), autoincrement=False, nullable=True))
    op.add_column('bonus_transaction_version', sa.Column('discount', sa.Numeric(precision=10, scale=2),
                                                         autoincrement=False, nullable=True))

    op.add_column('invoice_line', sa.Column('gross_pricing', sa.Boolean(), server_default='0', nullable=False))
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE invoice_line ADD COLUMN bonus_transaction_id INTEGER '
                   'REFERENCES bonus_transaction (id)')
    else:
        op.add_column('invoice_line', sa.Column('bonus_transaction_id', sa.Integer(), nullable=True))
        op.create_foreign_key(None, 'invoice_line', 'bonus_transaction', ['bonus_transaction_id'], ['id'])
    op.create_index('ix_invoice_line_bonus_transaction_id', 'invoice_line', ['bonus_transaction_id'])

    op.add_column('invoice_line_version', sa.Column('gross_pricing', sa.Boolean(), server_default='0',
                                                    autoincrement=False, nullable=True))
    op.add_column('invoice_line_version', sa.Column('bonus_transaction_id', sa.Integer(), autoincrement=False,
                                                    nullable=True))
    op.create_index('ix_invoice_line_version_bonus_transaction_id', 'invoice_line_version', ['bonus_transaction_id'])


def downgrade():
    # plain DROP COLUMN (SQLite >= 3.35) for invoice_line: its triggers stay
    op.drop_index('ix_invoice_line_version_bonus_transaction_id', table_name='invoice_line_version')
    op.drop_column('invoice_line_version', 'bonus_transaction_id')
    op.drop_column('invoice_line_version', 'gross_pricing')
    op.drop_index('ix_invoice_line_bonus_transaction_id', table_name='invoice_line')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_column('invoice_line', 'bonus_transaction_id')
    else:  # SQLite cannot DROP COLUMN a foreign key column: copy the table, then its triggers again
        _sqlite_drop_invoice_line_column()
    op.drop_column('invoice_line', 'gross_pricing')

    for column in ('discount', 'referred_customer_id', 'reverses_id', 'created_by_id'):
        op.drop_column('bonus_transaction_version', column)
    with op.batch_alter_table('bonus_transaction', schema=None) as batch_op:
        batch_op.drop_constraint('ck_bonus_transaction_discount', type_='check')
        batch_op.drop_constraint('ck_bonus_transaction_reverses', type_='check')
        batch_op.drop_constraint('ck_bonus_transaction_referral', type_='check')
        batch_op.drop_constraint('uq_bonus_transaction_reverses', type_='unique')
        batch_op.drop_constraint('uq_bonus_transaction_referred', type_='unique')
        batch_op.drop_index('ix_bonus_transaction_booking')
        batch_op.drop_column('discount')
        batch_op.drop_column('referred_customer_id')
        batch_op.drop_column('reverses_id')
        batch_op.drop_column('created_by_id')

    op.drop_table('bonus_program_service_version')  # its indexes go with it
    op.drop_table('bonus_program_service')
    for table in ('bonus_program_version', 'bonus_program'):
        op.drop_column(table, 'category')


def _sqlite_drop_invoice_line_column():
    bind = op.get_bind()
    triggers = [sql for (sql,) in bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'invoice_line'")]
    with op.batch_alter_table('invoice_line', schema=None) as batch_op:
        batch_op.drop_column('bonus_transaction_id')
    for sql in triggers:
        bind.exec_driver_sql(sql)
