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
from typing import TextIO

from aws_lambda_powertools import Logger

from centli.domain.tracing import current_correlation

_DOMAIN_SERVICE = "centli"
_loggers: dict[str, Logger] = {}


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


class CurrentStdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` is at emit time (Lambda's stdout, or a test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.addFilter(SagaCorrelation())

    @property
    def stream(self) -> TextIO:
        return sys.stdout

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
            service=_DOMAIN_SERVICE, level=_level(), logger_handler=CurrentStdoutHandler()
        )
    if service not in _loggers:
        _loggers[service] = Logger(service=service, level=_level(), logger_handler=CurrentStdoutHandler())
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
    is derived from ``CENTLI_CURSOR_SECRET`` (stable across a deployment's
    functions) or, without one, random per process.
    """
    if not isinstance(user_id, str) or not user_id:
        return None
    return _pseudonym(user_id)


@functools.lru_cache(maxsize=1024)  # a warm function sees the same few customers again and again
def _pseudonym(user_id: str) -> str:
    return hmac.new(_pseudonym_key(), b"centli-user\x00" + user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


@functools.cache
def _pseudonym_key() -> bytes:
    secret = os.environ.get("CENTLI_CURSOR_SECRET", "")
    return hashlib.sha256(b"centli-log-pseudonym\x00" + secret.encode("utf-8")).digest() if secret else os.urandom(32)
