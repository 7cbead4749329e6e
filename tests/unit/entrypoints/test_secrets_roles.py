"""Secrets by ARN, read lazily and refreshed; each deployed role gets only its settings; the sweeper's metrics;
the SnapStart priming hook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dependency_injector import providers

from centli.adapters.secrets import SecretsManagerSecret, SecretUnavailable
from centli.entrypoints import aws_lambda, metrics
from centli.entrypoints.container import Container
from centli.entrypoints.settings import ROLE_SETTINGS, Settings, SettingsError
from centli.entrypoints.snapstart import prime, reseed
from tests.unit.entrypoints.conftest import Harness

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:centli/cursor-secret-AbCdEf"
ARN2 = "arn:aws:secretsmanager:us-east-1:123456789012:secret:centli/agentcore-identity-secret-AbCdEf"


class FakeSecretsManager:
    """GetSecretValue answers from ``values`` (the current version); ``down`` makes it fail."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.down = False
        self.reads = 0

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:
        self.reads += 1
        if self.down:
            raise ConnectionError("Secrets Manager unreachable")
        return {"ARN": SecretId, "SecretString": self.value}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(fake: FakeSecretsManager, clock: Clock) -> SecretsManagerSecret:
    return SecretsManagerSecret(ARN, ttl_seconds=300, grace_seconds=900, client_factory=lambda: fake, monotonic=clock)


def test_a_secret_is_read_on_first_use_then_cached_until_its_ttl() -> None:
    fake, clock = FakeSecretsManager("v1-0123456789abcdef"), Clock()
    secret = source(fake, clock)
    assert fake.reads == 0  # building it reads nothing (SnapStart: nothing frozen into the snapshot)
    assert secret() == b"v1-0123456789abcdef"
    clock.now += 299
    assert secret() == b"v1-0123456789abcdef" and fake.reads == 1


def test_a_rotation_takes_effect_after_the_ttl() -> None:
    fake, clock = FakeSecretsManager("v1-0123456789abcdef"), Clock()
    secret = source(fake, clock)
    secret()
    fake.value = "v2-0123456789abcdef"  # rotated
    assert secret() == b"v1-0123456789abcdef"
    clock.now += 300
    assert secret() == b"v2-0123456789abcdef" and fake.reads == 2


def test_an_outage_keeps_the_last_value_for_a_grace_period_only() -> None:
    fake, clock = FakeSecretsManager("v1-0123456789abcdef"), Clock()
    secret = source(fake, clock)
    secret()
    fake.down = True
    clock.now += 300 + 899
    assert secret() == b"v1-0123456789abcdef"
    clock.now += 1
    with pytest.raises(SecretUnavailable):
        secret()


def test_without_any_value_an_outage_fails_and_a_short_secret_is_refused() -> None:
    fake, clock = FakeSecretsManager("v1-0123456789abcdef"), Clock()
    fake.down = True
    with pytest.raises(SecretUnavailable):
        source(fake, clock)()
    with pytest.raises(SecretUnavailable):
        source(FakeSecretsManager("short"), clock)()


@pytest.mark.parametrize(
    ("env", "mentioned"),
    [
        (
            {"CENTLI_ROLE": "saga", "CENTLI_BACKEND": "dynamodb", "CENTLI_CURSOR_SECRET_ARN": ARN},
            "not used by the saga",
        ),
        ({"CENTLI_ROLE": "outbox-relay", "CENTLI_BACKEND": "dynamodb", "CENTLI_LIMIT_DAILY": "5.00"}, "LIMIT_DAILY"),
        ({"CENTLI_ROLE": "interceptor", "CENTLI_BACKEND": "dynamodb"}, "CENTLI_BACKEND: not used"),
        ({"CENTLI_CURSOR_SECRET": "0123456789abcdef0", "CENTLI_CURSOR_SECRET_ARN": ARN}, "not both"),
        ({"CENTLI_ROLE": "action-group", "CENTLI_BACKEND": "dynamodb"}, "CENTLI_CURSOR_SECRET_ARN"),
        ({"CENTLI_CURSOR_SECRET_ARN": "not-an-arn"}, "CENTLI_CURSOR_SECRET_ARN"),
        ({"CENTLI_ROLE": "teller"}, "CENTLI_ROLE"),
    ],
)
def test_each_role_takes_only_its_settings(env: dict[str, str], mentioned: str) -> None:
    with pytest.raises(SettingsError, match=mentioned):
        Settings.from_env(env)


def test_roles_that_page_nothing_need_no_cursor_secret() -> None:
    for role in ("saga", "sweeper", "outbox-relay"):
        assert Settings.from_env({"CENTLI_ROLE": role, "CENTLI_BACKEND": "dynamodb"}).role == role
    lambda_env = {"AWS_LAMBDA_FUNCTION_NAME": "centli-agentcore-interceptor", "CENTLI_ROLE": "interceptor"}
    assert Settings.from_env({**lambda_env, "CENTLI_AGENTCORE_IDENTITY_SECRET_ARN": ARN2}).backend == "sqlite"
    assert "cursor_secret_arn" not in ROLE_SETTINGS["saga"] | ROLE_SETTINGS["interceptor"]


def test_the_container_reads_no_secret_until_a_call_needs_one(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"CENTLI_ROLE": "action-group", "CENTLI_BACKEND": "memory", "CENTLI_CURSOR_SECRET_ARN": ARN}
    container = Container()
    container.settings.override(providers.Object(Settings.from_env(env)))
    fake = FakeSecretsManager("cursor-key-0123456789")
    monkeypatch.setattr("centli.adapters.secrets._secretsmanager_client", lambda: fake)
    app = container.application()
    assert fake.reads == 0 and container.cursor_secret() is container.cursor_secret()  # one source per process
    page = app.banking.list_transactions("u-ana", "acc-0001", limit=1)
    assert fake.reads == (1 if page.next_cursor else 0)


def test_priming_builds_no_client_reads_no_secret_and_no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"CENTLI_ROLE": "action-group", "CENTLI_BACKEND": "dynamodb", "CENTLI_CURSOR_SECRET_ARN": ARN}
    container = Container()
    container.settings.override(providers.Object(Settings.from_env(env)))
    touched: list[str] = []
    monkeypatch.setattr("centli.entrypoints.container.make_store", lambda *a: touched.append("store"))
    monkeypatch.setattr("centli.adapters.secrets._secretsmanager_client", lambda: touched.append("secret"))
    prime(container)
    assert touched == []
    from centli.entrypoints.wire import BINDINGS

    built = [m.__pydantic_complete__ for b in BINDINGS.values() for m in (b.request, b.response)]
    assert all(built)  # the wire models are in the snapshot, ready for the first write after a restore
    import snapshot_restore_py

    registered = [entry[0] for entry in snapshot_restore_py._before_snapshot_registry]
    assert prime in registered  # aws_lambda registered it at import (Lambda runs it before the snapshot)
    assert reseed in [entry[0] for entry in snapshot_restore_py._after_restore_registry]
    assert aws_lambda.container is not None


def test_each_restored_environment_draws_its_own_jitter() -> None:
    import random

    state = random.getstate()
    first = [random.random() for _ in range(3)]
    random.setstate(state)  # two environments restored from one snapshot start from the same state
    reseed()
    assert [random.random() for _ in range(3)] != first


def test_the_sweeper_emits_its_metrics_as_emf(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert aws_lambda.sweeper_handler({}, None) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert len(lines) == 1
    (directive,) = lines[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == metrics.NAMESPACE
    assert {m["Name"] for m in directive["Metrics"]} == {metrics.STUCK_ORDERS, metrics.REPUBLISHED}
    assert ["service"] in directive["Dimensions"] and lines[0]["service"] == metrics.SWEEPER_SERVICE
    assert lines[0][metrics.STUCK_ORDERS] == [0.0]  # Powertools writes each metric as a list of values


def test_log_pseudonyms_are_keyed_by_the_deployments_cursor_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """On AWS the cursor key is a Secrets Manager secret: every function's pseudonyms still agree."""
    from centli.entrypoints import logs

    monkeypatch.setattr(logs, "_key_source", [])
    fake = FakeSecretsManager("shared-deployment-key-0123")
    monkeypatch.setattr("centli.adapters.secrets._secretsmanager_client", lambda: fake)
    env = {"CENTLI_ROLE": "action-group", "CENTLI_BACKEND": "memory", "CENTLI_CURSOR_SECRET_ARN": ARN}
    refs = []
    for _ in range(2):  # two processes (functions) of one deployment
        container = Container()
        container.settings.override(providers.Object(Settings.from_env(env)))
        container.cursor_secret()
        refs.append(logs.user_ref("u-ana"))
    assert refs[0] == refs[1] and refs[0] != logs.user_ref("u-luis")
    fake.value = "another-deployment-key-99"
    container.cursor_secret.reset()
    container.cursor_secret()
    assert logs.user_ref("u-ana") != refs[0]
    fake.down = True
    container.cursor_secret.reset()
    container.cursor_secret()
    assert logs.user_ref("u-ana") is not None  # an unreadable key never fails the call being logged
