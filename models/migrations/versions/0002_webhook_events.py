"""webhook events: verified Shopify and WooCommerce deliveries, one row per delivery id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('delivery_id', sa.String(length=255), nullable=False),
    sa.Column('topic', sa.String(length=100), nullable=False),
    sa.Column('triggered_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('received_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('processed_at', models.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('channel', 'delivery_id', name=op.f('uq_webhook_events_channel_delivery_id'))
    )


def downgrade() -> None:
    op.drop_table('webhook_events')
