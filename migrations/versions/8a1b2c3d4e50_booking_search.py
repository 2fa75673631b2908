"""booking history search: comment keyword index (pg_trgm / FTS5) and list indexes

Revision ID: 8a1b2c3d4e50
Revises: 7c1e2f9a4b10
Create Date: 2026-11-22 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8a1b2c3d4e50'
down_revision = '7c1e2f9a4b10'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
