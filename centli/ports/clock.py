"""Time and identity generation, injected so tests and simulations control them."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class IdGenerator(Protocol):
    def new_id(self, prefix: str) -> str:
        """A fresh id such as ``trf-01JDXK7Q...``; ids sort in creation order."""
        ...
