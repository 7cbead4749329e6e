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
from datetime import timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from centli.domain.events import EVENT_BUS_NAME
from centli.domain.ledger import TransferLimits
from centli.domain.money import DEFAULT_CURRENCY, Money
from centli.domain.policy import BankPolicy

if TYPE_CHECKING:
    from centli.adapters.dynamodb.schema import TableNames
    from centli.adapters.secrets import SecretSource

Backend = Literal["memory", "sqlite", "dynamodb"]
Role = Literal["local", "action-group", "outbox-relay", "saga", "sweeper", "interceptor"]
#: Good enough for throwaway local runs only; the DynamoDB backend refuses to start without a real secret.
LOCAL_CURSOR_SECRET = "centli-local-development-cursor-secret"  # noqa: S105
_BUS_NAME = re.compile(r"[A-Za-z0-9._\-/:]{1,1600}")

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


def _variables(env: Mapping[str, str], prefix: str) -> dict[str, str]:
    """``PREFIX_NAME=value`` variables as ``{"name": value}`` (``PREFIX=value`` as ``{"": value}``)."""
    return {k.removeprefix(prefix).lstrip("_").lower(): v for k, v in env.items() if k.startswith(prefix) and v}


def _describe(location: tuple[int | str, ...], message: str) -> str:
    return f"{_ENV.get(str(location[0]), location[0])}: {message}" if location else message


class SettingsError(ValueError):
    """The environment does not describe a process that can start safely."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role = "local"
    #: The embedded default; a Lambda function must name its backend (see from_env).
    backend: Backend = "sqlite"
    sqlite_path: str = ".centli/centli.db"
    cursor_secret: SecretStr | None = None
    #: Secrets Manager ARN of the cursor key (instead of ``cursor_secret``), read after a SnapStart restore.
    cursor_secret_arn: str | None = None
    limit_per_transfer: str = "50000.00"
    limit_daily: str = "100000.00"
    timezone: str = "America/Mexico_City"
    #: HMAC secret shared with the AgentCore Gateway interceptor; unset = AgentCore calls refused.
    agentcore_identity_secret: SecretStr | None = None
    agentcore_identity_secret_arn: str | None = None
    #: (interceptor) the claim of the gateway-validated token that holds the customer id.
    agentcore_identity_claim: str = "sub"
    #: (interceptor) the gateway targets whose tools receive the identity assertion, comma separated.
    agentcore_targets: str = DEFAULT_AGENTCORE_TARGETS
    #: How long a secret read from Secrets Manager is used before it is read again (rotation).
    secret_ttl_seconds: int = 300
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: Where log lines go (read by centli.entrypoints.logs); ``centli mcp`` always uses stderr.
    log_stream: Literal["stdout", "stderr"] = "stdout"
    event_bus_name: str = EVENT_BUS_NAME
    #: Deliver the saga in-process after each write; unset = on for memory and sqlite, off for dynamodb
    #: (on AWS the outbox stream relays to EventBridge). ``true`` with dynamodb is for local tries against moto.
    inprocess_relay: bool | None = None
    #: A purchase still PENDING this long after it was made is voided by the sweeper.
    purchase_timeout_seconds: int = Field(default=900, ge=0, le=7 * 24 * 3600)
    #: DynamoDB table names by TableNames field (``CENTLI_TABLE_ACCOUNTS`` -> ``accounts``); unset = the template's.
    tables: dict[str, str] = Field(default_factory=dict)
    #: AWS endpoints by service ("" for all, from AWS_ENDPOINT_URL): set only against a local endpoint (moto).
    aws_endpoints: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {name: env[var] for name, var in _ENV.items() if env.get(var, "") != ""}
        maps = {"tables": _variables(env, _TABLE_PREFIX), "aws_endpoints": _variables(env, _ENDPOINT_PREFIX)}
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
        try:
            return cls.model_validate({**values, **maps})
        except ValidationError as error:
            problems = "; ".join(_describe(e["loc"], e["msg"]) for e in error.errors())
            raise SettingsError(problems) from None

    @field_validator("limit_per_transfer", "limit_daily")
    @classmethod
    def _positive_amount(cls, value: str) -> str:
        try:
            money = Money.of(value.strip())
        except ValueError:
            raise ValueError("must be an amount such as 50000.00") from None
        if money.minor <= 0:
            raise ValueError("must be greater than zero")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("is not a known time zone") from None
        return value

    @field_validator("event_bus_name")
    @classmethod
    def _bus_name(cls, value: str) -> str:
        if not _BUS_NAME.fullmatch(value):
            raise ValueError("must be an EventBridge bus name or ARN (letters, digits and . - _ / : only)")
        return value

    @field_validator("cursor_secret_arn", "agentcore_identity_secret_arn")
    @classmethod
    def _secret_arn(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+", value):
            raise ValueError("must be a Secrets Manager secret ARN")
        return value

    @field_validator("secret_ttl_seconds")
    @classmethod
    def _ttl(cls, value: int) -> int:
        if not 0 <= value <= 86400:
            raise ValueError("must be between 0 and 86400 seconds")
        return value

    @field_validator("cursor_secret", "agentcore_identity_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode("utf-8")) < 16:
            raise ValueError("must be at least 16 bytes")
        return value

    @model_validator(mode="after")
    def _secret_outside_local_runs(self) -> Settings:
        for value, arn in (
            ("cursor_secret", "cursor_secret_arn"),
            ("agentcore_identity_secret", "agentcore_identity_secret_arn"),
        ):
            if getattr(self, value) is not None and getattr(self, arn) is not None:
                raise ValueError(f"set {_ENV[value]} or {_ENV[arn]}, not both")
        pages = self.role in ("local", "action-group")
        if pages and self.backend == "dynamodb" and self.cursor_secret is None and self.cursor_secret_arn is None:
            raise ValueError(
                "CENTLI_CURSOR_SECRET is required with the dynamodb backend (or its Secrets Manager ARN, "
                "CENTLI_CURSOR_SECRET_ARN)"
            )
        return self

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, str]) -> dict[str, str]:
        if value:
            from centli.adapters.dynamodb.schema import TableNames  # only where DynamoDB is configured

            unknown = sorted(set(value) - {name for name, _ in TableNames().items()})
            if unknown:
                raise ValueError(f"no such table: {', '.join(_TABLE_PREFIX + name.upper() for name in unknown)}")
        return value

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
