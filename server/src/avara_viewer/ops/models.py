"""Table: request counts per API key per one-minute window, shared by every server process."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base


class RateLimitWindow(Base):
    __tablename__ = "rate_limits"

    key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Unix time (seconds) at which the one-minute window starts.
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
