"""Identifier and secret formats: user/invitation ids, clinic/key UUIDs, API keys, tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid

USER_ID = re.compile(r"^usr_[0-9a-f]{32}$")
INVITATION_ID = re.compile(r"^inv_[0-9a-f]{32}$")
API_KEY_PREFIX = "avk_"
# The first characters of a key's random part find its row; the keyed hash proves it.
API_KEY_LOOKUP_CHARS = 12


def new_user_id() -> str:
    return "usr_" + secrets.token_hex(16)


def new_invitation_id() -> str:
    return "inv_" + secrets.token_hex(16)


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_lookup(key: str) -> str | None:
    """The indexed look-up part of a key, or None when the key is not of our format."""
    if not key.startswith(API_KEY_PREFIX) or len(key) < len(API_KEY_PREFIX) + 32:
        return None
    return key[len(API_KEY_PREFIX) : len(API_KEY_PREFIX) + API_KEY_LOOKUP_CHARS]


def keyed_hash(secret_key: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA-256 of value under the server secret, separated by purpose."""
    return hmac.new(secret_key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def derive_token(secret_key: bytes, purpose: str, subject_id: str, nonce: str) -> str:
    """A 256-bit link token derived from the server secret; the database keeps only the nonce
    and the token's hash, so neither a database copy nor the outbox reveals a usable link."""
    digest = hmac.new(secret_key, f"{purpose}:{subject_id}:{nonce}".encode(), hashlib.sha256)
    return digest.hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
