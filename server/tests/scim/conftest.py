"""Fixtures of the SCIM tests: a clinic with a SCIM token and a client that speaks SCIM."""

from __future__ import annotations

import pytest
from scim.scim_support import ScimClinic, scim_clinic
from support import Server


@pytest.fixture(scope="module")
def scim(server: Server) -> ScimClinic:
    """A clinic with an API key and a SCIM token, shared by a module's tests."""
    return scim_clinic(server, "SCIM Clinic")
