"""``client.viewer.users``: invite, list, retrieve, update, revoke and reactivate Viewer users."""

from __future__ import annotations

from functools import cached_property
from typing import Optional

from typing_extensions import Unpack

from ..._resource import AsyncAPIResource, SyncAPIResource
from ..._response import async_to_raw_response_wrapper, to_raw_response_wrapper
from ..._types import NOT_GIVEN, NotGiven, RequestOptions
from ..._utils import path_param, strip_not_given
from ...pagination import AsyncUsersPage, SyncUsersPage
from ...types.viewer import (
    AssignableLevel,
    ClinicRole,
    InvitedSource,
    SuccessResponse,
    User,
    UserInviteResponse,
    UserLevel,
    UserStatus,
)
from .invitations import (
    AsyncInvitations,
    AsyncInvitationsWithRawResponse,
    Invitations,
    InvitationsWithRawResponse,
)

__all__ = ["AsyncUsers", "AsyncUsersWithRawResponse", "Users", "UsersWithRawResponse"]

_USERS = "/v1/viewer/users"


class Users(SyncAPIResource):
    @cached_property
    def invitations(self) -> Invitations:
        return Invitations(self._client)

    @cached_property
    def with_raw_response(self) -> UsersWithRawResponse:
        """The same methods, returning the raw HTTP response (``.parse()`` gives the object)."""
        return UsersWithRawResponse(self)

    def invite(
        self,
        *,
        can_manage_studies: bool,
        clinic_role: ClinicRole,
        email: str,
        first_name: str,
        has_dashboard_access: bool,
        last_name: str,
        level: AssignableLevel,
        middle_name: Optional[str] | NotGiven = NOT_GIVEN,
        phone_number: Optional[str] | NotGiven = NOT_GIVEN,
        suffix1: Optional[str] | NotGiven = NOT_GIVEN,
        suffix2: Optional[str] | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> UserInviteResponse:
        """Create and invite a new user.

        Creates a new user in the Viewer system and sends them an invitation email. The user
        will have the specified permissions and access level. Dashboard access can be enabled
        to allow login.

        Args:
          can_manage_studies: Whether the user may create, update, and manage studies.
          clinic_role: User's clinical or organizational role.
          email: User's email address for login and notifications; unique within the clinic
            (ignoring case), so inviting it again raises ``ConflictError``.
          first_name: User's first name (at least 1 character).
          has_dashboard_access: Whether the user can log in to the dashboard; must be true
            for admins.
          last_name: User's last name (at least 1 character).
          level: ``"admin"`` can manage users/settings, ``"member"`` has standard access.
          middle_name: User's middle name (optional, at least 1 character).
          phone_number: User's phone number (10-15 digits, optional).
          suffix1: Name suffix (e.g., 'Jr.', 'Sr.', 'III') - optional.
          suffix2: Additional name suffix (optional).
          **options: ``extra_headers``, ``extra_query``, ``timeout``, ``idempotency_key``.
        """
        body = strip_not_given(
            {
                "canManageStudies": can_manage_studies,
                "clinicRole": clinic_role,
                "email": email,
                "firstName": first_name,
                "hasDashboardAccess": has_dashboard_access,
                "lastName": last_name,
                "level": level,
                "middleName": middle_name,
                "phoneNumber": phone_number,
                "suffix1": suffix1,
                "suffix2": suffix2,
            }
        )
        return self._client.request(
            "POST", _USERS, body=body, cast_to=UserInviteResponse, options=options
        )

    def list(
        self,
        *,
        cursor: str | NotGiven = NOT_GIVEN,
        limit: int | NotGiven = NOT_GIVEN,
        email: str | NotGiven = NOT_GIVEN,
        first_name: str | NotGiven = NOT_GIVEN,
        last_name: str | NotGiven = NOT_GIVEN,
        level: UserLevel | NotGiven = NOT_GIVEN,
        invited_source: InvitedSource | NotGiven = NOT_GIVEN,
        status: UserStatus | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> SyncUsersPage:
        """List the clinic's users, newest first.

        Iterating the returned page yields every matching user across all pages, fetching
        the next page only when needed.

        Args:
          cursor: Where to start: the ``cursor`` of a previous page.
          limit: Users per page, 1-100 (default 20).
          email: Exact email address, ignoring case.
          first_name: Part of the first name, ignoring case.
          last_name: Part of the last name, ignoring case.
          level: ``"owner"``, ``"admin"`` or ``"member"``.
          invited_source: ``"dashboard"`` or ``"api"``.
          status: ``"invited"``, ``"active"`` or ``"revoked"``.
          **options: ``extra_headers``, ``extra_query``, ``timeout``.
        """
        query = {
            "cursor": cursor,
            "limit": limit,
            "email": email,
            "firstName": first_name,
            "lastName": last_name,
            "level": level,
            "invitedSource": invited_source,
            "status": status,
        }
        return self._client.get_page(SyncUsersPage, _USERS, query=query, options=options)

    def retrieve(self, user_id: str, **options: Unpack[RequestOptions]) -> User:
        """Get one user of the clinic by id (``usr_...``); ``NotFoundError`` if there is none."""
        path = f"{_USERS}/{path_param('user_id', user_id)}"
        return self._client.request("GET", path, cast_to=User, options=options)

    def update(
        self,
        user_id: str,
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
    ) -> User:
        """Change some of a user's fields; the email address never changes.

        Only the arguments you pass are sent. Passing ``None`` for ``middle_name``,
        ``suffix1``, ``suffix2`` or ``phone_number`` clears that field. Owners cannot be
        changed through the API (``PermissionDeniedError``).

        Args:
          user_id: The user's id (``usr_...``).
          first_name: User's first name (at least 1 character).
          middle_name: User's middle name; ``None`` clears it.
          last_name: User's last name (at least 1 character).
          suffix1: Name suffix (e.g., 'Jr.', 'Sr.', 'III'); ``None`` clears it.
          suffix2: Additional name suffix; ``None`` clears it.
          phone_number: 10-15 digits; ``None`` clears it.
          clinic_role: User's clinical or organizational role.
          level: ``"admin"`` or ``"member"``; admins must have dashboard access.
          can_manage_studies: Whether the user may create, update, and manage studies.
          has_dashboard_access: Whether the user can log in to the dashboard.
          **options: ``extra_headers``, ``extra_query``, ``timeout``, ``idempotency_key``.
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
        path = f"{_USERS}/{path_param('user_id', user_id)}"
        return self._client.request("PATCH", path, body=body, cast_to=User, options=options)

    def revoke_access(self, *, user_id: str, **options: Unpack[RequestOptions]) -> SuccessResponse:
        """Revoke a user's access.

        The user can no longer log in, their sessions end, and a pending invitation is
        revoked. Owners cannot be revoked (``PermissionDeniedError``); ``reactivate`` undoes it.
        """
        body = {"userId": user_id}
        return self._client.request(
            "POST", f"{_USERS}/revoke-access", body=body, cast_to=SuccessResponse, options=options
        )

    def reactivate(self, *, user_id: str, **options: Unpack[RequestOptions]) -> SuccessResponse:
        """Give a revoked user their access back."""
        body = {"userId": user_id}
        return self._client.request(
            "POST", f"{_USERS}/reactivate", body=body, cast_to=SuccessResponse, options=options
        )


class AsyncUsers(AsyncAPIResource):
    @cached_property
    def invitations(self) -> AsyncInvitations:
        return AsyncInvitations(self._client)

    @cached_property
    def with_raw_response(self) -> AsyncUsersWithRawResponse:
        """The same methods, returning the raw HTTP response (``.parse()`` gives the object)."""
        return AsyncUsersWithRawResponse(self)

    async def invite(
        self,
        *,
        can_manage_studies: bool,
        clinic_role: ClinicRole,
        email: str,
        first_name: str,
        has_dashboard_access: bool,
        last_name: str,
        level: AssignableLevel,
        middle_name: Optional[str] | NotGiven = NOT_GIVEN,
        phone_number: Optional[str] | NotGiven = NOT_GIVEN,
        suffix1: Optional[str] | NotGiven = NOT_GIVEN,
        suffix2: Optional[str] | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> UserInviteResponse:
        """Create and invite a new user.

        Creates a new user in the Viewer system and sends them an invitation email. The user
        will have the specified permissions and access level. Dashboard access can be enabled
        to allow login. Arguments as for ``Users.invite``.
        """
        body = strip_not_given(
            {
                "canManageStudies": can_manage_studies,
                "clinicRole": clinic_role,
                "email": email,
                "firstName": first_name,
                "hasDashboardAccess": has_dashboard_access,
                "lastName": last_name,
                "level": level,
                "middleName": middle_name,
                "phoneNumber": phone_number,
                "suffix1": suffix1,
                "suffix2": suffix2,
            }
        )
        return await self._client.request(
            "POST", _USERS, body=body, cast_to=UserInviteResponse, options=options
        )

    async def list(
        self,
        *,
        cursor: str | NotGiven = NOT_GIVEN,
        limit: int | NotGiven = NOT_GIVEN,
        email: str | NotGiven = NOT_GIVEN,
        first_name: str | NotGiven = NOT_GIVEN,
        last_name: str | NotGiven = NOT_GIVEN,
        level: UserLevel | NotGiven = NOT_GIVEN,
        invited_source: InvitedSource | NotGiven = NOT_GIVEN,
        status: UserStatus | NotGiven = NOT_GIVEN,
        **options: Unpack[RequestOptions],
    ) -> AsyncUsersPage:
        """List the clinic's users, newest first.

        ``async for`` over the returned page yields every matching user across all pages.
        Arguments as for ``Users.list``.
        """
        query = {
            "cursor": cursor,
            "limit": limit,
            "email": email,
            "firstName": first_name,
            "lastName": last_name,
            "level": level,
            "invitedSource": invited_source,
            "status": status,
        }
        return await self._client.get_page(AsyncUsersPage, _USERS, query=query, options=options)

    async def retrieve(self, user_id: str, **options: Unpack[RequestOptions]) -> User:
        """Get one user of the clinic by id (``usr_...``); ``NotFoundError`` if there is none."""
        path = f"{_USERS}/{path_param('user_id', user_id)}"
        return await self._client.request("GET", path, cast_to=User, options=options)

    async def update(
        self,
        user_id: str,
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
    ) -> User:
        """Change some of a user's fields; the email address never changes.

        Only the arguments you pass are sent; ``None`` clears an optional field. Arguments as
        for ``Users.update``.
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
        path = f"{_USERS}/{path_param('user_id', user_id)}"
        return await self._client.request("PATCH", path, body=body, cast_to=User, options=options)

    async def revoke_access(
        self, *, user_id: str, **options: Unpack[RequestOptions]
    ) -> SuccessResponse:
        """Revoke a user's access.

        The user can no longer log in, their sessions end, and a pending invitation is
        revoked. Owners cannot be revoked (``PermissionDeniedError``); ``reactivate`` undoes it.
        """
        body = {"userId": user_id}
        return await self._client.request(
            "POST", f"{_USERS}/revoke-access", body=body, cast_to=SuccessResponse, options=options
        )

    async def reactivate(
        self, *, user_id: str, **options: Unpack[RequestOptions]
    ) -> SuccessResponse:
        """Give a revoked user their access back."""
        body = {"userId": user_id}
        return await self._client.request(
            "POST", f"{_USERS}/reactivate", body=body, cast_to=SuccessResponse, options=options
        )


class UsersWithRawResponse:
    def __init__(self, users: Users) -> None:
        self._users = users
        self.invite = to_raw_response_wrapper(users.invite)
        self.list = to_raw_response_wrapper(users.list)
        self.retrieve = to_raw_response_wrapper(users.retrieve)
        self.update = to_raw_response_wrapper(users.update)
        self.revoke_access = to_raw_response_wrapper(users.revoke_access)
        self.reactivate = to_raw_response_wrapper(users.reactivate)

    @cached_property
    def invitations(self) -> InvitationsWithRawResponse:
        return InvitationsWithRawResponse(self._users.invitations)


class AsyncUsersWithRawResponse:
    def __init__(self, users: AsyncUsers) -> None:
        self._users = users
        self.invite = async_to_raw_response_wrapper(users.invite)
        self.list = async_to_raw_response_wrapper(users.list)
        self.retrieve = async_to_raw_response_wrapper(users.retrieve)
        self.update = async_to_raw_response_wrapper(users.update)
        self.revoke_access = async_to_raw_response_wrapper(users.revoke_access)
        self.reactivate = async_to_raw_response_wrapper(users.reactivate)

    @cached_property
    def invitations(self) -> AsyncInvitationsWithRawResponse:
        return AsyncInvitationsWithRawResponse(self._users.invitations)
