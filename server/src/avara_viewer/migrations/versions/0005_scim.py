"""scim: SCIM tokens, the SCIM identity of users (userName, externalId), clinic SCIM settings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("clinic_id", sa.String(length=36), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("lookup", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_scim_tokens_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("lookup", name=op.f("uq_scim_tokens_lookup")),
    )
    op.create_index(op.f("ix_scim_tokens_clinic_id"), "scim_tokens", ["clinic_id"], unique=False)
    op.create_table(
        "scim_users",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("clinic_id", sa.String(length=36), nullable=False),
        sa.Column("user_name", sa.String(length=320), nullable=False),
        sa.Column("user_name_lower", sa.String(length=320), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("display_name", sa.String(length=300), nullable=True),
        sa.Column("provisioned_by_token_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_scim_users_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_scim_users_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_scim_users")),
        sa.UniqueConstraint("clinic_id", "user_name_lower", name="uq_scim_users_clinic_user_name"),
    )
    op.create_index("ix_scim_users_clinic_external_id", "scim_users", ["clinic_id", "external_id"])
    op.create_table(
        "scim_settings",
        sa.Column("clinic_id", sa.String(length=36), nullable=False),
        sa.Column("activate_without_email", sa.Boolean(), nullable=False),
        sa.Column("default_clinic_role", sa.String(length=40), nullable=False),
        sa.Column("default_level", sa.String(length=10), nullable=False),
        sa.Column("default_can_manage_studies", sa.Boolean(), nullable=False),
        sa.Column("default_has_dashboard_access", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_scim_settings_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_scim_settings")),
    )


    op.create_table(
        "scim_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("clinic_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("display_name_lower", sa.String(length=300), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_scim_groups_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_groups")),
        sa.UniqueConstraint("clinic_id", "display_name_lower", name="uq_scim_groups_clinic_name"),
    )
    op.create_table(
        "scim_group_members",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["scim_groups.id"], name=op.f("fk_scim_group_members_group_id_scim_groups")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_scim_group_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name="pk_scim_group_members"),
    )
    op.create_index(
        op.f("ix_scim_group_members_user_id"), "scim_group_members", ["user_id"], unique=False
    )
    op.create_table(
        "scim_group_mappings",
        sa.Column("clinic_id", sa.String(length=36), nullable=False),
        sa.Column("display_name_lower", sa.String(length=300), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=True),
        sa.Column("clinic_role", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_scim_group_mappings_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("clinic_id", "display_name_lower", name="pk_scim_group_mappings"),
    )


def downgrade() -> None:
    op.drop_table("scim_group_mappings")
    op.drop_index(op.f("ix_scim_group_members_user_id"), table_name="scim_group_members")
    op.drop_table("scim_group_members")
    op.drop_table("scim_groups")
    op.drop_table("scim_settings")
    op.drop_index("ix_scim_users_clinic_external_id", table_name="scim_users")
    op.drop_table("scim_users")
    op.drop_index(op.f("ix_scim_tokens_clinic_id"), table_name="scim_tokens")
    op.drop_table("scim_tokens")
