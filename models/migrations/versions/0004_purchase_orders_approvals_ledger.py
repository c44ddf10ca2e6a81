"""purchase orders, approvals, restock figures, channel stock, and the stock ledger's movement kinds, actor and flow run

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Frozen here: the kinds the ledger used before `domain.stock.Movement` named them.
_RENAMED = {'reserve': 'reservation', 'receive': 'receipt', 'ship': 'shipment', 'set': 'adjustment', 'adjust': 'adjustment'}


def upgrade() -> None:
    op.create_table('purchase_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=100), nullable=False),
    sa.Column('supplier', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('review_day', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('sent_at', models.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase_orders')),
    sa.UniqueConstraint('number', name=op.f('uq_purchase_orders_number'))
    )
    op.create_index(op.f('ix_purchase_orders_status'), 'purchase_orders', ['status'], unique=False)
    op.create_index(op.f('ix_purchase_orders_supplier'), 'purchase_orders', ['supplier'], unique=False)
    op.create_table('purchase_order_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purchase_order_id', sa.Integer(), nullable=False),
    sa.Column('sku', sa.String(length=200), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('unit_cost', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('received', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['purchase_order_id'], ['purchase_orders.id'], name=op.f('fk_purchase_order_lines_purchase_order_id_purchase_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase_order_lines')),
    sa.UniqueConstraint('purchase_order_id', 'sku', name=op.f('uq_purchase_order_lines_purchase_order_id_sku'))
    )
    op.create_index(op.f('ix_purchase_order_lines_purchase_order_id'), 'purchase_order_lines', ['purchase_order_id'], unique=False)
    op.create_index(op.f('ix_purchase_order_lines_sku'), 'purchase_order_lines', ['sku'], unique=False)
    op.create_table('approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('since', models.base.UTCDateTime(), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('flow_run_id', sa.String(length=64), nullable=True),
    sa.Column('pause_run_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals')),
    sa.UniqueConstraint('kind', 'subject', name=op.f('uq_approvals_kind_subject'))
    )
    op.create_index(op.f('ix_approvals_status'), 'approvals', ['status'], unique=False)
    op.create_table('restock_figures',
    sa.Column('sku', sa.String(length=200), nullable=False),
    sa.Column('reorder_point', sa.Integer(), nullable=False),
    sa.Column('order_up_to', sa.Integer(), nullable=False),
    sa.Column('mean_daily_demand', sa.Float(), nullable=False),
    sa.Column('days_of_cover', sa.Float(), nullable=True),
    sa.Column('checked_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sku', name=op.f('pk_restock_figures'))
    )
    op.create_table('channel_stock',
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('sku', sa.String(length=200), nullable=False),
    sa.Column('pushed_available', sa.Integer(), nullable=False),
    sa.Column('pushed_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('conflict_seen', sa.Integer(), nullable=True),
    sa.Column('conflict_at', models.base.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('channel', 'sku', name=op.f('pk_channel_stock'))
    )
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purchase_order_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('actor', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('flow_run_id', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_stock_movements_purchase_order_id'), ['purchase_order_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_stock_movements_purchase_order_id_purchase_orders'), 'purchase_orders', ['purchase_order_id'], ['id'])
    for old, new in _RENAMED.items():
        op.execute(sa.text('UPDATE stock_movements SET kind = :new WHERE kind = :old').bindparams(old=old, new=new))


def downgrade() -> None:
    for old, new in _RENAMED.items():
        if old != 'adjust':
            op.execute(sa.text('UPDATE stock_movements SET kind = :old WHERE kind = :new').bindparams(old=old, new=new))
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_stock_movements_purchase_order_id_purchase_orders'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_stock_movements_purchase_order_id'))
        batch_op.drop_column('flow_run_id')
        batch_op.drop_column('actor')
        batch_op.drop_column('purchase_order_id')
    op.drop_table('channel_stock')
    op.drop_table('restock_figures')
    op.drop_index(op.f('ix_approvals_status'), table_name='approvals')
    op.drop_table('approvals')
    op.drop_index(op.f('ix_purchase_order_lines_sku'), table_name='purchase_order_lines')
    op.drop_index(op.f('ix_purchase_order_lines_purchase_order_id'), table_name='purchase_order_lines')
    op.drop_table('purchase_order_lines')
    op.drop_index(op.f('ix_purchase_orders_supplier'), table_name='purchase_orders')
    op.drop_index(op.f('ix_purchase_orders_status'), table_name='purchase_orders')
    op.drop_table('purchase_orders')
