"""One taxonomy of domain errors with stable codes and HTTP statuses.

Every entrypoint maps a :class:`DomainError` the same way: ``code`` and
``status`` go on the wire, ``message`` is safe to read to the customer.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code: ClassVar[str] = "DOMAIN_ERROR"
    status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request could not be completed."
    #: True when a model could fix the input and try again (Bedrock REPROMPT).
    repromptable: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        self.message = message or self.default_message
        self.field = field
        super().__init__(self.message)


# 400: invalid input -------------------------------------------------------
class InvalidInput(DomainError):
    code = "INVALID_INPUT"
    status = 400
    default_message = "Some of the information given is not valid."
    repromptable = True


class InvalidAmount(InvalidInput):
    code = "INVALID_AMOUNT"
    default_message = "The amount is not valid."


class UnsupportedCurrency(InvalidInput):
    code = "UNSUPPORTED_CURRENCY"
    default_message = "That currency is not supported."


class InvalidCursor(InvalidInput):
    code = "INVALID_CURSOR"
    default_message = "The page cursor is not valid. Ask for the first page again."


class UnknownOperation(InvalidInput):
    code = "UNKNOWN_OPERATION"
    default_message = "That operation does not exist."


class WrongActionGroup(InvalidInput):
    """An operation sent to the other action group's function: the message names the right group."""

    code = "WRONG_ACTION_GROUP"
    default_message = "That operation belongs to another action group."
    repromptable = False


# 401/403: identity and ownership ------------------------------------------
class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    status = 401
    default_message = "The customer is not signed in."


class Forbidden(DomainError):
    code = "FORBIDDEN"
    status = 403
    default_message = "That is not allowed for this customer."


# 404: not found (also what another customer's data looks like) ------------
class NotFound(DomainError):
    code = "NOT_FOUND"
    status = 404
    default_message = "That was not found."
    repromptable = True


class AccountNotFound(NotFound):
    code = "ACCOUNT_NOT_FOUND"
    default_message = "That account was not found among the customer's accounts."


class DestinationNotFound(NotFound):
    code = "DESTINATION_NOT_FOUND"
    default_message = (
        "That destination is neither one of the customer's accounts nor a saved beneficiary. "
        "Use an account_id from listAccounts or a beneficiary_id from listBeneficiaries."
    )


class TransferNotFound(NotFound):
    code = "TRANSFER_NOT_FOUND"
    default_message = "That transfer was not found."


class ProductNotFound(NotFound):
    code = "PRODUCT_NOT_FOUND"
    default_message = "That product was not found."


class OrderNotFound(NotFound):
    code = "ORDER_NOT_FOUND"
    default_message = "That order was not found."


# 409: idempotency and concurrency -----------------------------------------
class IdempotencyConflict(DomainError):
    code = "IDEMPOTENCY_CONFLICT"
    status = 409
    default_message = "This request repeats an earlier one with different details. Start a new request instead."


class ConcurrencyConflict(DomainError):
    code = "CONCURRENCY_CONFLICT"
    status = 409
    default_message = "Something changed at the same time. Please try again."


# 422: business rules ------------------------------------------------------
class BusinessRuleViolation(DomainError):
    status = 422


class InsufficientFunds(BusinessRuleViolation):
    code = "INSUFFICIENT_FUNDS"
    default_message = "The account does not have enough funds for this."


class LimitExceeded(BusinessRuleViolation):
    code = "LIMIT_EXCEEDED"
    default_message = "This goes over the allowed limit."


class OutOfStock(BusinessRuleViolation):
    code = "OUT_OF_STOCK"
    default_message = "There is not enough stock of that product."


class CurrencyMismatch(BusinessRuleViolation):
    code = "CURRENCY_MISMATCH"
    default_message = "The currencies of the accounts or product do not match."


class InvalidOrderState(BusinessRuleViolation):
    code = "INVALID_ORDER_STATE"
    default_message = "The order cannot change that way."


# 503: dependency unavailable ----------------------------------------------
class DependencyUnavailable(DomainError):
    code = "DEPENDENCY_UNAVAILABLE"
    status = 503
    default_message = "The service is busy right now. Please try again in a moment."
