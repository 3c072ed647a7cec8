"""``client.webhooks``: verify the signature of an event Avara Viewer POSTed, and parse it.

Events are signed with the Standard Webhooks scheme; verification uses the
``standardwebhooks`` package (``pip install 'avara[webhooks]'``)::

    event = client.webhooks.unwrap(request_body, headers=request_headers, key="whsec_...")
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Type, Union

from .._exceptions import AvaraError
from .._resource import AsyncAPIResource, SyncAPIResource
from ..types.webhook_event import (
    InvitationWebhookEvent,
    UnknownWebhookEvent,
    UnwrapWebhookEvent,
    UserWebhookEvent,
    WebhookTestEvent,
)

__all__ = ["AsyncWebhooks", "Webhooks"]

def _parse(payload: Union[str, bytes]) -> UnwrapWebhookEvent:
    raw: Any = json.loads(payload)
    event_type = raw.get("type") if isinstance(raw, dict) else None
    known: Dict[str, Type[UnwrapWebhookEvent]] = {
        "user.": UserWebhookEvent,
        "invitation.": InvitationWebhookEvent,
        "webhook.test": WebhookTestEvent,
    }
    for prefix, model in known.items():
        if isinstance(event_type, str) and event_type.startswith(prefix):
            try:
                return model.model_validate(raw)
            except ValueError:
                # A type this client does not know yet under a known prefix.
                break
    return UnknownWebhookEvent.model_validate(raw)


def _verify(
    payload: Union[str, bytes], headers: Mapping[str, str], key: Optional[Union[str, bytes]]
) -> None:
    try:
        from standardwebhooks import Webhook
    except ImportError as exc:
        raise AvaraError(
            "You need to install `avara[webhooks]` (the standardwebhooks package) to use "
            "this method"
        ) from exc
    if key is None:
        raise ValueError(
            "Cannot verify a webhook without a key on either the client's webhook_key or "
            "passed in as an argument"
        )
    Webhook(key).verify(payload, dict(headers.items()))


class Webhooks(SyncAPIResource):
    def unwrap(
        self,
        payload: Union[str, bytes],
        *,
        headers: Mapping[str, str],
        key: Optional[Union[str, bytes]] = None,
    ) -> UnwrapWebhookEvent:
        """Verify the event's signature and timestamp (within 5 minutes) and parse it.

        ``payload`` is the request body exactly as received; ``headers`` its headers;
        ``key`` the endpoint's signing secret (default: the client's ``webhook_key``).
        Raises ``standardwebhooks.WebhookVerificationError`` when the event is not authentic.
        """
        _verify(payload, headers, key if key is not None else self._client.webhook_key)
        return _parse(payload)

    def unsafe_unwrap(self, payload: Union[str, bytes]) -> UnwrapWebhookEvent:
        """Parse an event WITHOUT verifying its signature: only for payloads you have already
        verified, or in tests."""
        return _parse(payload)


class AsyncWebhooks(AsyncAPIResource):
    def unwrap(
        self,
        payload: Union[str, bytes],
        *,
        headers: Mapping[str, str],
        key: Optional[Union[str, bytes]] = None,
    ) -> UnwrapWebhookEvent:
        """See ``Webhooks.unwrap``; no I/O, so not a coroutine."""
        _verify(payload, headers, key if key is not None else self._client.webhook_key)
        return _parse(payload)

    def unsafe_unwrap(self, payload: Union[str, bytes]) -> UnwrapWebhookEvent:
        """See ``Webhooks.unsafe_unwrap``."""
        return _parse(payload)
