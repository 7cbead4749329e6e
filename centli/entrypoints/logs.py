"""Structured JSON logs (Powertools Logger): one line per event, correlation_id on every line.

Per-invocation keys go into Powertools' thread-safe (context-local) keys, which
every Powertools formatter reads: the action-group loggers and the ``centli``
logger that the domain's stdlib ``centli.*`` loggers propagate to.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, Final, TextIO

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS, LambdaPowertoolsFormatter

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

    def emit(self, record: logging.LogRecord) -> None:
        """As ``StreamHandler.emit``, with the stream looked up once per line (the stdlib reads it four times)."""
        try:
            line = self.format(record)
            stream = self.stream
            stream.write(line + self.terminator)
            stream.flush()
        except RecursionError:  # as the stdlib's emit
            raise
        except Exception:
            self.handleError(record)


def _level() -> str:
    return _configured["level"]


#: Powertools' own JSON settings (compact, UTF-8, ``str`` for anything else), as one reused encoder.
_LINE_JSON: Final = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


#: Record attributes that are never a line's extra keys (Powertools' own list, as a set).
_RESERVED: Final = frozenset(RESERVED_LOG_ATTRS)
#: The key templates the short way fills in itself; any other template takes Powertools' own way.
_LEVEL: Final = "%(levelname)s"
_ASCTIME: Final = "%(asctime)s"


class LineFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, with the common line built the short way.

    A line with no exception, no ``%`` arguments and no stack (a request's
    outcome, a domain event) gets exactly the keys, order and values
    ``LambdaPowertoolsFormatter.format`` gives it (tests/unit/entrypoints/test_log_formatter.py
    compares the two), without its per-line copy of the record and scans of a
    tuple of reserved names: about a third of its cost (docs/performance.md).
    Any other line, or a key template other than the level and the time, goes
    through Powertools' own ``format``.
    """

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.args or record.stack_info or not isinstance(record.msg, str):
            return super().format(record)
        line: dict[str, Any] = {}
        for keys in (self.log_format, self.thread_safe_get_current_keys()):
            for key, value in keys.items():
                if value and key in _RESERVED:  # a template of the record's attributes, as Powertools fills it
                    if value == _LEVEL:
                        line[key] = record.levelname
                    elif value == _ASCTIME:
                        line[key] = self.formatTime(record)
                    else:
                        return super().format(record)
                else:
                    line[key] = value
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                line[key] = value
        line["message"] = record.msg
        with contextlib.suppress(TypeError, ValueError):  # as Powertools: a message that is not JSON stays text
            line["message"] = self.json_deserializer(record.msg)
        # No exception: Powertools' exception keys are absent (None), and so is a stack trace, even an extra one.
        if self.serialize_stacktrace:
            line.pop("stack_trace", None)
        line["xray_trace_id"] = self._get_latest_trace_id()
        return self.serialize({key: value for key, value in line.items() if value is not None})


def _new_logger(service: str) -> Logger:
    """Powertools' JSON lines, configured for a line per request (docs/performance.md measures it):

    - the common line built the short way (:class:`LineFormatter`);
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
        logger_formatter=line_formatter(),
    )


def line_formatter() -> LineFormatter:
    """The formatter of every centli line (one per logger: each holds its service's keys)."""
    return LineFormatter(
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
    formatter = logger.registered_formatter  # found once (each Logger method looks it up again)
    formatter.thread_safe_clear_keys()
    formatter.thread_safe_append_keys(**keys)


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
