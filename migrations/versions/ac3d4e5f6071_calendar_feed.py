"""calendar: ICS feed tokens

Revision ID: ac3d4e5f6071
Revises: 9b2c3d4e5f60
Create Date: 2026-11-22 22:00:00

"""
import sqlalchemy as sa
from alembic import op

import app.models.types

# revision identifiers, used by Alembic.
revision = 'ac3d4e5f6071'
down_revision = '9b2c3d4e5f60'
branch_labels = None
depends_on = None


def upgrade():
    # One read-only feed per employee; only the SHA-256 of its secret token is stored.
    op.create_table('calendar_feed',
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('employee_id')
    )
    with op.batch_alter_table('calendar_feed', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_feed_token_hash'), ['token_hash'], unique=True)


def downgrade():
    with op.batch_alter_table('calendar_feed', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_feed_token_hash'))
    op.drop_table('calendar_feed')
