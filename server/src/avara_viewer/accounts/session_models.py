"""Table of dashboard sessions, written only by the accounts domain. The browser holds a
random token; the server keeps only its keyed hash, so ending a session (logout, revocation,
idle or absolute expiry) takes effect on the next request whatever the browser kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class DashboardSession(Base):
    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Names the session in pages and forms ("end this session"): "ses_" + 32 hex. The token
    # itself never appears anywhere but in the browser's cookie.
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    # "password", "sso"; and what the person still has to do before the session is whole:
    # None, "mfa" (enter a code) or "mfa_enrol" (set MFA up first).
    method: Mapped[str] = mapped_column(String(20))
    pending: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    idle_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_agent: Mapped[str] = mapped_column(String(300))
    ip: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_sessions_user", "user_id"),
        Index("ix_sessions_clinic_seen", "clinic_id", "last_seen_at"),
    )
