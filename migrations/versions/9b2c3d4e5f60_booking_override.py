"""booking override of working hours / absences

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
    pass


def downgrade():
    pass
