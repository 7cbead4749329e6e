"""Lambda SnapStart: the priming hook, and what a snapshot may hold.

With SnapStart, Lambda initialises a published version once, snapshots the
environment's memory and starts new environments from that snapshot. Whatever
init holds is shared by every environment restored from it, so :func:`prime`
(run by Lambda before the snapshot) builds code and configuration only. It never
holds:

- a secret: secrets are read on first use, after the restore, and refreshed
  (:mod:`centli.adapters.secrets`);
- a boto3 client of the function: it would keep the init's credentials and
  connections (the clients are built on the first call);
- customer data, an id or a random value. The ``random`` module's state is
  in the snapshot all the same (imported modules seed it), so :func:`reseed`
  runs after every restore: retry jitter must differ between environments, or
  their retries would fall in step.

The hook is registered through ``snapshot_restore_py``, which Lambda's Python
runtimes provide; elsewhere (tests, local runs) there is nothing to register.
"""

from __future__ import annotations

from typing import Any

from centli.adapters.bedrock.events import parse_event, render
from centli.entrypoints.pipeline import AgentResult

#: A well-formed Bedrock call without an identity: parsing and rendering it touches no data.
_SYNTHETIC_CALL = {
    "messageVersion": "1.0",
    "agent": {"name": "centli", "id": "PRIMING", "alias": "PRIMING", "version": "1"},
    "inputText": "",
    "sessionId": "priming",
    "actionGroup": "core-banking",
    "apiPath": "/accounts",
    "httpMethod": "GET",
    "parameters": [],
    "sessionAttributes": {},
    "promptSessionAttributes": {},
}
#: The services whose clients the first calls create (their botocore machinery is imported here).
_SERVICES = ("dynamodb", "events", "secretsmanager")


def prime(container: Any) -> None:
    """Import and build what a first call needs, reading no secret, no customer data, no network."""
    import botocore.session

    import centli.adapters.dynamodb
    import centli.adapters.eventbridge
    import centli.adapters.secrets  # noqa: F401  (imported for the snapshot)

    settings = container.settings()  # the environment only: secret ARNs, never their values
    settings.policy()
    render(parse_event(_SYNTHETIC_CALL, None), AgentResult(200, {}))
    _build_wire_models()
    # botocore's client machinery (loaders, endpoint rules, serializers), on a throwaway session with
    # placeholder credentials: no request is made and the client is dropped before the snapshot.
    session = botocore.session.get_session()
    for service in _SERVICES:
        session.create_client(
            service,
            region_name="us-east-1",
            aws_access_key_id="priming",
            aws_secret_access_key="priming",  # noqa: S106 - a placeholder, never sent
        )


def _build_wire_models() -> None:
    """pydantic and every operation's request and response validators (built on first use otherwise).

    A cold start without SnapStart answers its first reads without them (centli.entrypoints.reads);
    in a snapshot they cost nothing, so every call after a restore finds them ready.
    """
    from centli.entrypoints.wire import BINDINGS

    for binding in BINDINGS.values():
        binding.request.model_rebuild(force=True)
        binding.response.model_rebuild(force=True)


def reseed() -> None:
    """A fresh seed for ``random`` (retry jitter) in each restored environment."""
    import random

    random.seed()  # from os.urandom


def register(container: Any) -> bool:
    """Register :func:`prime` (before the snapshot) and :func:`reseed` (after each restore);
    False outside a SnapStart runtime."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(prime, container)
    register_after_restore(reseed)
    return True
