"""Pages: items of one page, lazy walking of every page with the same filters."""

from __future__ import annotations

import httpx
import pytest
from avara_fakes import FakeAPI, invitation, user

from avara import AsyncAvara, Avara
from avara.pagination import AsyncUsersPage, SyncInvitationsPage, SyncUsersPage


def users_pages(api: FakeAPI) -> None:
    """Three pages of users: 2 + 2 + 1, linked by cursors c1 and c2."""

    def reply(request: httpx.Request) -> httpx.Response:
        pages = {
            None: ([user(userId="usr_a"), user(userId="usr_b")], "c1", True),
            "c1": ([user(userId="usr_c"), user(userId="usr_d")], "c2", True),
            "c2": ([user(userId="usr_e")], None, False),
        }
        users, cursor, has_more = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"users": users, "cursor": cursor, "hasMore": has_more})

    api.reply_with(reply)


def test_first_page_only_until_iterated(api: FakeAPI, client: Avara) -> None:
    users_pages(api)
    page = client.viewer.users.list(limit=2, status="invited")
    assert isinstance(page, SyncUsersPage)
    assert [u.user_id for u in page.users] == ["usr_a", "usr_b"]
    assert (page.has_more, page.cursor) == (True, "c1")
    assert len(api.requests) == 1


def test_iterating_walks_every_page_with_the_same_filters(api: FakeAPI, client: Avara) -> None:
    users_pages(api)
    ids = [u.user_id for u in client.viewer.users.list(limit=2, status="invited")]
    assert ids == ["usr_a", "usr_b", "usr_c", "usr_d", "usr_e"]
    assert [dict(r.url.params) for r in api.requests] == [
        {"limit": "2", "status": "invited"},
        {"limit": "2", "status": "invited", "cursor": "c1"},
        {"limit": "2", "status": "invited", "cursor": "c2"},
    ]


def test_iter_pages_and_next_page(api: FakeAPI, client: Avara) -> None:
    users_pages(api)
    page = client.viewer.users.list()
    pages = list(page.iter_pages())
    assert [len(p.users) for p in pages] == [2, 2, 1]
    assert pages[0] is page
    assert not pages[-1].has_next_page()
    with pytest.raises(RuntimeError, match="last page"):
        pages[-1].get_next_page()
    assert page.get_next_page().users[0].user_id == "usr_c"


def test_stopping_early_fetches_no_more(api: FakeAPI, client: Avara) -> None:
    users_pages(api)
    for found in client.viewer.users.list():
        if found.user_id == "usr_b":
            break
    assert len(api.requests) == 1


def test_invitations_pages(api: FakeAPI, client: Avara) -> None:
    api.reply(
        json={"invitations": [invitation(invitationId="inv_1")], "cursor": "n", "hasMore": True}
    )
    api.reply(
        json={"invitations": [invitation(invitationId="inv_2")], "cursor": None, "hasMore": False}
    )
    page = client.viewer.users.invitations.list(status=["sent", "revoked"])
    assert isinstance(page, SyncInvitationsPage)
    assert [i.invitation_id for i in page.invitations] == ["inv_1"]
    assert [i.invitation_id for i in page] == ["inv_1", "inv_2"]
    assert api.last.url.params["status"] == "sent,revoked"
    assert api.last.url.params["cursor"] == "n"


async def test_async_pages(api: FakeAPI, async_client: AsyncAvara) -> None:
    users_pages(api)
    page = await async_client.viewer.users.list(limit=2)
    assert isinstance(page, AsyncUsersPage)
    assert [u.user_id for u in page.users] == ["usr_a", "usr_b"]
    assert [u.user_id async for u in page] == ["usr_a", "usr_b", "usr_c", "usr_d", "usr_e"]
    assert [len(p.users) async for p in page.iter_pages()] == [2, 2, 1]
    assert all(r.url.params["limit"] == "2" for r in api.requests)
    assert (await page.get_next_page()).cursor == "c2"


async def test_async_invitations_pages(api: FakeAPI, async_client: AsyncAvara) -> None:
    api.reply(json={"invitations": [invitation()], "cursor": "n", "hasMore": True})
    api.reply(
        json={"invitations": [invitation(status="revoked")], "cursor": None, "hasMore": False}
    )
    page = await async_client.viewer.users.invitations.list(expired="expired")
    assert [i.status async for i in page] == ["sent", "revoked"]
    assert api.last.url.params["expired"] == "expired"
