"""export files built in the background

Revision ID: bd4e5f607182
Revises: ac3d4e5f6071
Create Date: 2026-11-22 22:00:00

"""
from alembic import op
import sqlalchemy as sa

import app.models.types


# revision identifiers, used by Alembic.
revision = 'bd4e5f607182'
down_revision = 'ac3d4e5f6071'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('export_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('view_name', sa.String(length=80), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('query_string', sa.Text(), server_default='', nullable=False),
    sa.Column('status', sa.String(length=10), server_default='queued', nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=120), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', app.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.models.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("format IN ('csv', 'xlsx')", name='ck_export_file_format'),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name='ck_export_file_status'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('stored_name'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('export_file', schema=None) as batch_op:
        batch_op.create_index('ix_export_file_user', ['user_id', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('export_file', schema=None) as batch_op:
        batch_op.drop_index('ix_export_file_user')
    op.drop_table('export_file')
