"""jobs: customer language, employee notify channel, booking reminders

Revision ID: da03cb67c32e
Revises: 58bb3cf409f6
Create Date: 2026-12-04 19:09:45.914970

"""
from alembic import op
import sqlalchemy as sa

import app.models.types


# revision identifiers, used by Alembic.
revision = 'da03cb67c32e'
down_revision = '58bb3cf409f6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('booking_reminder',
    sa.Column('booking_id', sa.Integer(), nullable=False),
    sa.Column('start_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['booking.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notification_log.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('booking_id', 'start_at', name='pk_booking_reminder')
    )
    # Plain ADD COLUMN (with a column CHECK) on SQLite too: no table copy, triggers stay.
    op.add_column('customer', sa.Column(
        'language', sa.String(length=2),
        sa.CheckConstraint("language IN ('de', 'en')", name='ck_customer_language'),
        server_default='de', nullable=False))
    op.add_column('customer_version', sa.Column('language', sa.String(length=2), server_default='de',
                                                autoincrement=False, nullable=True))
    op.add_column('employee', sa.Column(
        'notify_channel', sa.String(length=10),
        sa.CheckConstraint("notify_channel IN ('none', 'sms', 'telegram')", name='ck_employee_notify_channel'),
        server_default='none', nullable=False))
    op.add_column('employee_version', sa.Column('notify_channel', sa.String(length=10), server_default='none',
                                                autoincrement=False, nullable=True))


def downgrade():
    op.drop_column('employee_version', 'notify_channel')
    op.drop_column('employee', 'notify_channel')
    op.drop_column('customer_version', 'language')
    op.drop_column('customer', 'language')
    op.drop_table('booking_reminder')
