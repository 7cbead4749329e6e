"""The unit of work: one atomic commit of a command's writes and events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from centli.ports.repositories import (
    AccountRepository,
    BeneficiaryRepository,
    DailyLimitRepository,
    IdempotencyRepository,
    Inbox,
    LedgerRepository,
    OrderRepository,
    Outbox,
    ProductRepository,
)


class UnitOfWork(Protocol):
    """Use as ``with uow_factory() as uow: ...; uow.commit()``.

    Leaving the block without ``commit()`` (or by an exception) discards every
    buffered write. ``commit()`` applies all of them atomically or none.

    ``commit()`` returns the commit's stamp (:func:`centli.domain.ledger.commit_stamp`):
    the store's clock read when it commits, never earlier than the previous entry
    of any account it posts to. Every transfer it posts is stored with that
    ``created_at``, and so are both its entries and an idempotency record of the
    same commit that answers with it; the caller answers ``transfer.stamped(stamp)``.
    """

    @property
    def accounts(self) -> AccountRepository: ...

    @property
    def beneficiaries(self) -> BeneficiaryRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def limits(self) -> DailyLimitRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def products(self) -> ProductRepository: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def inbox(self) -> Inbox: ...

    @property
    def outbox(self) -> Outbox: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> datetime: ...

    def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
