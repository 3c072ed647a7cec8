"""Signing secrets and the Standard Webhooks signature (`webhook-signature: v1,<base64>`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from .. import secretbox

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (the scheme asks for 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def seal(server_secret: bytes, endpoint_id: str, secret: str) -> str:
    return secretbox.seal(server_secret, endpoint_id, secret)


def unseal(server_secret: bytes, endpoint_id: str, stored: str) -> str:
    return secretbox.open_sealed(server_secret, endpoint_id, stored)


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret's key bytes."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers; one signature per secret, space-separated (rotation)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_),
    }
