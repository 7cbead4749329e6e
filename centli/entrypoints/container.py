"""The dependency-injector container: adapters chosen by configuration, one per process.

Tests override providers (``container.store.override(providers.Object(store))``)
instead of patching. Storage adapters are imported inside their providers so a
process only loads the backend it uses.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from centli.adapters.secrets import SecretSource
from centli.adapters.system import SystemClock, UlidGenerator
from centli.domain.application import Application, bootstrap
from centli.entrypoints.coldstart import built_without_collection
from centli.entrypoints.settings import Settings
from centli.ports.clock import Clock, IdGenerator

#: Optional integrations dependency-injector probes for when it is imported: pydantic (v1 settings, for
#: ``Configuration.from_pydantic``), pydantic-settings, PyYAML (``from_yaml``) and the web frameworks whose
#: markers ``@inject`` wiring recognises. This container uses none of them, and the probe alone would import
#: pydantic, about a tenth of a Lambda cold start (docs/performance.md), on a call that may never need it.
UNUSED_INTEGRATIONS = frozenset(
    {"pydantic", "pydantic_settings", "yaml", "fastapi", "fast_depends", "starlette", "werkzeug"}
)


class _SkipIntegrations(MetaPathFinder):
    """Answers "not installed" for the integrations not loaded yet, while dependency-injector is imported.

    Whatever is already loaded stays visible, and the modules load normally afterwards (pydantic does,
    on the first call that needs its models).
    """

    def __init__(self, hidden: frozenset[str]) -> None:
        self.hidden = hidden

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.hidden:
            raise ModuleNotFoundError(f"{fullname} is not used by the container", name=fullname)
        return None


_skip = _SkipIntegrations(frozenset(name for name in UNUSED_INTEGRATIONS if name not in sys.modules))
sys.meta_path.insert(0, _skip)
try:
    from dependency_injector import containers, providers
finally:
    sys.meta_path.remove(_skip)


def read_settings() -> Settings:
    """The process's settings, read once from the environment; the log level and stream take effect here."""
    from centli.entrypoints.logs import configure

    settings = Settings.from_env()
    configure(level=settings.log_level, stream=settings.log_stream)
    return settings


def make_store(settings: Settings, clock: Clock) -> Any:
    """The configured store: memory (with the demo bank, for local tries), sqlite or dynamodb."""
    if settings.backend == "memory":
        from centli.adapters.memory import InMemoryStore
        from centli.domain.loading import parse_bank_document
        from centli.entrypoints.demo import demo_bank

        store = InMemoryStore(clock=clock)
        store.load(parse_bank_document(demo_bank(), clock.now()))
        return store
    if settings.backend == "sqlite":
        from centli.adapters.sqlite import SqliteStore

        return SqliteStore(settings.sqlite_path, clock=clock)
    from centli.adapters.dynamodb import DynamoStore, make_dynamodb_client

    return DynamoStore(make_dynamodb_client(settings.aws_endpoint("dynamodb")), settings.table_names(), clock=clock)


def outbox_of(store: Any, settings: Settings) -> Any:
    """The outbox to relay in-process after each write, or None when a stream relays it (DynamoDB on AWS)."""
    relayable = hasattr(store, "pending") and hasattr(store, "mark_published")
    return store if relayable and settings.relays_in_process() else None


def make_event_publisher(settings: Settings) -> Any:
    """The EventBridge publisher of the outbox stream relay (AWS only)."""
    from centli.adapters.eventbridge import EventBridgePublisher, make_events_client

    return EventBridgePublisher(make_events_client(settings.aws_endpoint("events")), settings.event_bus_name)


def build_application(
    store: Any, outbox: Any, clock: Clock, ids: IdGenerator, settings: Settings, cursor_secret: SecretSource
) -> Application:
    return bootstrap(store.unit_of_work, clock, ids, settings.policy(), cursor_secret, outbox)


def cursor_secret_of(settings: Settings) -> SecretSource:
    source = settings.cursor_secret_source()
    if settings.cursor_secret is not None or settings.cursor_secret_arn is not None:
        from centli.entrypoints.logs import use_pseudonym_secret

        use_pseudonym_secret(source)  # the log pseudonyms share the deployment's key (stable across functions)
    return source


def identity_secret_of(settings: Settings) -> SecretSource | None:
    return settings.identity_secret_source()


class Container(containers.DeclarativeContainer):
    settings = providers.Singleton(read_settings)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UlidGenerator)
    #: The store and its client (botocore's service model): long-lived, built with the collector paused.
    store = providers.Singleton(built_without_collection(make_store), settings, clock)
    outbox = providers.Singleton(outbox_of, store, settings)
    event_publisher = providers.Singleton(make_event_publisher, settings)
    #: Secrets are sources read on first use (after a SnapStart restore) and refreshed; one per process.
    cursor_secret = providers.Singleton(cursor_secret_of, settings)
    identity_secret = providers.Singleton(identity_secret_of, settings)
    application = providers.Singleton(
        built_without_collection(build_application), store, outbox, clock, ids, settings, cursor_secret
    )
