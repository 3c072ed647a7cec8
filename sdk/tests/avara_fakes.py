"""An in-memory fake of the Avara API for the client tests, and sample response bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

BASE_URL = "http://avara.test"
API_KEY = "avk_test_secret"

USER = {
    "userId": "usr_1234567890abcdef1234567890abcdef",
    "email": "dr.johnson@hospital.org",
    "firstName": "Sarah",
    "middleName": None,
    "lastName": "Johnson",
    "suffix1": None,
    "suffix2": None,
    "phoneNumber": None,
    "clinicRole": "Radiologist",
    "level": "member",
    "canManageStudies": True,
    "hasDashboardAccess": True,
    "invitedSource": "api",
    "createdAt": "2024-01-15T10:00:00Z",
    "lastLoginAt": None,
    "status": "invited",
}

INVITATION = {
    "invitationId": "inv_abcdefabcdefabcdefabcdefabcdefab",
    "userId": USER["userId"],
    "clinicId": "6f1c1f8e-3d5e-4d8e-9a55-3f1f0c2b7a10",
    "email": USER["email"],
    "firstName": "Sarah",
    "middleName": None,
    "lastName": "Johnson",
    "suffix1": None,
    "suffix2": None,
    "phoneNumber": None,
    "clinicRole": "Radiologist",
    "level": "member",
    "canManageStudies": True,
    "hasDashboardAccess": True,
    "invitedSource": "api",
    "inviterId": None,
    "invitedByApiKeyId": "1b7d7a57-3a4b-4e42-9f0b-6a8c2b8e6b11",
    "status": "sent",
    "expiry": "2024-01-22T10:00:00Z",
    "createdAt": "2024-01-15T10:00:00Z",
    "updatedAt": "2024-01-15T10:00:00Z",
    "deliveryStatus": "queued",
}


def user(**changes: Any) -> dict[str, Any]:
    return {**USER, **changes}


def invitation(**changes: Any) -> dict[str, Any]:
    return {**INVITATION, **changes}


Reply = httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception


class FakeAPI:
    """Answers each request with the next queued reply (the last one repeats) and records it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._replies: list[Reply] = []
        self._served = 0

    def reply(self, status: int = 200, json: Any = None, **kwargs: Any) -> FakeAPI:
        self._replies.append(httpx.Response(status, json=json, **kwargs))
        return self

    def reply_with(self, reply: Reply) -> FakeAPI:
        self._replies.append(reply)
        return self

    def problem(
        self, status: int, code: str, headers: dict[str, str] | None = None, **fields: Any
    ) -> FakeAPI:
        body = {
            "type": "about:blank",
            "title": code.replace("_", " "),
            "status": status,
            "code": code,
            **fields,
        }
        return self.reply_with(
            httpx.Response(
                status,
                content=json.dumps(body).encode(),
                headers={"content-type": "application/problem+json", **(headers or {})},
            )
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        reply = self._replies[min(self._served, len(self._replies) - 1)]
        self._served += 1
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        content = self.requests[index].content
        return json.loads(content) if content else None
