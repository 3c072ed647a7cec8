"""lifecycle: when an invitation's current link was issued (for the resend cooldown)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issued_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE invitations SET issued_at = created_at")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.alter_column("issued_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_column("issued_at")
