"""`centli agent`: the InvokeAgent conversation, with the confirmation round trip of a write."""

from __future__ import annotations

import io
from typing import Any

from centli.entrypoints.agent_chat import chat

TRANSFER = {
    "actionGroup": "core-banking",
    "apiPath": "/transfers",
    "httpMethod": "POST",
    "actionInvocationType": "USER_CONFIRMATION",
    "requestBody": {
        "content": {
            "application/json": {
                "properties": [
                    {"name": "from_account_id", "type": "string", "value": "acc-0001"},
                    {"name": "amount", "type": "string", "value": "500.00"},
                ]
            }
        }
    },
}


class FakeAgentRuntime:
    """Answers InvokeAgent with scripted event streams and keeps every request."""

    def __init__(self, *streams: list[dict[str, Any]]) -> None:
        self.streams = list(streams)
        self.requests: list[dict[str, Any]] = []

    def invoke_agent(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"completion": iter(self.streams.pop(0))}


def chunk(text: str) -> dict[str, Any]:
    return {"chunk": {"bytes": text.encode()}}


def test_a_write_waits_for_the_customer_and_the_answer_goes_back_with_the_invocation_id() -> None:
    client = FakeAgentRuntime(
        [{"returnControl": {"invocationId": "inv-1", "invocationInputs": [{"apiInvocationInput": TRANSFER}]}}],
        [chunk("Listo: transferí 500.00 MXN. Folio tr-1.")],
    )
    quotes: list[str] = []
    out = io.StringIO()
    turn = chat(
        client,
        agent_id="A",
        alias_id="L",
        session_id="s-1",
        user_id="u-ana",
        text="Manda 500 a mamá",
        answer=lambda quote: quotes.append(quote) or True,
        out=out,
    )
    assert quotes == ['POST /transfers {"from_account_id": "acc-0001", "amount": "500.00"}']
    first, second = client.requests
    assert first["inputText"] == "Manda 500 a mamá"
    assert first["sessionState"] == {"sessionAttributes": {"user_id": "u-ana"}}
    assert "inputText" not in second
    assert second["sessionState"] == {
        "sessionAttributes": {"user_id": "u-ana"},
        "invocationId": "inv-1",
        "returnControlInvocationResults": [
            {
                "apiResult": {
                    "actionGroup": "core-banking",
                    "apiPath": "/transfers",
                    "httpMethod": "POST",
                    "confirmationState": "CONFIRM",
                }
            }
        ],
    }
    assert turn.text == "Listo: transferí 500.00 MXN. Folio tr-1." and "Folio" in out.getvalue()


def test_a_denied_write_is_answered_deny() -> None:
    function_style = {"actionGroup": "core-banking", "function": "createTransfer", "parameters": []}
    client = FakeAgentRuntime(
        [
            {
                "returnControl": {
                    "invocationId": "inv-2",
                    "invocationInputs": [{"functionInvocationInput": function_style}],
                }
            }
        ],
        [chunk("De acuerdo, no hice la transferencia.")],
    )
    chat(client, agent_id="A", alias_id="L", session_id="s", user_id="u-ana", text="x", answer=lambda _: False)
    results = client.requests[1]["sessionState"]["returnControlInvocationResults"]
    assert results == [
        {"functionResult": {"actionGroup": "core-banking", "function": "createTransfer", "confirmationState": "DENY"}}
    ]
