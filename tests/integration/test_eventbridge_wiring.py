"""Settings and container wiring of the AWS saga: who relays the outbox, and to which bus."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from centli.adapters.eventbridge import EventBridgePublisher
from centli.adapters.memory import InMemoryStore
from centli.domain import events as ev
from centli.domain.events import DomainEvent
from centli.entrypoints.container import make_event_publisher, outbox_of
from centli.entrypoints.settings import Settings, SettingsError

SECRET = {"CENTLI_CURSOR_SECRET": "a-cursor-secret-of-32-characters"}


@pytest.mark.parametrize(
    ("env", "in_process"),
    [
        ({}, True),
        ({"CENTLI_BACKEND": "sqlite"}, True),
        ({"CENTLI_BACKEND": "dynamodb", **SECRET}, False),  # on AWS the outbox stream relays
        ({"CENTLI_BACKEND": "dynamodb", "CENTLI_INPROCESS_RELAY": "true", **SECRET}, True),  # local tries on moto
        ({"CENTLI_BACKEND": "sqlite", "CENTLI_INPROCESS_RELAY": "false"}, False),
    ],
)
def test_in_process_relay_is_explicit(env: dict[str, str], in_process: bool) -> None:
    settings = Settings.from_env(env)
    assert settings.relays_in_process() is in_process
    store = InMemoryStore()  # any store with a local outbox
    assert (outbox_of(store, settings) is store) is in_process


def test_a_store_without_a_local_outbox_is_never_relayed_in_process() -> None:
    assert outbox_of(object(), Settings(inprocess_relay=True)) is None


def test_the_bus_name_defaults_to_the_template_and_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the client is real; run alone, no earlier test sets one
    assert Settings.from_env({}).event_bus_name == "centli-event-bus"
    settings = Settings.from_env({"CENTLI_EVENT_BUS_NAME": "centli-staging-bus"})
    publisher = make_event_publisher(settings)
    assert isinstance(publisher, EventBridgePublisher)
    event = DomainEvent("evt-1", ev.ORDER_CONFIRMED, datetime(2026, 11, 24, tzinfo=UTC), "corr", None, "u-ana")
    assert publisher.entry(event)["EventBusName"] == "centli-staging-bus"


@pytest.mark.parametrize(
    ("env", "mentioned"),
    [
        ({"CENTLI_INPROCESS_RELAY": "sometimes"}, "CENTLI_INPROCESS_RELAY"),
        ({"CENTLI_EVENT_BUS_NAME": "my bus!"}, "CENTLI_EVENT_BUS_NAME"),
    ],
)
def test_bad_saga_settings_are_refused_clearly(env: dict[str, str], mentioned: str) -> None:
    with pytest.raises(SettingsError, match=mentioned):
        Settings.from_env(env)
