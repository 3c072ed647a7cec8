"""Tables of multi-factor authentication, written only by the accounts domain: each person's
TOTP key (sealed with secretbox, with the last accepted time-step so a code works once) and
their recovery codes (keyed hashes, each usable once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class MfaTotp(Base):
    __tablename__ = "mfa_totp"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    # secretbox.seal(server secret, "mfa-totp:<user id>", base32 key)
    secret_sealed: Mapped[str] = mapped_column(Text)
    # None while enrolment waits for the first correct code.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MfaRecoveryCode(Base):
    __tablename__ = "mfa_recovery_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
