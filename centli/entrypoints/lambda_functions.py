"""The Lambda functions the local runtime can invoke, named as ``template.yaml`` names them.

One small table (checked against ``template.yaml`` by a test) serves the local
Invoke API (``POST /2015-03-31/functions/{name}/invocations``) and
``centli invoke``. A function is found by its ``FunctionName``, its logical id
or an ARN (full or partial), with or without a qualifier, as AWS accepts.
No web framework is imported here: the CLI invokes in-process without one.
"""

from __future__ import annotations

import importlib
import json
import re
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: What a local ARN says for the region and account (nothing is deployed anywhere).
LOCAL_REGION: Final = "us-east-1"
LOCAL_ACCOUNT: Final = "123456789012"
#: Invocation types of the Invoke API.
REQUEST_RESPONSE: Final = "RequestResponse"
EVENT: Final = "Event"
DRY_RUN: Final = "DryRun"
INVOCATION_TYPES: Final = (REQUEST_RESPONSE, EVENT, DRY_RUN)

# name, partial ARN (account:function:name) or full ARN, each with an optional :qualifier
_REFERENCE = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:|\d{12}:function:)?"
    r"(?P<name>[a-zA-Z0-9_-]{1,140})(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]{1,128}))?$"
)


@dataclass(frozen=True, slots=True)
class LambdaFunction:
    logical_id: str
    name: str
    #: The ``Handler`` of template.yaml: ``module.function``.
    handler: str

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.name}"

    def load(self) -> Callable[[Any, Any], Any]:
        module, _, attribute = self.handler.rpartition(".")
        handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module), attribute)
        return handler


#: The action groups and the sweeper (the saga's own functions are fed by AWS services, not invoked).
FUNCTIONS: Final = (
    LambdaFunction("CoreBankingFunction", "centli-core-banking", "centli.entrypoints.aws_lambda.core_banking_handler"),
    LambdaFunction("MarketplaceFunction", "centli-marketplace", "centli.entrypoints.aws_lambda.marketplace_handler"),
    LambdaFunction("SweeperFunction", "centli-sweeper", "centli.entrypoints.aws_lambda.sweeper_handler"),
)


def find_function(reference: str) -> LambdaFunction | None:
    """The function a name, logical id or ARN (with an optional qualifier) refers to."""
    found = _REFERENCE.match(reference)
    if found is None:
        return None
    name = found.group("name")
    return next((f for f in FUNCTIONS if name in (f.name, f.logical_id)), None)


@dataclass(frozen=True, slots=True)
class ClientContext:
    custom: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)
    client: Any = None


@dataclass(frozen=True, slots=True)
class LocalContext:
    """What the handlers read from a Lambda context object."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    client_context: ClientContext | None
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass(frozen=True, slots=True)
class InvokeResult:
    #: The function's answer as JSON bytes (an error object when ``function_error`` is set).
    payload: bytes
    #: ``Unhandled`` when the handler raised, as Lambda's ``X-Amz-Function-Error`` says.
    function_error: str | None
    request_id: str


def invoke(function: LambdaFunction, event: Any, custom: Mapping[str, Any] | None = None) -> InvokeResult:
    """Run the handler as Lambda would; an exception becomes Lambda's error payload, never escapes."""
    request_id = str(uuid.uuid4())
    context = LocalContext(
        function.name, function.arn, request_id, None if custom is None else ClientContext(custom=dict(custom))
    )
    try:
        answer = function.load()(event, context)
        return InvokeResult(json.dumps(answer, ensure_ascii=False).encode("utf-8"), None, request_id)
    except Exception as error:
        payload = {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": request_id,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
        return InvokeResult(json.dumps(payload).encode("utf-8"), "Unhandled", request_id)


def split_wrapped_event(document: Any) -> tuple[Any, dict[str, Any] | None]:
    """An AgentCore example file (``{"event": ..., "context_client_context_custom": ...}``) or a plain event."""
    if (
        isinstance(document, dict)
        and set(document) == {"event", "context_client_context_custom"}
        and isinstance(document["context_client_context_custom"], dict)
    ):
        return document["event"], document["context_client_context_custom"]
    return document, None
