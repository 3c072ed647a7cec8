"""Secrets the server must use later (OIDC client secrets, webhook signing keys), encrypted at
rest so that a copy of the database alone cannot use them.

AES-256-GCM under a key derived (HKDF-SHA-256) from the server secret. `context` names the
row the secret belongs to (e.g. "webhook-endpoint:whep_…") and is authenticated with it, so a
ciphertext copied into another row does not open. Stored form: "v1." + base64url(nonce +
ciphertext).
"""

from __future__ import annotations

import base64
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1."
_NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """The stored secret does not open with this server secret (changed key or tampering)."""


@functools.lru_cache(maxsize=8)
def _aead(server_secret: bytes) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"avara-viewer secretbox v1"
    ).derive(server_secret)
    return AESGCM(key)


def seal(server_secret: bytes, context: str, plaintext: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(server_secret).encrypt(nonce, plaintext.encode(), context.encode())
    return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()


def open_sealed(server_secret: bytes, context: str, stored: str) -> str:
    if not stored.startswith(_VERSION):
        raise SecretUnreadable("unknown format")
    try:
        raw = base64.urlsafe_b64decode(stored[len(_VERSION) :])
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return _aead(server_secret).decrypt(nonce, sealed, context.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise SecretUnreadable("does not open with this server secret") from exc
