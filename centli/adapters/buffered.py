"""The unit-of-work skeleton every store shares: buffer guarded writes, apply them in one commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from centli.domain.ledger import Transfer
from centli.domain.rules import StockChange
from centli.ports import repositories as ports
from centli.ports.clock import Clock
from centli.ports.faults import AFTER_COMMIT, BEFORE_COMMIT, FaultPoints

W = TypeVar("W")
U = TypeVar("U")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Repositories(Generic[U]):
    """A store's nine repository classes, in the order of the fields, each made from its unit of work."""

    accounts: Callable[[U], ports.AccountRepository]
    beneficiaries: Callable[[U], ports.BeneficiaryRepository]
    ledger: Callable[[U], ports.LedgerRepository]
    limits: Callable[[U], ports.DailyLimitRepository]
    idempotency: Callable[[U], ports.IdempotencyRepository]
    products: Callable[[U], ports.ProductRepository]
    orders: Callable[[U], ports.OrderRepository]
    inbox: Callable[[U], ports.Inbox]
    outbox: Callable[[U], ports.Outbox]


class _Repository(Generic[R]):
    """A unit of work's repository: its store's class from :class:`Repositories`, made on first use and kept."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, uow: BufferedUnitOfWork[Any, Any] | None, owner: type) -> R:
        if uow is None:  # looked up on the class (help(), hasattr): the descriptor itself
            return self  # type: ignore[return-value]
        made: R = getattr(uow.repositories, self.name)(uow)
        uow.__dict__[self.name] = made  # found first from now on, as a cached_property's value is
        return made


class Store(Protocol):
    """What every store's unit of work reads of its store."""

    @property
    def clock(self) -> Clock: ...

    @property
    def faults(self) -> FaultPoints: ...


S = TypeVar("S", bound=Store)


class BufferedUnitOfWork(Generic[W, S]):
    """Collects write intents; ``commit()`` hands them to ``_apply`` in one atomic step.

    Idempotency and inbox guards are buffered with ``first=True`` and come
    before every other write, so a retry is recognised even when another
    guard of the same command would now fail. Leaving the ``with`` block
    without ``commit()`` discards everything. Repositories are built on first
    use (a read touches one, and a unit of work is made per call).
    """

    repositories: ClassVar[Repositories[Any]]
    accounts = _Repository[ports.AccountRepository]()
    beneficiaries = _Repository[ports.BeneficiaryRepository]()
    ledger = _Repository[ports.LedgerRepository]()
    limits = _Repository[ports.DailyLimitRepository]()
    idempotency = _Repository[ports.IdempotencyRepository]()
    products = _Repository[ports.ProductRepository]()
    orders = _Repository[ports.OrderRepository]()
    inbox = _Repository[ports.Inbox]()
    outbox = _Repository[ports.Outbox]()

    def __init__(self, store: S) -> None:
        self.store, self.clock = store, store.clock
        self._first: list[W] = []
        self._rest: list[W] = []
        self._posted: list[Transfer] = []

    def buffer(self, write: W, *, first: bool = False, posts: Transfer | None = None) -> None:
        """Buffer ``write``; ``posts`` names the transfer it posts, which the commit's stamp stamps."""
        (self._first if first else self._rest).append(write)
        if posts is not None:
            self._posted.append(posts)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.rollback()

    def commit(self) -> datetime:
        writes, posted = [*self._first, *self._rest], self._posted
        self.rollback()
        if not writes:
            return self.clock.now()
        faults = self.store.faults
        faults.check(BEFORE_COMMIT)
        stamp = self._apply(writes, posted)
        faults.check(AFTER_COMMIT)
        return stamp

    def rollback(self) -> None:
        self._first = []
        self._rest = []
        self._posted = []

    def _apply(self, writes: list[W], posted: list[Transfer]) -> datetime:
        """Apply every write atomically, or raise the first failing guard's error and write nothing.

        Returns the commit's stamp: :func:`~centli.domain.ledger.commit_stamp` of ``self.clock``
        read inside the atomic step and the previous entry of every account ``posted`` touches.
        """
        raise NotImplementedError


class StockChanges:
    """A products repository's three stock changes, each one :meth:`_change` the store makes atomic."""

    def _change(self, product_id: str, change: StockChange, quantity: int) -> None:
        raise NotImplementedError

    def reserve(self, product_id: str, quantity: int) -> None:
        self._change(product_id, "reserve", quantity)

    def release(self, product_id: str, quantity: int) -> None:
        self._change(product_id, "release", quantity)

    def commit_reserved(self, product_id: str, quantity: int) -> None:
        self._change(product_id, "commit", quantity)
