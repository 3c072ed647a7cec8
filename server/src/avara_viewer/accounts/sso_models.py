"""Tables of single sign-on and a clinic's sign-in rules, written only by the accounts domain:
each clinic's OpenID Connect connection (client secret sealed with secretbox), the email
domains that route to it, the link between a person and their provider's `sub`, sign-ins in
progress (state, nonce, PKCE verifier), and the clinic's MFA policy and idle timeout."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, UTCDateTime


class SsoConnection(Base):
    __tablename__ = "sso_connections"

    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(500))
    # secretbox.seal(server secret, "sso-connection:<clinic id>", secret)
    client_secret_sealed: Mapped[str] = mapped_column(Text)
    # Passwords stop working for the clinic's people (owners keep password + MFA).
    required: Mapped[bool] = mapped_column(Boolean)
    # A verified address the clinic does not know joins with the default role and level.
    join_with_defaults: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SsoDomain(Base):
    """An email domain belongs to one clinic's provider, so the login page knows where to go."""

    __tablename__ = "sso_domains"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), index=True)


class SsoLink(Base):
    """The provider's `sub` for a person, linked on their first sign-in and checked after."""

    __tablename__ = "sso_links"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("clinic_id", "issuer", "subject", name="uq_sso_links_clinic_subject"),
    )


class OidcLogin(Base):
    """A sign-in sent to the provider and not yet back: single use, short-lived."""

    __tablename__ = "oidc_logins"

    # keyed hash of the `state` sent to the provider; the browser holds the state in a cookie.
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"))
    nonce: Mapped[str] = mapped_column(String(100))
    # secretbox.seal(server secret, "oidc-login:<state hash>", PKCE code verifier)
    code_verifier_sealed: Mapped[str] = mapped_column(Text)
    email_hint: Mapped[str] = mapped_column(String(320))
    next_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SignInPolicy(Base):
    """A clinic's sign-in rules; no row means the defaults."""

    __tablename__ = "sign_in_policies"

    clinic_id: Mapped[str] = mapped_column(ForeignKey("clinics.id"), primary_key=True)
    # "admins" (owners and admins need MFA, the default) or "everyone".
    mfa_required_for: Mapped[str] = mapped_column(String(20))
    # Seconds without activity after which a session ends; None: the server's setting.
    idle_timeout_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
