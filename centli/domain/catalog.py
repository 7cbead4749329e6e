"""Products with stock and reserved quantity."""

from __future__ import annotations

from dataclasses import dataclass

from centli.domain.ledger import AccountRef
from centli.domain.money import Money


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    category: str
    price: Money
    stock: int
    reserved: int
    seller: AccountRef

    @property
    def available(self) -> int:
        return self.stock - self.reserved

    def matches(self, query: str | None, category: str | None) -> bool:
        """Case- and accent-insensitive match on name and category."""
        if category and fold(category) != fold(self.category):
            return False
        if query:
            haystack = fold(f"{self.name} {self.category}")
            return all(word in haystack for word in fold(query).split())
        return True


def fold(text: str) -> str:
    """Lower-case without accents, for search ("Audífonos" matches "audifonos")."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
