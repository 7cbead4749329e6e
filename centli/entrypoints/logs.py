"""Structured JSON logs (Powertools Logger): one line per event, correlation_id on every line.

Per-invocation keys go into Powertools' thread-safe (context-local) keys, which
every Powertools formatter reads: the action-group loggers and the ``centli``
logger that the domain's stdlib ``centli.*`` loggers propagate to.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
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
#: Set by a process whose stdout belongs to a protocol (``centli mcp``); wins over CENTLI_LOG_STREAM.
_stream_choice: dict[str, str] = {}


def use_stream(name: str | None) -> None:
    """Send every log line of this process to ``stdout`` or ``stderr`` from now on (the one switch).

    ``None`` goes back to ``CENTLI_LOG_STREAM``.
    """
    if name is None:
        _stream_choice.clear()
        return
    if name not in LOG_STREAMS:
        raise ValueError(f"log stream must be one of {LOG_STREAMS}")
    _stream_choice["name"] = name


def log_stream_name() -> str:
    """Where log lines go: the process's choice, else ``CENTLI_LOG_STREAM`` (default stdout, as Lambda wants)."""
    if "name" in _stream_choice:
        return _stream_choice["name"]
    name = os.environ.get("CENTLI_LOG_STREAM", "stdout").lower()
    return name if name in LOG_STREAMS else "stdout"


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
    level = os.environ.get("CENTLI_LOG_LEVEL", "INFO").upper()
    return level if level in {"DEBUG", "INFO", "WARNING", "ERROR"} else "INFO"


def service_logger(service: str) -> Logger:
    """The Powertools logger of one service; the domain's ``centli.*`` lines are formatted alike."""
    if _DOMAIN_SERVICE not in _loggers:
        _loggers[_DOMAIN_SERVICE] = Logger(
            service=_DOMAIN_SERVICE, level=_level(), logger_handler=CurrentStreamHandler()
        )
    if service not in _loggers:
        _loggers[service] = Logger(service=service, level=_level(), logger_handler=CurrentStreamHandler())
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
    the Secrets Manager secret on AWS, see :func:`use_pseudonym_secret`, or
    ``CENTLI_CURSOR_SECRET``) or, without one, random per process.
    """
    if not isinstance(user_id, str) or not user_id:
        return None
    return _pseudonym(_pseudonym_key(), user_id)


@functools.lru_cache(maxsize=1024)  # a warm function sees the same few customers (and one key) again and again
def _pseudonym(key: bytes, user_id: str) -> str:
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
    return _env_key()


def _derive(secret: bytes) -> bytes:
    return hashlib.sha256(b"centli-log-pseudonym\x00" + secret).digest()


@functools.cache
def _env_key() -> bytes:
    secret = os.environ.get("CENTLI_CURSOR_SECRET", "")
    return _derive(secret.encode("utf-8")) if secret else _process_key()


@functools.cache
def _process_key() -> bytes:
    return os.urandom(32)
