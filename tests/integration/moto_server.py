"""A real moto server on 127.0.0.1 (a free port) shared by every integration test, over HTTP.

Use the ``moto_server`` fixture (session-scoped: the endpoint URL) or
``moto_endpoint()`` from code that is not a fixture (it starts the same
server once). Dummy credentials and a region are set in the environment;
``aws_endpoint`` also points ``AWS_ENDPOINT_URL`` at the server for one test.

moto's handlers are not thread-safe: its TransactWriteItems applies items one
by one and rolls back by restoring a deep copy of whole tables, so two
requests running at once can undo each other. DynamoDB itself runs each
request atomically (transactions are serializable), so this server runs one
request at a time. Clients still interleave their commands freely.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from moto.core.model_instances import reset_model_data
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}

_lock = threading.Lock()
_started: list[str] = []  # the shared server's URL, once started


class _OneRequestAtATime:
    """WSGI middleware: DynamoDB requests are atomic; moto's are only if run one at a time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._served = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            self._served += 1
            if self._served % 50 == 0:
                # moto keeps every model object it ever made, for its dashboard: each transaction's
                # deep copy of the tables it touches, forever. Forget them, or memory grows per request.
                reset_model_data()
            return list(self._app(environ, start_response))


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class SerializedMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=_QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def moto_endpoint() -> str:
    """The shared server's URL, starting it on first use (stopped when the process exits)."""
    with _lock:
        for name, value in DUMMY_ENV.items():
            os.environ.setdefault(name, value)
        if not _started:
            server = SerializedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            _started.append(f"http://{host}:{port}")
            atexit.register(server.stop)
        return _started[0]


@pytest.fixture(scope="session")
def moto_server() -> str:
    return moto_endpoint()


@pytest.fixture
def aws_endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points every boto3 client made during the test at the moto server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    yield moto_server
