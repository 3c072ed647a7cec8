"""Tables of webhooks: endpoints, events, one delivery per (event, endpoint), its attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime
from ..invitations.models import Invitation

_SEQ = BigInteger().with_variant(Integer(), "sqlite")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # JSON list of event types; NULL means every event.
    event_types: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Signing secrets sealed with secretbox (context: the endpoint id). After a rotation the
    # previous secret keeps signing beside the new one until previous_secret_until.
    secret_sealed: Mapped[str] = mapped_column(Text)
    previous_secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Since when every attempt has failed (NULL after a success): disables it after days.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_webhook_endpoints_clinic_created", "clinic_id", "created_at", "id"),
    )


class WebhookEvent(Base):
    """One event, its body serialised once: every delivery and retry sends these bytes."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    type: Mapped[str] = mapped_column(String(60))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    # Insertion order: a user's events go out to an endpoint in this order.
    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    clinic_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(60))
    # The user the event is about (the endpoint id for test events): the ordering key.
    order_key: Mapped[str] = mapped_column(String(40))
    # pending -> succeeded | failed (gave up); a retry makes it pending again.
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts since the delivery was queued or last retried by hand: the schedule's step.
    round_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "endpoint_id", "order_key", "seq"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        # The retention's oldest-first deletes (webhooks.retention), and erasure's by person.
        Index("ix_webhook_deliveries_created", "created_at"),
        Index("ix_webhook_deliveries_order_key", "order_key"),
    )


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    delivery_seq: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.seq"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The start of the receiver's answer (at most RESPONSE_SNIPPET characters).
    response_snippet: Mapped[str | None] = mapped_column(Text, nullable=True)


class WebhookSweep(Base):
    """How far a periodic sweep has got (keyset over (instant, id)): each item seen once."""

    __tablename__ = "webhook_sweeps"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    watermark_at: Mapped[datetime] = mapped_column(UTCDateTime())
    watermark_id: Mapped[str] = mapped_column(String(40))


# The expiry sweeper reads sent invitations by expiry.
Index(
    "ix_invitations_status_expiry",
    Invitation.__table__.c.status,
    Invitation.__table__.c.expiry,
    Invitation.__table__.c.id,
)
