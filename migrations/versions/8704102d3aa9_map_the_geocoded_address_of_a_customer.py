"""map: the geocoded address of a customer

Revision ID: 8704102d3aa9
Revises: da03cb67c32e
Create Date: 2026-12-04 19:57:46.660373

"""
from alembic import op
import sqlalchemy as sa

import app.models.types


# revision identifiers, used by Alembic.
revision = '8704102d3aa9'
down_revision = 'da03cb67c32e'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN on SQLite too: no table copy, the customer triggers stay.
    op.add_column('customer', sa.Column('geocoded_address', sa.String(length=300), nullable=True))
    op.add_column('customer_version', sa.Column('geocoded_address', sa.String(length=300), autoincrement=False,
                                                nullable=True))


def downgrade():
    op.drop_column('customer_version', 'geocoded_address')
    op.drop_column('customer', 'geocoded_address')
