"""The client's string enumerations (sdk/src/avara) are the server's, value for value and in
the same order, so a role or status added on one side and not the other fails here."""

from __future__ import annotations

from typing import get_args

import pytest
from avara.types.viewer import enums as client
from avara_viewer import fields as server
from avara_viewer.invitations.service import EXPIRED_FILTERS


@pytest.mark.parametrize(
    "name",
    [
        "ClinicRole",
        "UserLevel",
        "AssignableLevel",
        "InvitedSource",
        "UserStatus",
        "InvitationStatus",
    ],
)
def test_client_enum_equals_server_enum(name: str) -> None:
    assert get_args(getattr(client, name)) == get_args(getattr(server, name))


def test_client_expired_filter_equals_the_server_list_filter() -> None:
    assert get_args(client.InvitationExpiredFilter) == EXPIRED_FILTERS


def test_every_client_enum_is_compared() -> None:
    assert set(client.__all__) == {
        "ClinicRole",
        "UserLevel",
        "AssignableLevel",
        "InvitedSource",
        "UserStatus",
        "InvitationStatus",
        "InvitationExpiredFilter",
    }
