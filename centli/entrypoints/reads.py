"""The first reads of a conversation, answered without the wire models: getBalance and listAccounts.

The wire models (:mod:`centli.entrypoints.wire`) validate every call and shape
every answer. Loading them (pydantic and the models' validators) is most of
what a cold Lambda would spend beyond botocore on its first call, which is
usually one of these two reads (docs/performance.md, cold start).

A read listed here is answered by the same domain parser for each parameter
and the same domain call and answer fields as its wire handler (which builds
its response model from :func:`balance` or :func:`accounts`), when the
parameters are exactly the declared ones and each is already what its parser
returns. Anything else (a missing, extra, refused or not yet canonical
parameter) goes through the wire models, which give the one canonical answer
or error. ``tests/unit/entrypoints/test_reads.py`` runs both paths on the same
inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from centli.domain.application import Application
from centli.domain.errors import DomainError
from centli.domain.ledger import Account
from centli.domain.policy import require_id

#: A domain parser of one concept: the raw value and the parameter's name, to the parsed value.
Parser = Callable[[object, str], object]
#: What a read answers: the application, the authenticated customer and the parsed parameters, to the body.
Answer = Callable[[Application, str, Mapping[str, object]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Read:
    #: Every parameter (all required), in the wire model's order, with the domain parser its model uses.
    parameters: tuple[tuple[str, Parser], ...]
    answer: Answer


def account_fields(account: Account) -> dict[str, str]:
    """An account as the answers show it (the fields of ``AccountOut``, in its order)."""
    return {
        "account_id": account.account_id,
        "alias": account.alias,
        "currency": account.currency,
        "balance": account.balance.to_decimal_string(),
    }


def balance(app: Application, user_id: str, account_id: str) -> dict[str, str]:
    """getBalance's answer."""
    return account_fields(app.banking.get_balance(user_id, account_id))


def accounts(app: Application, user_id: str) -> dict[str, Any]:
    """listAccounts' answer (``truncated``: the 20 KB cap may shorten the list later)."""
    return {"accounts": [account_fields(a) for a in app.banking.list_accounts(user_id)], "truncated": False}


READS: Final[dict[str, Read]] = {
    "getBalance": Read((("account_id", require_id),), lambda app, user, p: balance(app, user, str(p["account_id"]))),
    "listAccounts": Read((), lambda app, user, _: accounts(app, user)),
}


def plan(operation_id: str, parameters: Mapping[str, object]) -> Callable[[Application, str], dict[str, Any]] | None:
    """How to answer this call without the wire models, or None when they must decide."""
    read = READS.get(operation_id)
    if read is None or len(parameters) != len(read.parameters):
        return None
    values: dict[str, object] = {}
    for name, parse in read.parameters:
        if name not in parameters:
            return None
        raw = parameters[name]
        try:
            parsed = parse(raw, name)
        except DomainError:
            return None  # the wire models give the error (the same parser's, through them)
        if type(parsed) is not type(raw) or parsed != raw:
            return None  # not canonical yet (padded text, a number as text): the wire models decide
        values[name] = parsed
    answer = read.answer
    return lambda app, user_id: answer(app, user_id, values)
