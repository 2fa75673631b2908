"""pass cards: which services a card type covers (issue 5)

Revision ID: d4e5f6a7b8c9
Revises: 07049d368bd2
Create Date: 2026-11-23 02:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4e5f6a7b8c9'
down_revision = '07049d368bd2'
branch_labels = None
depends_on = None


def upgrade():
    # A card type covers the services listed here; without any, its category's services.
    op.create_table('pass_card_type_service',
    sa.Column('type_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['type_id'], ['pass_card_type.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('type_id', 'service_id')
    )
    op.create_table('pass_card_type_service_version',
    sa.Column('type_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('service_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('operation_type', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('type_id', 'service_id', 'transaction_id')
    )
    op.create_index(op.f('ix_pass_card_type_service_version_operation_type'), 'pass_card_type_service_version',
                    ['operation_type'], unique=False)
    op.create_index('ix_pass_card_type_service_version_pk_transaction_id', 'pass_card_type_service_version',
                    ['type_id', 'service_id', sa.literal_column('transaction_id DESC')], unique=False)
    op.create_index(op.f('ix_pass_card_type_service_version_transaction_id'), 'pass_card_type_service_version',
                    ['transaction_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_pass_card_type_service_version_transaction_id'), table_name='pass_card_type_service_version')
    op.drop_index('ix_pass_card_type_service_version_pk_transaction_id', table_name='pass_card_type_service_version')
    op.drop_index(op.f('ix_pass_card_type_service_version_operation_type'), table_name='pass_card_type_service_version')
    op.drop_table('pass_card_type_service_version')
    op.drop_table('pass_card_type_service')
