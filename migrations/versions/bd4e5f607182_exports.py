"""export files built in the background

Revision ID: bd4e5f607182
Revises: ac3d4e5f6071
Create Date: 2026-11-22 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bd4e5f607182'
down_revision = 'ac3d4e5f6071'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
