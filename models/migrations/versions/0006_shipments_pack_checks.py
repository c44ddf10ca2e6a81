"""shipments, packing checks, and a detail on holds

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shipments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('label_key', sa.String(length=255), nullable=False),
    sa.Column('carrier', sa.String(length=60), nullable=False),
    sa.Column('service', sa.String(length=100), nullable=False),
    sa.Column('carrier_shipment_id', sa.String(length=100), nullable=False),
    sa.Column('tracking_number', sa.String(length=100), nullable=False),
    sa.Column('label_cost', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('label_path', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('zone', sa.String(length=20), nullable=True),
    sa.Column('fulfillment_ref', sa.String(length=255), nullable=True),
    sa.Column('shipped_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('promised_by', sa.Date(), nullable=True),
    sa.Column('delivered_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('tracking_state', sa.JSON(), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_shipments_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments')),
    sa.UniqueConstraint('label_key', name=op.f('uq_shipments_label_key'))
    )
    op.create_index(op.f('ix_shipments_order_id'), 'shipments', ['order_id'], unique=False)
    op.create_index(op.f('ix_shipments_status'), 'shipments', ['status'], unique=False)
    op.create_index(op.f('ix_shipments_tracking_number'), 'shipments', ['tracking_number'], unique=False)
    op.create_table('pack_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('scans', sa.JSON(), nullable=False),
    sa.Column('matches', sa.Boolean(), nullable=False),
    sa.Column('missing', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('packed_by', sa.String(length=200), nullable=False),
    sa.Column('packed_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_pack_checks_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pack_checks'))
    )
    op.create_index(op.f('ix_pack_checks_order_id'), 'pack_checks', ['order_id'], unique=False)
    with op.batch_alter_table('order_holds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('detail', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('order_holds', schema=None) as batch_op:
        batch_op.drop_column('detail')
    op.drop_index(op.f('ix_pack_checks_order_id'), table_name='pack_checks')
    op.drop_table('pack_checks')
    op.drop_index(op.f('ix_shipments_tracking_number'), table_name='shipments')
    op.drop_index(op.f('ix_shipments_status'), table_name='shipments')
    op.drop_index(op.f('ix_shipments_order_id'), table_name='shipments')
    op.drop_table('shipments')
