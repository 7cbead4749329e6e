"""Read-only access to a whole store, for ``centli audit`` and ``centli trace``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from centli.domain.audit import AuditSnapshot

#: Called with (what is being read, records read so far) while a snapshot is taken.
ReadProgress = Callable[[str, int], None]


class AuditReader(Protocol):
    def audit_snapshot(self, progress: ReadProgress | None = None) -> AuditSnapshot:
        """Every record the rules look at, as stored; reads only, never a write, never a hot-path index.

        Each account's entries come in commit order, each with the ``balance_after``
        a customer's history shows.
        """
        ...
