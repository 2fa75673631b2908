"""calendar: ICS feed tokens

Revision ID: ac3d4e5f6071
Revises: 9b2c3d4e5f60
Create Date: 2026-11-22 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'ac3d4e5f6071'
down_revision = '9b2c3d4e5f60'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
