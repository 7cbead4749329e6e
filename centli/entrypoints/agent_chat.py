"""``centli agent``: talk to the deployed Bedrock agent, confirmation round trip included.

The AWS CLI has no ``bedrock-agent-runtime invoke-agent`` command (InvokeAgent answers with an event
stream, which the CLI does not support), so this is the operator's way to try the stack. It plays
the bank's application: the customer id goes in ``sessionAttributes.user_id`` (the only identity the
action groups accept). When the agent asks to confirm a write (``x-requireConfirmation``), InvokeAgent
returns control with the API and its parameters; this command shows them, asks the human, and sends
the answer back as ``returnControlInvocationResults`` with ``confirmationState`` CONFIRM or DENY.
Only then does Bedrock call the action group (or not).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

#: Confirmation rounds one utterance may take (a turn can chain a few writes).
MAX_ROUNDS = 5


@dataclass
class Turn:
    """What one InvokeAgent response said: its text, and the actions awaiting the customer's confirmation."""

    text: str = ""
    invocation_id: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)  # apiInvocationInput / functionInvocationInput


def read_turn(events: Iterable[Mapping[str, Any]]) -> Turn:
    turn = Turn()
    for event in events:
        if "chunk" in event:
            turn.text += event["chunk"].get("bytes", b"").decode("utf-8")
        elif "returnControl" in event:
            control = event["returnControl"]
            turn.invocation_id = control.get("invocationId")
            for item in control.get("invocationInputs", []):
                turn.pending.extend(
                    v for k, v in item.items() if k in ("apiInvocationInput", "functionInvocationInput")
                )
    return turn


def describe(action: Mapping[str, Any]) -> str:
    """The quote shown to the human: the operation and its parameters, as the agent would send them."""
    where = action.get("apiPath") or action.get("function") or "?"
    values = {p["name"]: p.get("value") for p in action.get("parameters", [])}
    body = action.get("requestBody", {}).get("content", {}).get("application/json", {})
    values.update({p["name"]: p.get("value") for p in body.get("properties", [])})
    return f"{action.get('httpMethod', '')} {where} {json.dumps(values, ensure_ascii=False)}".strip()


def confirmation_results(pending: list[dict[str, Any]], confirmed: bool) -> list[dict[str, Any]]:
    """``returnControlInvocationResults`` answering every pending action with CONFIRM or DENY."""
    state = "CONFIRM" if confirmed else "DENY"
    results = []
    for action in pending:
        if "function" in action:
            picked = {k: action[k] for k in ("actionGroup", "function")}
            results.append({"functionResult": {**picked, "confirmationState": state}})
        else:
            picked = {k: action[k] for k in ("actionGroup", "apiPath", "httpMethod") if k in action}
            results.append({"apiResult": {**picked, "confirmationState": state}})
    return results


def chat(
    client: Any,
    *,
    agent_id: str,
    alias_id: str,
    session_id: str,
    user_id: str,
    text: str,
    answer: Callable[[str], bool],
    out: TextIO = sys.stdout,
) -> Turn:
    """One customer utterance, through every confirmation it needs; returns the last turn."""
    session_state: dict[str, Any] = {"sessionAttributes": {"user_id": user_id}}
    request: dict[str, Any] = {"inputText": text}
    for _ in range(MAX_ROUNDS):
        response = client.invoke_agent(
            agentId=agent_id, agentAliasId=alias_id, sessionId=session_id, sessionState=session_state, **request
        )
        turn = read_turn(response["completion"])
        if turn.text:
            print(turn.text, file=out)
        if not turn.pending:
            return turn
        quote = "\n".join(describe(action) for action in turn.pending)
        confirmed = answer(quote)
        session_state = {
            "sessionAttributes": {"user_id": user_id},
            "invocationId": turn.invocation_id,
            "returnControlInvocationResults": confirmation_results(turn.pending, confirmed),
        }
        request = {}  # Bedrock ignores inputText when results are returned
    raise RuntimeError(f"more than {MAX_ROUNDS} confirmations for one utterance")


def ask_on_terminal(quote: str) -> bool:
    print(f"The agent wants to run:\n{quote}", file=sys.stderr)
    return input("Confirm? [y/N] ").strip().lower() in ("y", "yes", "s", "si", "sí")


def agent_command(
    agent_id: str, alias_id: str, user_id: str, session_id: str, text: str, confirm: bool | None = None
) -> int:
    import boto3
    from botocore.config import Config

    def answer(quote: str) -> bool:
        if confirm is None:
            return ask_on_terminal(quote)
        print(f"The agent wants to run:\n{quote}\n{'confirmed' if confirm else 'denied'}", file=sys.stderr)
        return confirm

    # An agent's turn runs the model and the action groups: far longer than a DynamoDB call.
    config = Config(read_timeout=120, retries={"mode": "standard", "total_max_attempts": 2})
    client = boto3.session.Session().client("bedrock-agent-runtime", config=config)
    chat(client, agent_id=agent_id, alias_id=alias_id, session_id=session_id, user_id=user_id, text=text, answer=answer)
    return 0
