"""Table: invitations. The link token is never stored: only its hash and the nonce it was
derived from with the server secret (see ids.derive_token).

Owned by invitations: only invitations' service writes this table (flows.py asks it to),
except delivery_status, which the delivery of the invitation email records.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    inviter_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    invited_by_api_key_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    invited_source: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    token_nonce: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expiry: Mapped[datetime] = mapped_column(UTCDateTime())
    # queued -> sent | failed: whether the mail server has taken the latest email.
    delivery_status: Mapped[str] = mapped_column(String(10), default="queued")
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # When the current link was issued (creation or the latest resend): the resend cooldown.
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_invitations_clinic_created", "clinic_id", "created_at", "id"),)
