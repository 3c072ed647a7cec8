"""Races an identity provider can cause: the same person created many times at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from scim.scim_support import ScimClinic, scim_client, user_doc
from support import Server


def test_concurrent_creates_of_one_user_name_make_one_person(
    server: Server, scim: ScimClinic
) -> None:
    login = user_doc()["userName"]

    def create(n: int) -> int:
        # Same userName, a different address each time: only the userName collides.
        doc = user_doc(login=login, emails=[{"value": f"race{n}.{login}", "primary": True}])
        with scim_client(server, scim.token) as client:
            return client.post("/Users", json=doc).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(create, range(8)))
    assert statuses == [201] + [409] * 7
    assert scim.search(f'userName eq "{login}"')["totalResults"] == 1
