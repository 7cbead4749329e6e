"""`centli serve` in its own process on a free port, and the clients the tests drive it with."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ANA = {"X-Centli-User": "u-ana"}


def centli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the `centli` command in a fresh interpreter (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "centli.entrypoints.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        check=False,
    )


def sqlite_env(db: Path, **extra: str) -> dict[str, str]:
    return {"CENTLI_BACKEND": "sqlite", "CENTLI_SQLITE_PATH": str(db), "PYTHONUNBUFFERED": "1", **extra}


class LocalServer:
    def __init__(self, db: Path, *, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        env = {**os.environ, **sqlite_env(db), **(extra_env or {})}
        # Output goes to a file: a pipe nobody reads would block the server once it filled up.
        self.log = db.with_name(f"{db.stem}-{time.monotonic_ns()}.log")
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "centli.entrypoints.cli", "serve", "--port", "0", "--load-demo", *args],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        deadline = time.monotonic() + 60
        self.base = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"http://127\.0\.0\.1:(\d+)", self.output())
            if found:
                self.base, self.port = found.group(0), int(found.group(1))
                break
            time.sleep(0.05)
        if not self.base:
            self.process.kill()
            raise RuntimeError(f"the local server did not start: {self.output()}")
        self.host = f"127.0.0.1:{self.port}"
        self.wait_healthy()

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def wait_healthy(self) -> None:
        for _ in range(200):
            try:
                if self.call("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the local server never answered /health: {self.output()}")

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        all_headers = dict(headers or {})
        if data is not None and method == "POST" and not any(h.lower() == "content-type" for h in all_headers):
            all_headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        status, _, raw = self.request(method, path, body, headers)
        return status, json.loads(raw)

    def raw(self, data: bytes, *, settle: float = 1.0) -> bytes:
        """Send bytes as they are on one connection; everything the server answers until it closes or goes quiet."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            sock.settimeout(settle)
            received = b""
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except TimeoutError:
                pass
            except ConnectionResetError:
                pass
            return received

    def balance(self, account_id: str, user: str = "u-ana") -> str:
        status, body = self.call("GET", f"/accounts/{account_id}/balance", headers={"X-Centli-User": user})
        assert status == 200, body
        return str(body["balance"])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def responses(raw: bytes) -> list[int]:
    """The status codes of every HTTP response in a byte stream."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]
