"""booking override of working hours / absences

A Manager/Owner may book outside an employee's working hours or during an
absence; `booking.hours_override` records it (and `booking_version`, so the
audit trail says who set it when).

Revision ID: 9b2c3d4e5f60
Revises: 8a1b2c3d4e50
Create Date: 2026-11-22 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9b2c3d4e5f60'
down_revision = '8a1b2c3d4e50'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('booking', sa.Column('hours_override', sa.Boolean(), server_default='0', nullable=False))
    op.add_column('booking_version', sa.Column('hours_override', sa.Boolean(), server_default='0',
                                               autoincrement=False, nullable=True))


def downgrade():
    # a plain DROP COLUMN (SQLite >= 3.35): a batch copy of `booking` would lose its overlap triggers
    op.drop_column('booking_version', 'hours_override')
    op.drop_column('booking', 'hours_override')
