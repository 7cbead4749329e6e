"""Core-banking use cases: accounts, balances, history, beneficiaries, transfers, purchase payments."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from centli.domain import events as ev
from centli.domain.errors import (
    AccountNotFound,
    ConcurrencyConflict,
    CurrencyMismatch,
    DependencyUnavailable,
    DomainError,
    InsufficientFunds,
    InvalidInput,
    LimitExceeded,
    TransferNotFound,
)
from centli.domain.events import DomainEvent, EventAlreadyProcessed
from centli.domain.idempotency import (
    IDEMPOTENCY_WINDOW,
    DuplicateIdempotencyKey,
    IdempotencyRecord,
    KeyedRequest,
    Written,
    fingerprint,
    new_record,
    validate_key,
)
from centli.domain.ledger import (
    Account,
    AccountRef,
    Beneficiary,
    DestinationIsBeneficiary,
    LedgerEntry,
    Transfer,
    last4,
    payment_concept,
)
from centli.domain.money import Money, parse_currency, parse_minor
from centli.domain.planted import PLANTED
from centli.domain.policy import concept_text, require_id
from centli.domain.service import Service
from centli.domain.settlement import (
    SETTLEMENT_CONCEPT,
    SETTLEMENT_OPERATION,
    clearing_accounts,
    clearing_for_order,
    settlement_key,
)

log = logging.getLogger("centli.banking")

PAYMENT_CONSUMER = "core-banking.payment"
#: The payment fence outlives any retry or redrive: an order's payment is decided once, for good.
ORDER_PAYMENT_FENCE = timedelta(days=3650)
CREATE_TRANSFER = "createTransfer"
ORDER_PAYMENT = "orderPayment"


@dataclass(frozen=True, slots=True)
class CreateTransfer:
    """A transfer as the agent asked for it, every value parsed (the edge's models parse it; :meth:`parse`
    for other callers). ``destination_id`` is an own account or a saved beneficiary, resolved own accounts
    first; the amount is in minor units of the source account's currency.
    """

    user_id: str
    from_account_id: str
    amount_minor: int
    idempotency_key: str
    destination_id: str
    #: The request's correlation id; "" names the transfer by its own id.
    correlation_id: str = ""
    concept: str = ""

    @classmethod
    def parse(
        cls,
        user_id: str,
        from_account_id: object,
        amount: object,
        idempotency_key: object,
        destination_id: object,
        concept: object = None,
        correlation_id: str = "",
    ) -> CreateTransfer:
        return cls(
            user_id,
            require_id(from_account_id, "from_account_id"),
            parse_minor(amount),
            validate_key(idempotency_key),
            require_id(destination_id, "destination_id"),
            correlation_id,
            concept_text(concept),
        )


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[LedgerEntry]
    next_cursor: str | None


def order_payment_key(order_id: str) -> str:
    """The idempotency key that fences an order's payment: paid, declined or voided, once."""
    return f"order-payment:{order_id}"


def payment_fence(user_id: str, order_id: str, outcome: dict[str, Any], now: datetime) -> IdempotencyRecord:
    """The record that decides an order's payment; it never lapses while anything could still retry."""
    fp = fingerprint(ORDER_PAYMENT, {"order_id": order_id})
    return new_record(user_id, order_payment_key(order_id), ORDER_PAYMENT, fp, outcome, now, ORDER_PAYMENT_FENCE)


class BankingService(Service):
    # reads ------------------------------------------------------------------
    def list_accounts(self, user_id: str) -> list[Account]:
        with self._uow() as uow:
            return uow.accounts.list_for_user(user_id)

    def get_balance(self, user_id: str, account_id: str) -> Account:
        return self._found(lambda uow: uow.accounts.get(user_id, account_id), AccountNotFound(field="account_id"))

    def list_transactions(
        self, user_id: str, account_id: str, limit: int | None = None, cursor: str | None = None
    ) -> HistoryPage:
        return HistoryPage(
            *self._page(
                user_id,
                f"tx:{account_id}",
                limit,
                cursor,
                lambda uow, n, at: uow.ledger.history(user_id, account_id, n, at),
            )
        )

    def list_beneficiaries(self, user_id: str) -> list[Beneficiary]:
        with self._uow() as uow:
            return uow.beneficiaries.list_for_user(user_id)

    def get_transfer(self, user_id: str, transfer_id: str) -> Transfer:
        return self._found(
            lambda uow: uow.ledger.get_transfer(user_id, transfer_id), TransferNotFound(field="transfer_id")
        )

    # writes -----------------------------------------------------------------
    def create_transfer(self, cmd: CreateTransfer) -> Transfer:
        """Move money to one of the customer's accounts or a saved beneficiary, exactly once per key."""
        return self.send_transfer(cmd).value

    def send_transfer(self, cmd: CreateTransfer) -> Written[Transfer]:
        """:meth:`create_transfer`, saying whether the result is an earlier one returned again."""
        from_account, destination, key = cmd.from_account_id, cmd.destination_id, cmd.idempotency_key
        if destination == from_account:
            raise InvalidInput("The source and destination accounts are the same.", field="destination_id")
        currency = self._source_currency(cmd.user_id, from_account)
        amount = Money(cmd.amount_minor, currency)
        params = {
            "from_account_id": from_account,
            "destination_id": destination,
            "amount_minor": amount.minor,
            "currency": currency,
            "concept": cmd.concept,
        }
        now = self._clock.now()
        request = KeyedRequest.of(cmd.user_id, key, CREATE_TRANSFER, params, now)
        limits = self._policy.limits_for(currency)
        # Own accounts first: the store tells at commit when the id is a saved beneficiary instead.
        beneficiary: Beneficiary | None = None
        while True:
            with self._uow() as uow:
                try:
                    if amount > limits.per_transfer:
                        raise LimitExceeded(f"A single transfer can be at most {limits.per_transfer}.", field="amount")
                    target = AccountRef(cmd.user_id, destination)
                    if beneficiary is not None:
                        target = AccountRef(beneficiary.account_user_id, beneficiary.account_id)
                        if target == AccountRef(cmd.user_id, from_account):
                            raise InvalidInput("That beneficiary is the source account itself.", field="destination_id")
                except DomainError as rejected:
                    # A retry of a request accepted before the rules or data changed keeps its result.
                    found = request.recorded_or_raise(uow.idempotency.get(cmd.user_id, key), rejected)
                    return Written(Transfer.from_dict(found), replayed=True)
                transfer = Transfer(
                    transfer_id=self._ids.new_id("trf"),
                    user_id=cmd.user_id,
                    from_account_id=from_account,
                    to=target,
                    amount=amount,
                    concept=cmd.concept,
                    created_at=now,
                    beneficiary_id=None if beneficiary is None else beneficiary.beneficiary_id,
                )
                uow.idempotency.claim(request.record(transfer.to_dict()))
                uow.limits.add(cmd.user_id, self._policy.business_day(now), amount, limits.daily_total)
                uow.ledger.post(transfer, resolve_destination=beneficiary is None)
                completed = ev.TransferCompleted(
                    transfer.transfer_id, from_account, target.account_id, transfer.beneficiary_id, amount
                )
                uow.outbox.add(
                    self._new_event(completed, cmd.user_id, cmd.correlation_id or transfer.transfer_id, None)
                )
                try:
                    transfer = transfer.stamped(uow.commit())
                except DuplicateIdempotencyKey as duplicate:
                    if PLANTED.replay_after_crash_commits_again and (cmd.user_id, key) in PLANTED.crashed_keys:
                        return Written(self._planted_commit_again(transfer, limits.daily_total), replayed=False)
                    return Written(Transfer.from_dict(request.replay(duplicate.existing)), replayed=True)
                except DestinationIsBeneficiary as resolved:
                    if beneficiary is not None:  # a store must not answer this twice
                        raise ConcurrencyConflict() from None
                    beneficiary = resolved.beneficiary
                    continue
                except Exception:
                    if PLANTED.replay_after_crash_commits_again:
                        PLANTED.crashed_keys.add((cmd.user_id, key))
                    raise
            log.info("transfer completed", extra={"transfer_id": transfer.transfer_id})
            return Written(transfer, replayed=False)

    def _planted_commit_again(self, transfer: Transfer, daily_total: Money) -> Transfer:
        """Planted bug 1 (centli.domain.planted): "my last attempt crashed, so it must not have
        committed": the transfer is posted again under a new id, past the idempotency record."""
        again = replace(transfer, transfer_id=self._ids.new_id("trf"), created_at=self._clock.now())
        with self._uow() as uow:
            uow.limits.add(again.user_id, self._policy.business_day(again.created_at), again.amount, daily_total)
            uow.ledger.post(again)
            return again.stamped(uow.commit())

    def _source_currency(self, user_id: str, from_account: str) -> str:
        """The source account's currency: the policy's only one (no read: the posting refuses, CurrencyMismatch,
        a source account that holds another), else read from the account."""
        if len(self._policy.currencies) == 1:
            return next(iter(self._policy.currencies))
        account = self._found(
            lambda uow: uow.accounts.get(user_id, from_account), AccountNotFound(field="from_account_id")
        )
        return parse_currency(account.currency, self._policy.currencies)

    # purchase saga: payment ---------------------------------------------------
    def pay_for_order(self, event: DomainEvent) -> None:
        """PURCHASE_INITIATED -> debit the buyer, credit the seller, once per order."""
        purchase = ev.PurchaseInitiated.of(event)
        order_id = purchase.order_id
        now = self._clock.now()
        if now >= event.occurred_at + IDEMPOTENCY_WINDOW:
            # The sweeper's void lives 24 h: a later delivery (a DLQ redrive) must never take the money.
            self._decline_payment(event, purchase, "TIMEOUT")
            return
        transfer = Transfer(
            transfer_id=self._ids.new_id("trf"),
            user_id=event.user_id,
            from_account_id=purchase.account_id,
            # Merchant settlement: one of the seller's clearing accounts, never the seller's hot account.
            to=clearing_for_order(AccountRef(purchase.seller_user_id, purchase.seller_account_id), order_id),
            amount=purchase.amount,
            concept=payment_concept(order_id),
            created_at=now,
            kind="PURCHASE_PAYMENT",
        )
        paid = ev.PaymentCompleted(*purchase.carried(), transfer_id=transfer.transfer_id)
        try:
            decided = self._decide_payment(event, paid, now, transfer)
        except (InsufficientFunds, AccountNotFound, CurrencyMismatch) as declined:
            self._decline_payment(event, purchase, declined.code)
            return
        log.info("payment completed" if decided else "payment already decided", extra={"order_id": order_id})

    def _decline_payment(self, event: DomainEvent, purchase: ev.PurchaseInitiated, reason: str) -> None:
        failed = ev.PaymentFailed(*purchase.carried(), reason=reason)
        if self._decide_payment(event, failed, self._clock.now()):
            log.info("payment declined", extra={"order_id": purchase.order_id, "reason": reason})

    def _decide_payment(
        self,
        event: DomainEvent,
        decision: ev.PaymentCompleted | ev.PaymentFailed,
        now: datetime,
        payment: Transfer | None = None,
    ) -> bool:
        """Commit one payment decision under the order's fence, posting ``payment`` when paid; False when this
        event or this order's payment was already decided."""
        if isinstance(decision, ev.PaymentCompleted):
            mark, outcome = ev.PAID, {"outcome": "PAID", "transfer_id": decision.transfer_id}
        else:
            mark, outcome = ev.DECLINED, {"outcome": "DECLINED", "reason": decision.reason}
        with self._uow() as uow:
            uow.inbox.mark_processed(PAYMENT_CONSUMER, event.event_id, mark, now)
            fence = {**outcome, "event_id": event.event_id}
            uow.idempotency.claim(payment_fence(event.user_id, decision.order_id, fence, now))
            if payment is not None:
                uow.ledger.post(payment)
            uow.outbox.add(self._new_event(decision, event.user_id, event.correlation_id, event.event_id))
            try:
                uow.commit()
            except (EventAlreadyProcessed, DuplicateIdempotencyKey):
                return False
        return True

    def resolve_stuck_order(self, user_id: str, order: ev.OrderFacts, correlation_id: str) -> bool:
        """Settle an order stuck PENDING: void its payment, or re-announce the decision already made.

        Returns True when the payment was voided (PAYMENT_FAILED, reason TIMEOUT).
        When the payment was already decided (its event lost or still in a
        dead-letter queue), the decision is published again so the order
        settles the way the money went; consumers dedupe by order state.
        """
        order_id = order.order_id
        now = self._clock.now()
        timeout = ev.PaymentFailed(*order.carried(), reason="TIMEOUT", swept=True)
        if PLANTED.sweeper_voids_without_fence:
            # Planted bug 2 (centli.domain.planted): check, then act, with no claim between them.
            with self._uow() as uow:
                if uow.idempotency.get(user_id, order_payment_key(order_id)) is None:
                    uow.outbox.add(self._new_event(timeout, user_id, correlation_id, None))
                    uow.commit()
                    return True
        with self._uow() as uow:
            void = self._new_event(timeout, user_id, correlation_id, None)
            fence = {"outcome": "VOIDED", "reason": "TIMEOUT", "event_id": void.event_id}
            uow.idempotency.claim(payment_fence(user_id, order_id, fence, now))
            uow.outbox.add(void)
            try:
                uow.commit()
                return True
            except DuplicateIdempotencyKey as decided:
                outcome = decided.existing.result
        decision: ev.SagaFact
        if outcome.get("outcome") == "PAID":
            decision = ev.PaymentCompleted(*order.carried(), transfer_id=str(outcome.get("transfer_id")), swept=True)
        else:
            decision = ev.PaymentFailed(
                *order.carried(), reason=str(outcome.get("reason", "PAYMENT_FAILED")), swept=True
            )
        with self._uow() as uow:
            uow.outbox.add(self._new_event(decision, user_id, correlation_id, None))
            uow.commit()
        log.warning("stuck order's payment decision re-published", extra={"order_id": order_id})
        return False

    # merchant settlement ------------------------------------------------------
    def settle_clearing_accounts(self, sellers: Iterable[AccountRef]) -> int:
        """Move every clearing account's balance into its seller's account ("Liquidación de ventas").

        One transfer per clearing account holding money, fenced by an idempotency
        record per account and minute, so overlapping sweeper runs settle once.
        A clearing account that cannot be settled now (a concurrent run, a
        conflict, a missing account) is skipped and settled on a later run.
        Returns the number of settlement transfers made.
        """
        settled = 0
        for seller in sellers:
            with self._uow() as uow:
                holding = [a for a in uow.accounts.get_many(clearing_accounts(seller)) if a.balance.minor > 0]
            for account in holding:
                clearing = AccountRef(account.user_id, account.account_id)
                try:
                    settled += self._settle_one(clearing, seller, account.balance)
                except DependencyUnavailable:
                    raise
                except DomainError as skipped:
                    log.warning(
                        "clearing account not settled",
                        extra={"account_last4": last4(clearing.account_id), "reason": skipped.code},
                    )
        return settled

    def _settle_one(self, clearing: AccountRef, seller: AccountRef, amount: Money) -> int:
        """One settlement transfer of ``amount`` (read just before; if it shrank meanwhile, InsufficientFunds)."""
        now = self._clock.now()
        transfer = Transfer(
            transfer_id=self._ids.new_id("trf"),
            user_id=clearing.user_id,
            from_account_id=clearing.account_id,
            to=seller,
            amount=amount,
            concept=SETTLEMENT_CONCEPT,
            created_at=now,
            kind="SETTLEMENT",
        )
        key = settlement_key(clearing, now)
        fp = fingerprint(SETTLEMENT_OPERATION, {"account_id": clearing.account_id, "key": key})
        with self._uow() as uow:
            uow.idempotency.claim(new_record(clearing.user_id, key, SETTLEMENT_OPERATION, fp, transfer.to_dict(), now))
            uow.ledger.post(transfer)
            try:
                uow.commit()
            except DuplicateIdempotencyKey:
                return 0  # another run settled this account in this minute
        return 1
