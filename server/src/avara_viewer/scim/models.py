"""Tables of SCIM: per-clinic tokens (keyed hashes), what SCIM adds to a user, clinic settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class ScimToken(Base):
    __tablename__ = "scim_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)
    description: Mapped[str] = mapped_column(String(200))
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ScimUser(Base):
    """The SCIM identity of a user: userName (unique per clinic ignoring case), externalId and
    the token that provisioned them. Users made elsewhere have no row until SCIM changes them;
    their userName is their email."""

    __tablename__ = "scim_users"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    user_name: Mapped[str] = mapped_column(String(320))
    user_name_lower: Mapped[str] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # As the IdP sent it; null: shown as "givenName familyName".
    display_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # Null for people made by the API or the dashboard that SCIM later took over.
    provisioned_by_token_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("clinic_id", "user_name_lower", name="uq_scim_users_clinic_user_name"),
        Index("ix_scim_users_clinic_external_id", "clinic_id", "external_id"),
    )


class ScimSettings(Base):
    """How a clinic's SCIM people are made: with or without the invitation email, and the
    values of our own fields when the identity provider sends none."""

    __tablename__ = "scim_settings"

    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    activate_without_email: Mapped[bool] = mapped_column(Boolean)
    default_clinic_role: Mapped[str] = mapped_column(String(40))
    default_level: Mapped[str] = mapped_column(String(10))
    default_can_manage_studies: Mapped[bool] = mapped_column(Boolean)
    default_has_dashboard_access: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScimGroup(Base):
    """A group the identity provider pushes; what membership means is the clinic's mapping."""

    __tablename__ = "scim_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    display_name: Mapped[str] = mapped_column(String(300))
    display_name_lower: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("clinic_id", "display_name_lower", name="uq_scim_groups_clinic_name"),
    )


class ScimGroupMember(Base):
    __tablename__ = "scim_group_members"

    group_id: Mapped[str] = mapped_column(ForeignKey("scim_groups.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)

    __table_args__ = (PrimaryKeyConstraint("group_id", "user_id", name="pk_scim_group_members"),)


class ScimGroupMapping(Base):
    """What membership of the clinic's group of this name gives: level admin, a clinicRole."""

    __tablename__ = "scim_group_mappings"

    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    display_name_lower: Mapped[str] = mapped_column(String(300))
    level: Mapped[str | None] = mapped_column(String(10), nullable=True)
    clinic_role: Mapped[str | None] = mapped_column(String(40), nullable=True)

    __table_args__ = (
        PrimaryKeyConstraint("clinic_id", "display_name_lower", name="pk_scim_group_mappings"),
    )
