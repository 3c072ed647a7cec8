"""``client.viewer.users.invitations``: list, inspect, edit, revoke and resend invitations."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Optional, Sequence

from typing_extensions import Unpack

from ..._resource import AsyncAPIResource, SyncAPIResource
from ..._response import async_to_raw_response_wrapper, to_raw_response_wrapper
from ..._types import NOT_GIVEN, NotGiven, RequestOptions
from ..._utils import path_param, strip_not_given
from ...pagination import AsyncInvitationsPage, SyncInvitationsPage
from ...types.viewer import (
    AssignableLevel,
    ClinicRole,
    Invitation,
    InvitationExpiredFilter,
    InvitationStatus,
    SuccessResponse,
)

__all__ = [
    "AsyncInvitations",
    "AsyncInvitationsWithRawResponse",
    "Invitations",
    "InvitationsWithRawResponse",
]

_INVITATIONS = "/v1/viewer/users/invitations"


def _revoke_body(invitation_id: str | NotGiven, user_id: str | NotGiven) -> dict[str, object]:
    # Checked here, before any request: the server would answer 422, but the mistake is ours.
    if isinstance(invitation_id, NotGiven) == isinstance(user_id, NotGiven):
        raise TypeError("revoke() takes exactly one of invitation_id or user_id")
    return strip_not_given({"invitationId": invitation_id, "userId": user_id})


class Invitations(SyncAPIResource):
    @cached_property
    def with_raw_response(self) -> InvitationsWithRawResponse:
        """The same methods, returning the raw HTTP response (``.parse()`` gives the object)."""
        return InvitationsWithRawResponse(self)

    def list(
        self,
        *,
        cursor: str | NotGiven = NOT_GIVEN,
        limit: int | NotGiven = NOT_GIVEN,
        status: InvitationStatus | Sequence[InvitationStatus] | NotGiven = NOT_GIVEN,
        expired: InvitationExpiredFilter | NotGiven = NOT_GIVEN,
        start_date: dt.date | str | NotGiven = NOT_GIVEN,
        end_date: dt.date | str | NotGiven = NOT_GIVEN,
        user_id: str | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> SyncInvitationsPage:
        """List the clinic's invitations, newest first.

        Iterating the returned page yields every matching invitation across all pages,
        fetching the next page only when needed.

        Args:
          cursor: Where to start: the ``cursor`` of a previous page.
          limit: Invitations per page, 1-100 (default 20).
          status: One status or several (``["sent", "revoked"]``), sent comma-separated.
          expired: ``"all"`` (default), ``"expired"`` or ``"not-expired"``.
          start_date: Created on or after this day (a ``date`` or ``"YYYY-MM-DD"``).
          end_date: Created on or before this day (a ``date`` or ``"YYYY-MM-DD"``).
          user_id: Only the invitations of this user (``usr_...``).
          **options: ``extra_headers``, ``extra_query``, ``timeout``.
        """
        query = {
            "cursor": cursor,
            "limit": limit,
            "status": status,
            "expired": expired,
            "startDate": start_date,
            "endDate": end_date,
            "userId": user_id,
        }
        return self._client.get_page(
            SyncInvitationsPage, _INVITATIONS, query=query, options=options
        )

    def retrieve(self, invitation_id: str, **options: Unpack[RequestOptions]) -> Invitation:
        """Get one invitation of the clinic by id (``inv_...``)."""
        path = f"{_INVITATIONS}/{path_param('invitation_id', invitation_id)}"
        return self._client.request("GET", path, cast_to=Invitation, options=options)

    def update(
        self,
        invitation_id: str,
        *,
        first_name: str | NotGiven = NOT_GIVEN,
        middle_name: Optional[str] | NotGiven = NOT_GIVEN,
        last_name: str | NotGiven = NOT_GIVEN,
        suffix1: Optional[str] | NotGiven = NOT_GIVEN,
        suffix2: Optional[str] | NotGiven = NOT_GIVEN,
        phone_number: Optional[str] | NotGiven = NOT_GIVEN,
        clinic_role: ClinicRole | NotGiven = NOT_GIVEN,
        level: AssignableLevel | NotGiven = NOT_GIVEN,
        can_manage_studies: bool | NotGiven = NOT_GIVEN,
        has_dashboard_access: bool | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> Invitation:
        """Edit a ``sent`` invitation and its pending user (``ConflictError`` otherwise).

        Only the arguments you pass are sent; ``None`` clears ``middle_name``, ``suffix1``,
        ``suffix2`` or ``phone_number``. The fields follow the rules of ``users.invite``.
        """
        body = strip_not_given(
            {
                "firstName": first_name,
                "middleName": middle_name,
                "lastName": last_name,
                "suffix1": suffix1,
                "suffix2": suffix2,
                "phoneNumber": phone_number,
                "clinicRole": clinic_role,
                "level": level,
                "canManageStudies": can_manage_studies,
                "hasDashboardAccess": has_dashboard_access,
            }
        )
        path = f"{_INVITATIONS}/{path_param('invitation_id', invitation_id)}"
        return self._client.request("PATCH", path, body=body, cast_to=Invitation, options=options)

    def revoke(
        self,
        *,
        invitation_id: str | NotGiven = NOT_GIVEN,
        user_id: str | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> SuccessResponse:
        """Revoke an invitation, named by exactly one of ``invitation_id`` or ``user_id``.

        The invitation link stops working at once. Passing both or neither raises
        ``TypeError`` without sending anything.
        """
        body = _revoke_body(invitation_id, user_id)
        return self._client.request(
            "POST", f"{_INVITATIONS}/revoke", body=body, cast_to=SuccessResponse, options=options
        )

    def resend(self, invitation_id: str, **options: Unpack[RequestOptions]) -> Invitation:
        """Send the invitation again with a new link and expiry; the old link stops working."""
        path = f"{_INVITATIONS}/{path_param('invitation_id', invitation_id)}/resend"
        return self._client.request("POST", path, cast_to=Invitation, options=options)


class AsyncInvitations(AsyncAPIResource):
    @cached_property
    def with_raw_response(self) -> AsyncInvitationsWithRawResponse:
        """The same methods, returning the raw HTTP response (``.parse()`` gives the object)."""
        return AsyncInvitationsWithRawResponse(self)

    async def list(
        self,
        *,
        cursor: str | NotGiven = NOT_GIVEN,
        limit: int | NotGiven = NOT_GIVEN,
        status: InvitationStatus | Sequence[InvitationStatus] | NotGiven = NOT_GIVEN,
        expired: InvitationExpiredFilter | NotGiven = NOT_GIVEN,
        start_date: dt.date | str | NotGiven = NOT_GIVEN,
        end_date: dt.date | str | NotGiven = NOT_GIVEN,
        user_id: str | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> AsyncInvitationsPage:
        """List the clinic's invitations, newest first.

        ``async for`` over the returned page yields every matching invitation across all
        pages. Arguments as for ``Invitations.list``.
        """
        query = {
            "cursor": cursor,
            "limit": limit,
            "status": status,
            "expired": expired,
            "startDate": start_date,
            "endDate": end_date,
            "userId": user_id,
        }
        return await self._client.get_page(
            AsyncInvitationsPage, _INVITATIONS, query=query, options=options
        )

    async def retrieve(self, invitation_id: str, **options: Unpack[RequestOptions]) -> Invitation:
        """Get one invitation of the clinic by id (``inv_...``)."""
        path = f"{_INVITATIONS}/{path_param('invitation_id', invitation_id)}"
        return await self._client.request("GET", path, cast_to=Invitation, options=options)

    async def update(
        self,
        invitation_id: str,
        *,
        first_name: str | NotGiven = NOT_GIVEN,
        middle_name: Optional[str] | NotGiven = NOT_GIVEN,
        last_name: str | NotGiven = NOT_GIVEN,
        suffix1: Optional[str] | NotGiven = NOT_GIVEN,
        suffix2: Optional[str] | NotGiven = NOT_GIVEN,
        phone_number: Optional[str] | NotGiven = NOT_GIVEN,
        clinic_role: ClinicRole | NotGiven = NOT_GIVEN,
        level: AssignableLevel | NotGiven = NOT_GIVEN,
        can_manage_studies: bool | NotGiven = NOT_GIVEN,
        has_dashboard_access: bool | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> Invitation:
        """Edit a ``sent`` invitation and its pending user (``ConflictError`` otherwise).

        Only the arguments you pass are sent; ``None`` clears an optional field. Arguments as
        for ``Invitations.update``.
        """
        body = strip_not_given(
            {
                "firstName": first_name,
                "middleName": middle_name,
                "lastName": last_name,
                "suffix1": suffix1,
                "suffix2": suffix2,
                "phoneNumber": phone_number,
                "clinicRole": clinic_role,
                "level": level,
                "canManageStudies": can_manage_studies,
                "hasDashboardAccess": has_dashboard_access,
            }
        )
        path = f"{_INVITATIONS}/{path_param('invitation_id', invitation_id)}"
        return await self._client.request(
            "PATCH", path, body=body, cast_to=Invitation, options=options
        )

    async def revoke(
        self,
        *,
        invitation_id: str | NotGiven = NOT_GIVEN,
        user_id: str | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> SuccessResponse:
        """Revoke an invitation, named by exactly one of ``invitation_id`` or ``user_id``.

        The invitation link stops working at once. Passing both or neither raises
        ``TypeError`` without sending anything.
        """
        body = _revoke_body(invitation_id, user_id)
        return await self._client.request(
            "POST", f"{_INVITATIONS}/revoke", body=body, cast_to=SuccessResponse, options=options
        )

    async def resend(self, invitation_id: str, **options: Unpack[RequestOptions]) -> Invitation:
        """Send the invitation again with a new link and expiry; the old link stops working."""
        path = f"{_INVITATIONS}/{path_param('invitation_id', invitation_id)}/resend"
        return await self._client.request("POST", path, cast_to=Invitation, options=options)


class InvitationsWithRawResponse:
    def __init__(self, invitations: Invitations) -> None:
        self.list = to_raw_response_wrapper(invitations.list)
        self.retrieve = to_raw_response_wrapper(invitations.retrieve)
        self.update = to_raw_response_wrapper(invitations.update)
        self.revoke = to_raw_response_wrapper(invitations.revoke)
        self.resend = to_raw_response_wrapper(invitations.resend)


class AsyncInvitationsWithRawResponse:
    def __init__(self, invitations: AsyncInvitations) -> None:
        self.list = async_to_raw_response_wrapper(invitations.list)
        self.retrieve = async_to_raw_response_wrapper(invitations.retrieve)
        self.update = async_to_raw_response_wrapper(invitations.update)
        self.revoke = async_to_raw_response_wrapper(invitations.revoke)
        self.resend = async_to_raw_response_wrapper(invitations.resend)
