"""customers: merges, duplicate dismissals, erasures, lens keys

`customer_merge` records a merge of two customers (what moved, which fields were
filled) so an owner can undo it; `duplicate_dismissal` is "Keine Dublette" for a
pair; `customer_erasure` records a GDPR erasure (who, when, what the law keeps);
`customer.erased_at` marks an anonymized customer; `lens.builtin_key` names a
built-in lens; `invoice.recipient_name/recipient_address` keep the addressee of an
issued invoice (it must survive the customer's erasure).

Revision ID: 07049d368bd2
Revises: ce5f60718293
Create Date: 2026-11-23 00:35:44.680554

"""
from alembic import op
import sqlalchemy as sa

import app.models.types


# revision identifiers, used by Alembic.
revision = '07049d368bd2'
down_revision = 'ce5f60718293'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('duplicate_dismissal_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('customer_low_id', sa.Integer(), autoincrement=False, nullable=True),
    sa.Column('customer_high_id', sa.Integer(), autoincrement=False, nullable=True),
    sa.Column('dismissed_at', app.models.types.UTCDateTime(timezone=True), autoincrement=False, nullable=True),
    sa.Column('dismissed_by_id', sa.Integer(), autoincrement=False, nullable=True),
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('operation_type', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', 'transaction_id')
    )
    with op.batch_alter_table('duplicate_dismissal_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duplicate_dismissal_version_customer_high_id'), ['customer_high_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_dismissal_version_operation_type'), ['operation_type'], unique=False)
        batch_op.create_index('ix_duplicate_dismissal_version_pk_transaction_id', ['id', sa.literal_column('transaction_id DESC')], unique=False)
        batch_op.create_index(batch_op.f('ix_duplicate_dismissal_version_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('customer_erasure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('erased_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('erased_by_id', sa.Integer(), nullable=True),
    sa.Column('retained', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['erased_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('customer_erasure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_erasure_customer_id'), ['customer_id'], unique=False)

    op.create_table('customer_merge',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kept_id', sa.Integer(), nullable=True),
    sa.Column('removed_id', sa.Integer(), nullable=False),
    sa.Column('moved', sa.JSON(), nullable=False),
    sa.Column('filled', sa.JSON(), nullable=False),
    sa.Column('transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('merged_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('merged_by_id', sa.Integer(), nullable=True),
    sa.Column('undone_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('undone_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('kept_id IS NULL OR kept_id <> removed_id', name='ck_customer_merge_pair'),
    sa.ForeignKeyConstraint(['kept_id'], ['customer.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['merged_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['undone_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('customer_merge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_merge_kept_id'), ['kept_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_merge_removed_id'), ['removed_id'], unique=False)

    op.create_table('duplicate_dismissal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_low_id', sa.Integer(), nullable=False),
    sa.Column('customer_high_id', sa.Integer(), nullable=False),
    sa.Column('dismissed_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dismissed_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('customer_low_id < customer_high_id', name='ck_duplicate_dismissal_order'),
    sa.ForeignKeyConstraint(['customer_high_id'], ['customer.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_low_id'], ['customer.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['dismissed_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_low_id', 'customer_high_id', name='uq_duplicate_dismissal_pair'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('duplicate_dismissal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duplicate_dismissal_customer_high_id'), ['customer_high_id'], unique=False)

    op.add_column('customer', sa.Column('erased_at', app.models.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('customer_version', sa.Column('erased_at', app.models.types.UTCDateTime(timezone=True),
                                                autoincrement=False, nullable=True))

    for table in ('invoice', 'invoice_version'):
        op.add_column(table, sa.Column('recipient_name', sa.String(length=200), nullable=True))
        op.add_column(table, sa.Column('recipient_address', sa.Text(), nullable=True))

    with op.batch_alter_table('lens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('builtin_key', sa.String(length=40), nullable=True))
        batch_op.create_unique_constraint('uq_lens_builtin_key', ['builtin_key'])

    with op.batch_alter_table('lens_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('builtin_key', sa.String(length=40), autoincrement=False, nullable=True))



def downgrade():
    with op.batch_alter_table('lens_version', schema=None) as batch_op:
        batch_op.drop_column('builtin_key')

    with op.batch_alter_table('lens', schema=None) as batch_op:
        batch_op.drop_constraint('uq_lens_builtin_key', type_='unique')
        batch_op.drop_column('builtin_key')

    for table in ('invoice_version', 'invoice'):
        op.drop_column(table, 'recipient_address')
        op.drop_column(table, 'recipient_name')

    # plain DROP COLUMN (SQLite >= 3.35): no batch copy of the customer table
    op.drop_column('customer_version', 'erased_at')
    op.drop_column('customer', 'erased_at')

    with op.batch_alter_table('duplicate_dismissal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duplicate_dismissal_customer_high_id'))

    op.drop_table('duplicate_dismissal')
    with op.batch_alter_table('customer_merge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_merge_removed_id'))
        batch_op.drop_index(batch_op.f('ix_customer_merge_kept_id'))

    op.drop_table('customer_merge')
    with op.batch_alter_table('customer_erasure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_erasure_customer_id'))

    op.drop_table('customer_erasure')
    with op.batch_alter_table('duplicate_dismissal_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_duplicate_dismissal_version_transaction_id'))
        batch_op.drop_index('ix_duplicate_dismissal_version_pk_transaction_id')
        batch_op.drop_index(batch_op.f('ix_duplicate_dismissal_version_operation_type'))
        batch_op.drop_index(batch_op.f('ix_duplicate_dismissal_version_customer_high_id'))

    op.drop_table('duplicate_dismissal_version')
