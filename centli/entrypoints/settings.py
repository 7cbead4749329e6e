"""Process settings, read once from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from centli.domain.events import EVENT_BUS_NAME
from centli.domain.ledger import TransferLimits
from centli.domain.money import DEFAULT_CURRENCY, Money
from centli.domain.policy import BankPolicy

Backend = Literal["memory", "sqlite", "dynamodb"]
#: Good enough for throwaway local runs only; the DynamoDB backend refuses to start without a real secret.
LOCAL_CURSOR_SECRET = "centli-local-development-cursor-secret"  # noqa: S105
_BUS_NAME = re.compile(r"[A-Za-z0-9._\-/:]{1,1600}")

_ENV = {
    "backend": "CENTLI_BACKEND",
    "sqlite_path": "CENTLI_SQLITE_PATH",
    "cursor_secret": "CENTLI_CURSOR_SECRET",
    "limit_per_transfer": "CENTLI_LIMIT_PER_TRANSFER",
    "limit_daily": "CENTLI_LIMIT_DAILY",
    "timezone": "CENTLI_TIMEZONE",
    "agentcore_identity_secret": "CENTLI_AGENTCORE_IDENTITY_SECRET",
    "log_level": "CENTLI_LOG_LEVEL",
    "event_bus_name": "CENTLI_EVENT_BUS_NAME",
    "inprocess_relay": "CENTLI_INPROCESS_RELAY",
    "purchase_timeout_seconds": "CENTLI_PURCHASE_TIMEOUT_SECONDS",
}


def _describe(location: tuple[int | str, ...], message: str) -> str:
    return f"{_ENV.get(str(location[0]), location[0])}: {message}" if location else message


class SettingsError(ValueError):
    """The environment does not describe a process that can start safely."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The embedded default; a Lambda function must name its backend (see from_env).
    backend: Backend = "sqlite"
    sqlite_path: str = ".centli/centli.db"
    cursor_secret: SecretStr | None = None
    limit_per_transfer: str = "50000.00"
    limit_daily: str = "100000.00"
    timezone: str = "America/Mexico_City"
    #: HMAC secret shared with the AgentCore Gateway interceptor; unset = AgentCore calls refused.
    agentcore_identity_secret: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    event_bus_name: str = EVENT_BUS_NAME
    #: Deliver the saga in-process after each write; unset = on for memory and sqlite, off for dynamodb
    #: (on AWS the outbox stream relays to EventBridge). ``true`` with dynamodb is for local tries against moto.
    inprocess_relay: bool | None = None
    #: A purchase still PENDING this long after it was made is voided by the sweeper.
    purchase_timeout_seconds: int = Field(default=900, ge=0, le=7 * 24 * 3600)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {name: env[var] for name, var in _ENV.items() if env.get(var, "") != ""}
        if "backend" in values:
            values["backend"] = values["backend"].lower()
        elif env.get("AWS_LAMBDA_FUNCTION_NAME"):
            # Fail closed: a function without its configuration must not serve a throwaway bank.
            raise SettingsError("CENTLI_BACKEND: required in AWS Lambda (memory, sqlite or dynamodb)")
        if "log_level" in values:
            values["log_level"] = values["log_level"].upper()
        try:
            return cls.model_validate(values)
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

    @field_validator("cursor_secret", "agentcore_identity_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode("utf-8")) < 16:
            raise ValueError("must be at least 16 bytes")
        return value

    @model_validator(mode="after")
    def _secret_outside_local_runs(self) -> Settings:
        if self.backend == "dynamodb" and self.cursor_secret is None:
            raise ValueError("CENTLI_CURSOR_SECRET is required with the dynamodb backend")
        return self

    def relays_in_process(self) -> bool:
        return self.backend != "dynamodb" if self.inprocess_relay is None else self.inprocess_relay

    def cursor_secret_bytes(self) -> bytes:
        secret = self.cursor_secret.get_secret_value() if self.cursor_secret else LOCAL_CURSOR_SECRET
        return secret.encode("utf-8")

    def identity_secret_bytes(self) -> bytes | None:
        if self.agentcore_identity_secret is None:
            return None
        return self.agentcore_identity_secret.get_secret_value().encode("utf-8")

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
