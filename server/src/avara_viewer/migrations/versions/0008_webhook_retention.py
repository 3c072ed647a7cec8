"""webhooks: indexes for the retention's oldest-first deletes and erasure's by person

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_created", "webhook_deliveries", ["created_at"], unique=False
    )
    op.create_index(
        "ix_webhook_deliveries_order_key", "webhook_deliveries", ["order_key"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_order_key", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_created", table_name="webhook_deliveries")
