"""The one way tests point a container's providers at test doubles (no patching)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dependency_injector import containers, providers


@contextmanager
def overridden(container: containers.DeclarativeContainer, **replacements: object) -> Iterator[None]:
    """``container`` with each named provider replaced, and nothing built yet; all undone on exit.

    A value stands for itself (``providers.Object``); a provider (``providers.Callable(...)``) is used as is.
    """
    for name, value in replacements.items():
        provider = value if isinstance(value, providers.Provider) else providers.Object(value)
        getattr(container, name).override(provider)
    container.reset_singletons()
    try:
        yield
    finally:
        container.reset_override()
        container.reset_singletons()
