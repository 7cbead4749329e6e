"""What the use-case services share: their collaborators, one way to read a record that must exist, and one
way to read a page behind a cursor."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from centli.domain.cursor import CursorCodec
from centli.domain.errors import DomainError
from centli.domain.events import EventFactory
from centli.domain.policy import DEFAULT_PAGE_SIZE, BankPolicy
from centli.ports.clock import Clock, IdGenerator
from centli.ports.repositories import Page
from centli.ports.unit_of_work import UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")


class Service:
    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, ids: IdGenerator, policy: BankPolicy, cursors: CursorCodec
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._ids = ids
        self._policy = policy
        self._cursors = cursors
        self._new_event = EventFactory(ids, clock)

    def _found(self, read: Callable[[UnitOfWork], T | None], missing: DomainError) -> T:
        with self._uow() as uow:
            found = read(uow)
        if found is None:
            raise missing
        return found

    def _page(
        self,
        user_id: str,
        scope: str,
        limit: int | None,
        cursor: str | None,
        read: Callable[[UnitOfWork, int, str | None], Page[T]],
    ) -> tuple[list[T], str | None]:
        """One page of the list ``scope`` names, from where ``cursor`` left it; its items and the next cursor.

        ``read`` gets a unit of work, the page size and the store's position. A cursor is bound to the
        customer and the list (signed), so it cannot be edited, moved to another list or replayed by another.
        """
        position = self._cursors.decode(cursor, user_id, scope) if cursor else None
        with self._uow() as uow:
            page = read(uow, limit or DEFAULT_PAGE_SIZE, position)
        after = page.next_position
        return page.items, None if after is None else self._cursors.encode(user_id, scope, after)
