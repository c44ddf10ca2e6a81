"""order lines say whether they ship from our shelves

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every line stored before shipped as far as Clerk knew: it reserved stock then too.
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requires_shipping', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('order_lines', schema=None) as batch_op:
        batch_op.drop_column('requires_shipping')
