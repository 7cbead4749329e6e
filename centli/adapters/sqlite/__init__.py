"""SQLite adapters: the embedded default store (one WAL file) and its unit of work."""

from centli.adapters.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew, migrate
from centli.adapters.sqlite.store import SqliteStore, SqliteUnitOfWork

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SchemaTooNew", "SqliteStore", "SqliteUnitOfWork", "migrate"]
