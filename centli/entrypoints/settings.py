"""Process settings, read once from the environment (its only reader: CENTLI_*, and the AWS endpoints).

Each deployed function has a role (``CENTLI_ROLE``) and gets only the settings
that role uses: a variable another role needs is refused, so a function never
holds a secret it has no use for. ``local`` (the default: a laptop, tests, the
CLI) accepts every setting.

Secrets (the cursor key, the AgentCore identity key) come either as a plain
value (``CENTLI_CURSOR_SECRET``: local runs) or as a Secrets Manager ARN
(``CENTLI_CURSOR_SECRET_ARN``: AWS, read lazily and refreshed, see
:mod:`centli.adapters.secrets`). Setting both for one secret is refused rather
than one silently winning.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from centli.domain.errors import InvalidInput
from centli.domain.events import EVENT_BUS_NAME
from centli.domain.ledger import TransferLimits
from centli.domain.money import DEFAULT_CURRENCY, Money
from centli.domain.policy import BankPolicy, parse_int

if TYPE_CHECKING:
    from centli.adapters.dynamodb.schema import TableNames
    from centli.adapters.secrets import SecretSource

Backend = Literal["memory", "sqlite", "dynamodb"]
Role = Literal["local", "action-group", "outbox-relay", "saga", "sweeper", "interceptor"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogStream = Literal["stdout", "stderr"]
#: Good enough for throwaway local runs only; the DynamoDB backend refuses to start without a real secret.
LOCAL_CURSOR_SECRET = "centli-local-development-cursor-secret"  # noqa: S105
_BUS_NAME = re.compile(r"[A-Za-z0-9._\-/:]{1,1600}")
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+")
_MAX_PURCHASE_TIMEOUT = 7 * 24 * 3600
#: How a boolean setting may be written (case-insensitive).
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})

#: Variable names, by hand: pydantic-settings would do this, at a cost to every cold start.
_ENV = {
    "role": "CENTLI_ROLE",
    "backend": "CENTLI_BACKEND",
    "sqlite_path": "CENTLI_SQLITE_PATH",
    "cursor_secret": "CENTLI_CURSOR_SECRET",
    "limit_per_transfer": "CENTLI_LIMIT_PER_TRANSFER",
    "limit_daily": "CENTLI_LIMIT_DAILY",
    "timezone": "CENTLI_TIMEZONE",
    "cursor_secret_arn": "CENTLI_CURSOR_SECRET_ARN",
    "agentcore_identity_secret": "CENTLI_AGENTCORE_IDENTITY_SECRET",
    "agentcore_identity_secret_arn": "CENTLI_AGENTCORE_IDENTITY_SECRET_ARN",
    "agentcore_identity_claim": "CENTLI_AGENTCORE_IDENTITY_CLAIM",
    "agentcore_targets": "CENTLI_AGENTCORE_TARGETS",
    "secret_ttl_seconds": "CENTLI_SECRET_TTL_SECONDS",
    "log_level": "CENTLI_LOG_LEVEL",
    "log_stream": "CENTLI_LOG_STREAM",
    "event_bus_name": "CENTLI_EVENT_BUS_NAME",
    "inprocess_relay": "CENTLI_INPROCESS_RELAY",
    "purchase_timeout_seconds": "CENTLI_PURCHASE_TIMEOUT_SECONDS",
    "tables": "CENTLI_TABLE_<NAME>",
}
_TABLE_PREFIX = "CENTLI_TABLE_"
#: boto3's own variables; read here only to tell a local endpoint (moto) from AWS (see aws_endpoint).
_ENDPOINT_PREFIX = "AWS_ENDPOINT_URL"
#: What builds the bank's policy (limits, time zone, purchase timeout), and the backend: every ledger role.
_LEDGER = frozenset(
    {"backend", "tables", "limit_per_transfer", "limit_daily", "timezone", "purchase_timeout_seconds", "log_level"}
)
#: The settings each deployed role uses (``local`` uses them all). template.yaml gives each function these only.
ROLE_SETTINGS: dict[str, frozenset[str]] = {
    "action-group": _LEDGER
    | {
        "cursor_secret",
        "cursor_secret_arn",
        "agentcore_identity_secret",
        "agentcore_identity_secret_arn",
        "secret_ttl_seconds",
    },
    "outbox-relay": frozenset({"backend", "tables", "event_bus_name", "log_level"}),
    "saga": _LEDGER,
    "sweeper": _LEDGER | {"event_bus_name"},
    "interceptor": frozenset(
        {
            "agentcore_identity_secret",
            "agentcore_identity_secret_arn",
            "agentcore_identity_claim",
            "agentcore_targets",
            "secret_ttl_seconds",
            "log_level",
        }
    ),
}
#: The gateway targets of the action groups (the interceptor asserts identity to their tools only).
DEFAULT_AGENTCORE_TARGETS = "centli-core-banking,centli-marketplace"


class SettingsError(ValueError):
    """The environment does not describe a process that can start safely."""


def _variables(env: Mapping[str, str], prefix: str) -> dict[str, str]:
    """``PREFIX_NAME=value`` variables as ``{"name": value}`` (``PREFIX=value`` as ``{"": value}``)."""
    return {k.removeprefix(prefix).lstrip("_").lower(): v for k, v in env.items() if k.startswith(prefix) and v}


class Secret:
    """A secret value that never shows in a repr, a log line or an error message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret(value: object) -> Secret | None:
    """A plain string or anything with ``get_secret_value`` (pydantic's SecretStr, in callers' code)."""
    if value is None or isinstance(value, Secret):
        return value
    reveal = getattr(value, "get_secret_value", None)
    text = reveal() if callable(reveal) else value
    if not isinstance(text, str):
        raise TypeError("a secret must be text")
    return Secret(text)


# A frozen dataclass checked by hand, not a pydantic model: pydantic's import and model build would be a
# large share of a Lambda cold start that needs none of it (docs/performance.md).
@dataclass(frozen=True, slots=True)
class Settings:
    role: Role = "local"
    #: The embedded default; a Lambda function must name its backend (see from_env).
    backend: Backend = "sqlite"
    sqlite_path: str = ".centli/centli.db"
    #: A plain string is accepted and kept as a :class:`Secret`.
    cursor_secret: Secret | None = None
    #: Secrets Manager ARN of the cursor key (instead of ``cursor_secret``), read after a SnapStart restore.
    cursor_secret_arn: str | None = None
    limit_per_transfer: str = "50000.00"
    limit_daily: str = "100000.00"
    timezone: str = "America/Mexico_City"
    #: HMAC secret shared with the AgentCore Gateway interceptor; unset = AgentCore calls refused.
    agentcore_identity_secret: Secret | None = None
    agentcore_identity_secret_arn: str | None = None
    #: (interceptor) the claim of the gateway-validated token that holds the customer id.
    agentcore_identity_claim: str = "sub"
    #: (interceptor) the gateway targets whose tools receive the identity assertion, comma separated.
    agentcore_targets: str = DEFAULT_AGENTCORE_TARGETS
    #: How long a secret read from Secrets Manager is used before it is read again (rotation), 0..86400.
    secret_ttl_seconds: int = 300
    log_level: LogLevel = "INFO"
    #: Where log lines go (read by centli.entrypoints.logs); ``centli mcp`` always uses stderr.
    log_stream: LogStream = "stdout"
    event_bus_name: str = EVENT_BUS_NAME
    #: Deliver the saga in-process after each write; unset = on for memory and sqlite, off for dynamodb
    #: (on AWS the outbox stream relays to EventBridge). ``true`` with dynamodb is for local tries against moto.
    inprocess_relay: bool | None = None
    #: A purchase still PENDING this long after it was made is voided by the sweeper (at most 7 days).
    purchase_timeout_seconds: int = 900
    #: DynamoDB table names by TableNames field (``CENTLI_TABLE_ACCOUNTS`` -> ``accounts``); unset = the template's.
    tables: dict[str, str] = field(default_factory=dict)
    #: AWS endpoints by service ("" for all, from AWS_ENDPOINT_URL): set only against a local endpoint (moto).
    aws_endpoints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("cursor_secret", "agentcore_identity_secret"):
            object.__setattr__(self, name, _secret(getattr(self, name)))
        for name in ("limit_per_transfer", "limit_daily"):
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, getattr(self, name).strip())
        problems = [f"{_ENV[name]}: {message}" for name, message in _field_problems(self)]
        problems.extend(_combination_problems(self))
        if problems:
            raise SettingsError("; ".join(problems))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {name: env[var] for name, var in _ENV.items() if env.get(var, "") != ""}
        maps: dict[str, Any] = {
            "tables": _variables(env, _TABLE_PREFIX),
            "aws_endpoints": _variables(env, _ENDPOINT_PREFIX),
        }
        if "backend" in values:
            values["backend"] = values["backend"].lower()
        elif env.get("AWS_LAMBDA_FUNCTION_NAME") and env.get(_ENV["role"]) != "interceptor":
            # Fail closed: a function without its configuration must not serve a throwaway bank.
            raise SettingsError("CENTLI_BACKEND: required in AWS Lambda (memory, sqlite or dynamodb)")
        if "log_level" in values:
            values["log_level"] = values["log_level"].upper()
        if "log_stream" in values:
            values["log_stream"] = values["log_stream"].lower()
        role = values.get("role", "local")
        given = set(values) | ({"tables"} if maps["tables"] else set())
        unused = sorted(given - ROLE_SETTINGS[role] - {"role"}) if role in ROLE_SETTINGS else []
        if unused:
            names = ", ".join(_ENV[name] for name in unused)
            raise SettingsError(f"{names}: not used by the {role} role (give each function only its settings)")
        problems: list[str] = []
        for name in ("secret_ttl_seconds", "purchase_timeout_seconds"):
            if name in values:
                try:
                    values[name] = parse_int(values[name], _ENV[name])
                except InvalidInput:
                    problems.append(f"{_ENV[name]}: must be a whole number of seconds")
                    del values[name]
        if "inprocess_relay" in values:
            flag = values["inprocess_relay"].strip().lower()
            if flag in _TRUE | _FALSE:
                values["inprocess_relay"] = flag in _TRUE
            else:
                problems.append(f"{_ENV['inprocess_relay']}: must be true or false")
                del values["inprocess_relay"]
        if problems:
            raise SettingsError("; ".join(problems))
        return cls(**values, **maps)

    def table_names(self) -> TableNames:
        """The DynamoDB tables: the template's names, or those the environment gives."""
        from centli.adapters.dynamodb.schema import TableNames

        return TableNames(**self.tables)

    def aws_endpoint(self, service: str) -> str | None:
        """``AWS_ENDPOINT_URL_<SERVICE>`` or ``AWS_ENDPOINT_URL`` (a local endpoint such as moto), else None (AWS)."""
        return self.aws_endpoints.get(service) or self.aws_endpoints.get("")

    def relays_in_process(self) -> bool:
        return self.backend != "dynamodb" if self.inprocess_relay is None else self.inprocess_relay

    def cursor_secret_source(self) -> SecretSource:
        """The cursor key: read from Secrets Manager on first use (by ARN), else the plain or local value.

        Build it once per process (the container does): the source caches what it read.
        """
        from centli.adapters.secrets import SecretsManagerSecret, constant_secret

        if self.cursor_secret_arn is not None:
            return SecretsManagerSecret(self.cursor_secret_arn, ttl_seconds=self.secret_ttl_seconds)
        secret = self.cursor_secret.get_secret_value() if self.cursor_secret else LOCAL_CURSOR_SECRET
        return constant_secret(secret.encode("utf-8"))

    def identity_secret_source(self) -> SecretSource | None:
        """The AgentCore identity key, or None (AgentCore calls refused). Built once per process."""
        from centli.adapters.secrets import SecretsManagerSecret, constant_secret

        if self.agentcore_identity_secret_arn is not None:
            return SecretsManagerSecret(self.agentcore_identity_secret_arn, ttl_seconds=self.secret_ttl_seconds)
        if self.agentcore_identity_secret is None:
            return None
        return constant_secret(self.agentcore_identity_secret.get_secret_value().encode("utf-8"))

    def agentcore_target_names(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.agentcore_targets.split(",") if t.strip())

    def policy(self) -> BankPolicy:
        limits = TransferLimits(
            per_transfer=Money.of(self.limit_per_transfer, DEFAULT_CURRENCY),
            daily_total=Money.of(self.limit_daily, DEFAULT_CURRENCY),
        )
        return BankPolicy(
            limits={DEFAULT_CURRENCY: limits},
            timezone=ZoneInfo(self.timezone),
            purchase_timeout=timedelta(seconds=self.purchase_timeout_seconds),
        )


def _field_problems(settings: Settings) -> list[tuple[str, str]]:
    """Each setting's own checks, as (field, what is wrong)."""
    found: list[tuple[str, str]] = []
    for name, allowed in (
        ("role", Role),
        ("backend", Backend),
        ("log_level", LogLevel),
        ("log_stream", LogStream),
    ):
        if getattr(settings, name) not in get_args(allowed):
            found.append((name, f"must be one of {', '.join(get_args(allowed))}"))
    for name in ("limit_per_transfer", "limit_daily"):
        problem = _amount_problem(getattr(settings, name))
        if problem:
            found.append((name, problem))
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        found.append(("timezone", "is not a known time zone"))
    if not (isinstance(settings.event_bus_name, str) and _BUS_NAME.fullmatch(settings.event_bus_name)):
        found.append(("event_bus_name", "must be an EventBridge bus name or ARN (letters, digits and . - _ / : only)"))
    for name in ("cursor_secret_arn", "agentcore_identity_secret_arn"):
        arn = getattr(settings, name)
        if arn is not None and not (isinstance(arn, str) and _SECRET_ARN.fullmatch(arn)):
            found.append((name, "must be a Secrets Manager secret ARN"))
    for name, high in (("secret_ttl_seconds", 86400), ("purchase_timeout_seconds", _MAX_PURCHASE_TIMEOUT)):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            found.append((name, f"must be between 0 and {high} seconds"))
    for name in ("cursor_secret", "agentcore_identity_secret"):
        secret = getattr(settings, name)
        if secret is not None and len(secret.get_secret_value().encode("utf-8")) < 16:
            found.append((name, "must be at least 16 bytes"))
    for name in ("sqlite_path", "agentcore_identity_claim", "agentcore_targets"):
        if not isinstance(getattr(settings, name), str):
            found.append((name, "must be text"))
    if settings.inprocess_relay not in (None, True, False):
        found.append(("inprocess_relay", "must be true or false"))
    if settings.tables:
        from centli.adapters.dynamodb.schema import TableNames  # only where DynamoDB is configured

        unknown = sorted(set(settings.tables) - {name for name, _ in TableNames().items()})
        if unknown:
            found.append(("tables", f"no such table: {', '.join(_TABLE_PREFIX + name.upper() for name in unknown)}"))
    return found


def _amount_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be an amount such as 50000.00"
    try:
        money = Money.of(value.strip())
    except ValueError:
        return "must be an amount such as 50000.00"
    return "must be greater than zero" if money.minor <= 0 else None


def _combination_problems(settings: Settings) -> list[str]:
    found: list[str] = []
    for value, arn in (
        ("cursor_secret", "cursor_secret_arn"),
        ("agentcore_identity_secret", "agentcore_identity_secret_arn"),
    ):
        if getattr(settings, value) is not None and getattr(settings, arn) is not None:
            found.append(f"set {_ENV[value]} or {_ENV[arn]}, not both")
    pages = settings.role in ("local", "action-group")
    keyless = settings.cursor_secret is None and settings.cursor_secret_arn is None
    if pages and settings.backend == "dynamodb" and keyless:
        found.append(
            "CENTLI_CURSOR_SECRET is required with the dynamodb backend (or its Secrets Manager ARN, "
            "CENTLI_CURSOR_SECRET_ARN)"
        )
    return found
