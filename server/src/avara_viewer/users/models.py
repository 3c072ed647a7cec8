"""Table: viewer users. Email uniqueness is per clinic on the lower-cased address.

Owned by users: only users' service writes this table (flows.py asks it to), except the
sign-in columns password_hash and last_login_at, written through users' service on accounts'
request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    email: Mapped[str] = mapped_column(String(320))
    email_lower: Mapped[str] = mapped_column(String(320))
    first_name: Mapped[str] = mapped_column(String(200))
    middle_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_name: Mapped[str] = mapped_column(String(200))
    suffix1: Mapped[str | None] = mapped_column(String(50), nullable=True)
    suffix2: Mapped[str | None] = mapped_column(String(50), nullable=True)
    phone_number: Mapped[str | None] = mapped_column(String(15), nullable=True)
    clinic_role: Mapped[str] = mapped_column(String(40))
    level: Mapped[str] = mapped_column(String(10))
    can_manage_studies: Mapped[bool] = mapped_column(Boolean)
    has_dashboard_access: Mapped[bool] = mapped_column(Boolean)
    invited_source: Mapped[str] = mapped_column(String(10))
    inviter_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Unused since sessions moved to the server (accounts' sessions table); always 0.
    session_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        UniqueConstraint("clinic_id", "email_lower", name="uq_users_clinic_email"),
        Index("ix_users_clinic_created", "clinic_id", "created_at", "id"),
    )
