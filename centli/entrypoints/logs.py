"""Structured JSON logs (Powertools Logger): one line per event, correlation_id on every line.

Per-invocation keys go into Powertools' thread-safe (context-local) keys, which
every Powertools formatter reads: the action-group loggers and the ``centli``
logger that the domain's stdlib ``centli.*`` loggers propagate to.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Final, TextIO

from aws_lambda_powertools import Logger

from centli.domain.tracing import current_correlation

_DOMAIN_SERVICE = "centli"
_loggers: dict[str, Logger] = {}
LOG_STREAMS: Final = ("stdout", "stderr")
#: Set by a process whose stdout belongs to a protocol (``centli mcp``); wins over the settings' stream.
_stream_choice: dict[str, str] = {}
#: The settings' log level and stream (CENTLI_LOG_LEVEL, CENTLI_LOG_STREAM), given by :func:`configure`.
_configured: dict[str, str] = {"level": "INFO", "stream": "stdout"}


def configure(*, level: str, stream: str) -> None:
    """This process's log level and stream, as its settings read them (the container calls it once)."""
    _configured.update(level=level, stream=stream if stream in LOG_STREAMS else "stdout")
    for logger in _loggers.values():
        logger.setLevel(level)


def use_stream(name: str | None) -> None:
    """Send every log line of this process to ``stdout`` or ``stderr`` from now on (the one switch).

    ``None`` goes back to the settings' stream.
    """
    if name is None:
        _stream_choice.clear()
        return
    if name not in LOG_STREAMS:
        raise ValueError(f"log stream must be one of {LOG_STREAMS}")
    _stream_choice["name"] = name


def log_stream_name() -> str:
    """Where log lines go: the process's choice, else the settings' (default stdout, as Lambda wants)."""
    return _stream_choice.get("name") or _configured["stream"]


class SagaCorrelation(logging.Filter):
    """Stamps the running saga step's correlation id on a line (it wins over the request's bound id).

    A relay drained by one request (or the sweeper thread) runs other orders'
    steps; their lines must name those orders' sagas, not the request's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        current = current_correlation()
        if current is not None and "correlation_id" not in record.__dict__:
            record.correlation_id = current
        return True


class CurrentStreamHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` or ``sys.stderr`` is at emit time (see :func:`log_stream_name`).

    Looked up per line, so a test's capture or a later :func:`use_stream` takes effect at once.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.addFilter(SagaCorrelation())

    @property
    def stream(self) -> TextIO:
        return sys.stderr if log_stream_name() == "stderr" else sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        return None


def _level() -> str:
    return _configured["level"]


#: Powertools' own JSON settings (compact, UTF-8, ``str`` for anything else), as one reused encoder.
_LINE_JSON: Final = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


def _new_logger(service: str) -> Logger:
    """Powertools' JSON lines, configured for a line per request (docs/performance.md measures it):

    - one JSON encoder for every line (Powertools' default builds one per line);
    - the message is text, never a JSON document: it is not parsed back (Powertools tries
      ``json.loads`` on every message otherwise, and fails on ours);
    - the timestamp is RFC 3339 in UTC (one ``datetime.isoformat`` instead of two ``strftime``);
    - no ``location`` (the caller's function and line): every message names what happened, and an
      exception carries its own stack trace.
    """
    return Logger(
        service=service,
        level=_level(),
        logger_handler=CurrentStreamHandler(),
        json_deserializer=str,
        json_serializer=_LINE_JSON.encode,
        use_rfc3339=True,
        utc=True,
        location=None,
    )


def service_logger(service: str) -> Logger:
    """The Powertools logger of one service; the domain's ``centli.*`` lines are formatted alike."""
    if _DOMAIN_SERVICE not in _loggers:
        _loggers[_DOMAIN_SERVICE] = _new_logger(_DOMAIN_SERVICE)
    if service not in _loggers:
        _loggers[service] = _new_logger(service)
    return _loggers[service]


def bind(logger: Logger, **keys: object) -> None:
    """Keys for every line of this invocation, whichever logger writes it."""
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(**keys)


def unbind(logger: Logger) -> None:
    logger.thread_safe_clear_keys()


def user_ref(user_id: object) -> str | None:
    """A stable pseudonym for a customer: lets an operator follow one customer without logging who it is.

    Keyed with HMAC so guessable ids cannot be tested against the log; the key
    is derived from the cursor secret (stable across a deployment's functions:
    the container hands it over, see :func:`use_pseudonym_secret`) or, without
    one, random per process.
    """
    if not isinstance(user_id, str) or not user_id:
        return None
    return _pseudonym(_pseudonym_key(), user_id)


@functools.lru_cache(maxsize=4096)
def _pseudonym(key: bytes, user_id: str) -> str:
    """Computed once per customer and key (an HMAC per log line was a measurable share of a read)."""
    return hmac.new(key, b"centli-user\x00" + user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


_key_source: list[Callable[[], bytes]] = []  # the deployment's cursor secret, once the container has built it


def use_pseudonym_secret(source: Callable[[], bytes]) -> None:
    """Key the pseudonyms with this secret (read when a line needs it; the source caches and refreshes it)."""
    _key_source[:] = [source]


def _pseudonym_key() -> bytes:
    if _key_source:
        try:
            return _derive(_key_source[0]())
        except Exception:  # a log line never fails a call: an unreadable secret gives per-process pseudonyms
            return _process_key()
    return _process_key()


def _derive(secret: bytes) -> bytes:
    return hashlib.sha256(b"centli-log-pseudonym\x00" + secret).digest()


@functools.cache
def _process_key() -> bytes:
    return os.urandom(32)
