"""one customer across channels: accounts per channel, matched by email

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:45:00
"""

from __future__ import annotations

import hashlib
import uuid

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_BATCH = 1000


def _email_key(email: str) -> str | None:
    # Frozen here (not imported) so this migration means the same whatever the code becomes.
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest() if email.strip() else None


def upgrade() -> None:
    op.create_table('customer_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_accounts_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_accounts')),
    sa.UniqueConstraint('channel', 'external_id', name=op.f('uq_customer_accounts_channel_external_id'))
    )
    op.create_index(op.f('ix_customer_accounts_customer_id'), 'customer_accounts', ['customer_id'], unique=False)
    # Every existing customer keeps its one account; customers stored before are not merged.
    op.execute('INSERT INTO customer_accounts (channel, external_id, customer_id) '
               'SELECT channel, external_id, id FROM customers')
    with op.batch_alter_table('customer_pii', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_key', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_customer_pii_email_key'), ['email_key'], unique=False)
    bind = op.get_bind()
    keys = [{"id": customer_id, "key": _email_key(email)}
            for customer_id, email in bind.execute(sa.text('SELECT customer_id, email FROM customer_pii WHERE email IS NOT NULL'))]
    for start in range(0, len(keys), _BATCH):
        bind.execute(sa.text('UPDATE customer_pii SET email_key = :key WHERE customer_id = :id'), keys[start:start + _BATCH])
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key', sa.String(length=32), nullable=True))
    ids = [{"id": customer_id, "key": uuid.uuid4().hex} for (customer_id,) in bind.execute(sa.text('SELECT id FROM customers'))]
    for start in range(0, len(ids), _BATCH):
        bind.execute(sa.text('UPDATE customers SET "key" = :key WHERE id = :id'), ids[start:start + _BATCH])
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('key', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_customers_key'), ['key'])
        batch_op.drop_constraint(batch_op.f('uq_customers_channel_external_id'), type_='unique')
        batch_op.drop_column('external_id')
        batch_op.drop_column('channel')


def downgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=200), nullable=True))
    # A customer with accounts on several channels keeps its oldest one.
    op.execute('UPDATE customers SET channel = (SELECT a.channel FROM customer_accounts a WHERE a.customer_id = customers.id ORDER BY a.id LIMIT 1), '
               'external_id = (SELECT a.external_id FROM customer_accounts a WHERE a.customer_id = customers.id ORDER BY a.id LIMIT 1)')
    op.execute("UPDATE customers SET channel = 'unknown', external_id = 'customer:' || id WHERE channel IS NULL")
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.alter_column('channel', existing_type=sa.String(length=40), nullable=False)
        batch_op.alter_column('external_id', existing_type=sa.String(length=200), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_customers_channel_external_id'), ['channel', 'external_id'])
        batch_op.drop_constraint(batch_op.f('uq_customers_key'), type_='unique')
        batch_op.drop_column('key')
    with op.batch_alter_table('customer_pii', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_pii_email_key'))
        batch_op.drop_column('email_key')
    op.drop_index(op.f('ix_customer_accounts_customer_id'), table_name='customer_accounts')
    op.drop_table('customer_accounts')
