"""The local runtime is a bank on a laptop: what a web page, a confused client or a crowd can do to it.

Raw sockets where framing matters. Each attack here worked on the old
http.server-based local server (issue 10); money must not move, and every
application answer is the contract's JSON error shape.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from centli.entrypoints.local_app import MAX_JSON_DEPTH, MAX_REQUEST_BYTES
from tests.integration.local_runtime import ANA, REPO, LocalServer, responses

pytestmark = pytest.mark.integration
TRANSFER = {"from_account_id": "acc-0001", "destination_id": "ben-mama", "amount": "1234.00"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    running = LocalServer(tmp_path_factory.mktemp("local-security") / "centli.db")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def untouched(server: LocalServer) -> Iterator[None]:
    """The test must leave Ana's and Luis's money where it was."""
    before = (server.balance("acc-0001"), server.balance("acc-0002", "u-luis"))
    yield
    assert (server.balance("acc-0001"), server.balance("acc-0002", "u-luis")) == before


def transfer_request(host: str, key: str) -> bytes:
    body = json.dumps(TRANSFER).encode()
    return (
        f"POST /transfers HTTP/1.1\r\nHost: {host}\r\nX-Centli-User: u-ana\r\nIdempotency-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def json_error(raw: bytes) -> dict[str, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    error: dict[str, str] = json.loads(body[: int(_header(head, "content-length"))])["error"]
    assert set(error) >= {"code", "message"}
    return error


def _header(head: bytes, name: str) -> str:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    raise AssertionError(f"no {name} header in {head!r}")


def test_a_cross_site_text_plain_post_moves_no_money(server: LocalServer, untouched: None) -> None:
    """A browser's "simple" POST (no preflight): text/plain, from a page on another site."""
    event = json.loads((REPO / "events" / "bedrock-openapi" / "createTransfer.json").read_text("utf-8"))
    body = json.dumps(event).encode()
    for origin in ("Origin: http://evil.example\r\n", ""):  # with an Origin, and as a client that sends none
        raw = server.raw(
            (
                f"POST /agent/core-banking HTTP/1.1\r\nHost: {server.host}\r\n{origin}"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
        assert responses(raw) == ([403] if origin else [415])
        assert json_error(raw)["code"] == ("FORBIDDEN_ORIGIN" if origin else "UNSUPPORTED_MEDIA_TYPE")
    # the REST write is refused the same way
    status, body_json = server.call(
        "POST", "/transfers", json.dumps(TRANSFER).encode(), {**ANA, "Content-Type": "text/plain"}
    )
    assert (status, body_json["error"]["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_an_oversized_body_is_refused_and_never_read_as_a_request(server: LocalServer, untouched: None) -> None:
    smuggled = transfer_request(server.host, "smuggled-1")
    padding = b'{"pad": "' + b"x" * MAX_REQUEST_BYTES + b'"}'
    body = padding + smuggled
    raw = server.raw(
        (
            f"POST /transfers HTTP/1.1\r\nHost: {server.host}\r\nX-Centli-User: u-ana\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    assert responses(raw) == [413]
    error = json_error(raw)
    assert error["code"] == "REQUEST_TOO_LARGE"
    assert str(MAX_REQUEST_BYTES) in error["message"]


def test_an_oversized_chunked_body_is_refused_too(server: LocalServer, untouched: None) -> None:
    chunk = b"x" * 40_000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    raw = server.raw(
        (
            f"POST /transfers HTTP/1.1\r\nHost: {server.host}\r\nX-Centli-User: u-ana\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
        + body
    )
    assert responses(raw) == [413]
    assert json_error(raw)["code"] == "REQUEST_TOO_LARGE"


@pytest.mark.parametrize("length", ["-1", "abc", "12, 12", "0x10"])
def test_a_malformed_content_length_followed_by_a_request(server: LocalServer, untouched: None, length: str) -> None:
    head = (
        f"POST /transfers HTTP/1.1\r\nHost: {server.host}\r\nX-Centli-User: u-ana\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    raw = server.raw(head + transfer_request(server.host, f"after-bad-length-{length}"))
    # uvicorn refuses to frame it (its own plain 400) and closes: the second request never runs
    assert responses(raw) == [400]


def test_a_get_with_a_body_that_is_a_request(server: LocalServer, untouched: None) -> None:
    hidden = transfer_request(server.host, "hidden-in-get")
    raw = server.raw(
        (
            f"GET /accounts HTTP/1.1\r\nHost: {server.host}\r\nX-Centli-User: u-ana\r\n"
            f"Content-Length: {len(hidden)}\r\n\r\n"
        ).encode()
        + hidden
    )
    assert responses(raw) == [200]


def test_a_foreign_origin_never_reaches_a_handler(server: LocalServer, untouched: None) -> None:
    for origin in ("http://evil.example", "null", f"http://evil.example:{server.port}", f"https://{server.host}"):
        for method, path in (("GET", "/accounts"), ("POST", "/transfers"), ("POST", "/agent/core-banking")):
            status, body = server.call(
                method,
                path,
                TRANSFER if method == "POST" else None,
                {**ANA, "Origin": origin, "Idempotency-Key": "o-1"},
            )
            assert (status, body["error"]["code"]) == (403, "FORBIDDEN_ORIGIN"), (origin, path)
    status, body = server.call("GET", "/accounts", headers={**ANA, "Sec-Fetch-Site": "cross-site"})
    assert status == 403
    # the server's own pages (same origin) are fine
    assert server.call("GET", "/accounts", headers={**ANA, "Origin": f"http://{server.host}"})[0] == 200


def test_a_rebinding_host_is_refused(server: LocalServer, untouched: None) -> None:
    """A page whose name was rebound to 127.0.0.1 still sends its own name as Host."""
    for host in (f"attacker.example:{server.port}", "attacker.example", "127.0.0.1.nip.io", ""):
        raw = server.raw(
            (
                f"POST /transfers HTTP/1.1\r\nHost: {host}\r\nX-Centli-User: u-ana\r\nIdempotency-Key: rebind\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(json.dumps(TRANSFER))}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + json.dumps(TRANSFER).encode()
        )
        assert (responses(raw), json_error(raw)["code"]) == ([403], "FORBIDDEN_HOST"), host
    assert server.call("GET", "/health", headers={"Host": f"localhost:{server.port}"})[0] == 200


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 30_000])
def test_deep_json_is_a_json_400(server: LocalServer, untouched: None, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    for path in ("/transfers", "/agent/core-banking"):
        status, answer = server.call("POST", path, body, {**ANA, "Content-Type": "application/json"})
        assert (status, answer["error"]["code"]) == (400, "INVALID_INPUT"), path
        assert str(MAX_JSON_DEPTH) in answer["error"]["message"]
    # an unclosed one as well, and the server is still there
    status, answer = server.call("POST", "/transfers", b"[" * 60_000, {**ANA, "Content-Type": "application/json"})
    assert (status, answer["error"]["code"]) == (400, "INVALID_INPUT")
    assert server.call("GET", "/health")[0] == 200


def test_32_concurrent_clients_are_all_answered(server: LocalServer) -> None:
    """32 clients arrive while the server is not accepting (stopped): the kernel must queue them all.

    With a listen backlog of 5 the kernel completes only 6 handshakes and drops
    the other clients' SYNs (or resets them); with a real backlog every client
    connects at once and is answered when the server goes on.
    """
    clients: list[socket.socket] = []
    server.process.send_signal(signal.SIGSTOP)
    try:
        for _ in range(32):
            sock = socket.socket()
            sock.settimeout(3)
            try:
                sock.connect(("127.0.0.1", server.port))  # the handshake is the kernel's, not the process's
                sock.sendall(
                    (
                        f"GET /accounts/acc-0001/balance HTTP/1.1\r\nHost: {server.host}\r\n"
                        "X-Centli-User: u-ana\r\nConnection: close\r\n\r\n"
                    ).encode()
                )
            except OSError as error:
                sock.close()
                pytest.fail(f"client {len(clients) + 1} of 32 could not connect: {error!r}")
            clients.append(sock)
    finally:
        server.process.send_signal(signal.SIGCONT)
    answers: list[object] = []

    def read(sock: socket.socket) -> None:
        try:
            sock.settimeout(30)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            answers.append(responses(received))
        except OSError as error:
            answers.append(error)
        finally:
            sock.close()

    readers = [threading.Thread(target=read, args=(sock,)) for sock in clients]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(60)
    assert answers == [[200]] * 32


def test_every_application_answer_is_the_json_error_shape(server: LocalServer) -> None:
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        for path, allow in (("/accounts", "GET"), ("/transfers", "POST"), ("/agent/marketplace", "POST")):
            raw = server.raw(f"{method} {path} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode())
            assert responses(raw) == [405], (method, path)
            assert allow in _header(raw.partition(b"\r\n\r\n")[0], "allow")
            assert json_error(raw)["code"] == "METHOD_NOT_ALLOWED"
    for path in ("/nowhere", "/accounts/acc-0001", "/agent", "/2015-03-31/functions"):
        raw = server.raw(f"GET {path} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode())
        assert (responses(raw), json_error(raw)["code"]) == ([404], "NOT_FOUND"), path
    raw = server.raw(f"GET /accounts HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode())
    assert (responses(raw), json_error(raw)["code"]) == ([401], "UNAUTHENTICATED")


def test_a_path_with_escapes_is_decoded(server: LocalServer) -> None:
    assert server.call("GET", "/accounts/acc%2D0001/balance", headers=ANA)[1]["account_id"] == "acc-0001"
    assert server.call("GET", "/accounts/acc%2d0001/balance", headers=ANA)[0] == 200


def test_the_server_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    from centli.entrypoints.local_server import ServeError, bind

    for host in ("0.0.0.0", "192.0.2.10", "::"):
        with pytest.raises(ServeError, match="loopback"):
            bind(host, 0)
    bind("127.0.0.1", 0).close()


def test_the_attack_payload_is_a_real_transfer(server: LocalServer) -> None:
    """The control: sent the way the API asks, the same transfer does move money (so "untouched" means refused)."""
    from decimal import Decimal

    before = Decimal(server.balance("acc-0002", "u-luis"))
    raw = server.raw(transfer_request(server.host, "the-control") + b"")
    assert responses(raw) == [200]
    assert Decimal(server.balance("acc-0002", "u-luis")) == before + Decimal(TRANSFER["amount"])
