"""Bulk loading of a bank (accounts, beneficiaries, products)."""

from __future__ import annotations

from typing import Protocol

from centli.domain.loading import BankData, LoadReport, Progress


class BankLoader(Protocol):
    def load(self, data: BankData, progress: Progress | None = None) -> LoadReport:
        """Write ``data``; idempotent: what exists already is left as it is."""
        ...
