"""``client.viewer``: the Viewer user-management resources."""

from __future__ import annotations

from functools import cached_property

from ..._resource import AsyncAPIResource, SyncAPIResource
from .invitations import (
    AsyncInvitations,
    AsyncInvitationsWithRawResponse,
    Invitations,
    InvitationsWithRawResponse,
)
from .users import AsyncUsers, AsyncUsersWithRawResponse, Users, UsersWithRawResponse

__all__ = [
    "AsyncInvitations",
    "AsyncInvitationsWithRawResponse",
    "AsyncUsers",
    "AsyncUsersWithRawResponse",
    "AsyncViewer",
    "AsyncViewerWithRawResponse",
    "Invitations",
    "InvitationsWithRawResponse",
    "Users",
    "UsersWithRawResponse",
    "Viewer",
    "ViewerWithRawResponse",
]


class Viewer(SyncAPIResource):
    @cached_property
    def users(self) -> Users:
        return Users(self._client)

    @cached_property
    def with_raw_response(self) -> ViewerWithRawResponse:
        return ViewerWithRawResponse(self)


class AsyncViewer(AsyncAPIResource):
    @cached_property
    def users(self) -> AsyncUsers:
        return AsyncUsers(self._client)

    @cached_property
    def with_raw_response(self) -> AsyncViewerWithRawResponse:
        return AsyncViewerWithRawResponse(self)


class ViewerWithRawResponse:
    def __init__(self, viewer: Viewer) -> None:
        self._viewer = viewer

    @cached_property
    def users(self) -> UsersWithRawResponse:
        return self._viewer.users.with_raw_response


class AsyncViewerWithRawResponse:
    def __init__(self, viewer: AsyncViewer) -> None:
        self._viewer = viewer

    @cached_property
    def users(self) -> AsyncUsersWithRawResponse:
        return self._viewer.users.with_raw_response
