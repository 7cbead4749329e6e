"""A small pool of connections to one SQLite file in WAL mode.

A read or a commit takes a connection and gives it back at once, so any
number of threads may work at once; this process's writers queue on a lock
rather than in SQLite's busy handler.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from centli.adapters.sqlite.schema import migrate
from centli.domain.errors import DependencyUnavailable

#: How long a writer waits for the file's write lock before giving up (503), in seconds.
BUSY_TIMEOUT = 10.0
#: Idle connections kept for reuse.
POOL_SIZE = 8


class ConnectionPool:
    """Connections to one SQLite file in WAL mode, safe for many threads and processes at once."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", busy_timeout: float = BUSY_TIMEOUT) -> None:
        if synchronous not in {"FULL", "NORMAL"}:
            raise ValueError("synchronous must be FULL or NORMAL")
        self._busy_timeout = busy_timeout
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600)  # a new file is the owner's only; SQLite gives -wal and -shm the same mode
        self._synchronous = synchronous
        self._idle: list[sqlite3.Connection] = []
        self._open: set[sqlite3.Connection] = set()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        with self.connection() as connection:
            self._use_wal(connection)
            migrate(connection)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(  # ``timeout`` sets SQLite's busy timeout
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        return connection

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """Switch the file to WAL (persistent, so once per open is enough).

        The switch does not wait in the busy handler, so openers racing on a new file retry here.
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                mode = str(connection.execute("PRAGMA journal_mode = WAL").fetchone()[0])
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        if mode.lower() != "wal":
            raise RuntimeError(f"SQLite could not use WAL for {self.path} (journal mode {mode})")

    def acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise RuntimeError("the SQLite store is closed")
            if self._idle:
                return self._idle.pop()
        connection = self._connect()
        with self._lock:
            self._open.add(connection)
        return connection

    def release(self, connection: sqlite3.Connection) -> None:
        try:
            if connection.in_transaction:  # only after a crash mid-commit; never reuse it half-open
                connection.execute("ROLLBACK")
        except sqlite3.ProgrammingError:  # close() closed it meanwhile
            return
        with self._lock:
            if not self._closed and len(self._idle) < POOL_SIZE:
                self._idle.append(connection)
                return
            self._open.discard(connection)
        connection.close()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        connection = self.acquire()
        try:
            yield connection
        finally:
            self.release(connection)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` to ``COMMIT`` on a pooled connection; any failure rolls it all back.

        A busy or broken file is DependencyUnavailable (503). This process's writers queue on a lock
        rather than in SQLite's busy handler, which polls with sleeps; other processes still meet at
        the file's lock, under ``busy_timeout``.
        """
        with self.connection() as db:
            if not self._write_lock.acquire(timeout=self._busy_timeout):
                raise DependencyUnavailable()
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except BaseException as failure:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(failure, sqlite3.OperationalError):
                    raise DependencyUnavailable() from failure
                raise
            finally:
                self._write_lock.release()

    def close(self) -> None:
        """Close every connection; units of work still running fail on their next statement."""
        with self._lock:
            self._closed = True
            connections = list(self._open)
            self._open.clear()
            self._idle.clear()
        for connection in connections:
            connection.close()

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        connection = self.acquire()  # as ``with self.connection()``, without a generator per read
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            self.release(connection)
