"""Cursor pages. Iterating a page walks every item of every page, fetching the next lazily."""

from __future__ import annotations

from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    ClassVar,
    Generic,
    Iterator,
    List,
    Mapping,
    Optional,
    TypeVar,
)

from typing_extensions import Self

from .types.viewer.invitation import Invitation
from .types.viewer.user import User

__all__ = [
    "AsyncCursorPage",
    "AsyncInvitationsPage",
    "AsyncUsersPage",
    "SyncCursorPage",
    "SyncInvitationsPage",
    "SyncUsersPage",
]

ItemT = TypeVar("ItemT")


class _CursorPage(Generic[ItemT]):
    # The key of the list in the response body, and the model of its items.
    _items_key: ClassVar[str]
    _item_model: ClassVar[Any]

    def __init__(self, body: Mapping[str, Any]) -> None:
        items = body[self._items_key]
        self._items: List[ItemT] = [self._item_model.model_validate(item) for item in items]
        self.cursor: Optional[str] = body.get("cursor")
        """Opaque cursor of the next page; ``None`` on the last page."""
        self.has_more: bool = bool(body.get("hasMore"))
        """Whether another page follows this one."""

    def has_next_page(self) -> bool:
        return self.has_more and self.cursor is not None

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} items={len(self._items)} "
            f"has_more={self.has_more} cursor={self.cursor!r}>"
        )


class SyncCursorPage(_CursorPage[ItemT]):
    """One page of a list; ``for item in page`` yields the items of this page and every next one."""

    def __init__(self, body: Mapping[str, Any], fetch_page: Callable[[str], Self]) -> None:
        super().__init__(body)
        self._fetch_page = fetch_page

    def get_next_page(self) -> Self:
        """Fetch the page after this one, with the same filters."""
        if self.cursor is None or not self.has_more:
            raise RuntimeError("This is the last page; check has_next_page() first.")
        return self._fetch_page(self.cursor)

    def iter_pages(self) -> Iterator[Self]:
        """Yield this page, then each following page as it is fetched."""
        page = self
        yield page
        while page.has_next_page():
            page = page.get_next_page()
            yield page

    def __iter__(self) -> Iterator[ItemT]:
        for page in self.iter_pages():
            yield from page._items


class AsyncCursorPage(_CursorPage[ItemT]):
    """One page of a list; ``async for item in page`` walks this page and every next one."""

    def __init__(self, body: Mapping[str, Any], fetch_page: Callable[[str], Awaitable[Self]]):
        super().__init__(body)
        self._fetch_page = fetch_page

    async def get_next_page(self) -> Self:
        """Fetch the page after this one, with the same filters."""
        if self.cursor is None or not self.has_more:
            raise RuntimeError("This is the last page; check has_next_page() first.")
        return await self._fetch_page(self.cursor)

    async def iter_pages(self) -> AsyncIterator[Self]:
        """Yield this page, then each following page as it is fetched."""
        page = self
        yield page
        while page.has_next_page():
            page = await page.get_next_page()
            yield page

    async def __aiter__(self) -> AsyncIterator[ItemT]:
        async for page in self.iter_pages():
            for item in page._items:
                yield item


class SyncUsersPage(SyncCursorPage[User]):
    """A page of ``users.list()``."""

    _items_key = "users"
    _item_model = User

    @property
    def users(self) -> List[User]:
        """The users on this page only."""
        return self._items


class AsyncUsersPage(AsyncCursorPage[User]):
    """A page of ``users.list()``."""

    _items_key = "users"
    _item_model = User

    @property
    def users(self) -> List[User]:
        """The users on this page only."""
        return self._items


class SyncInvitationsPage(SyncCursorPage[Invitation]):
    """A page of ``users.invitations.list()``."""

    _items_key = "invitations"
    _item_model = Invitation

    @property
    def invitations(self) -> List[Invitation]:
        """The invitations on this page only."""
        return self._items


class AsyncInvitationsPage(AsyncCursorPage[Invitation]):
    """A page of ``users.invitations.list()``."""

    _items_key = "invitations"
    _item_model = Invitation

    @property
    def invitations(self) -> List[Invitation]:
        """The invitations on this page only."""
        return self._items
