"""A trivial stdlib JSON server on SQLite: the yardstick of bench/local_server.py.

ThreadingHTTPServer, HTTP/1.1 keep-alive, buffered writes (one send per
answer, no delayed-ACK stall), one SQLite connection per thread, no
validation, no logging. ``GET /accounts/{id}/balance`` reads one row;
``POST /transfers`` moves 0.01 between two accounts in one transaction.
Prints ``http://127.0.0.1:PORT`` once listening.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DB = sys.argv[1]
local = threading.local()


def db() -> sqlite3.Connection:
    if not hasattr(local, "db"):
        local.db = sqlite3.connect(DB, isolation_level=None, timeout=10)
        local.db.execute("PRAGMA journal_mode=WAL")
        local.db.execute("PRAGMA synchronous=FULL")  # as durable as the centli store
    return local.db


def setup() -> None:
    conn = db()
    conn.execute("CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, user_id TEXT, balance INTEGER, currency TEXT)")
    conn.execute("CREATE TABLE IF NOT EXISTS transfers (id INTEGER PRIMARY KEY, key TEXT UNIQUE, src TEXT, dst TEXT, amount INTEGER)")
    conn.execute("INSERT OR IGNORE INTO accounts VALUES ('acc-0001', 'u-ana', 2500000, 'MXN'), ('acc-0003', 'u-ana', 100000, 'MXN')")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # buffered: headers and body leave in one write

    def log_message(self, format: str, *args: object) -> None:
        return None

    def answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = self.path.split("/")
        if len(parts) == 4 and parts[1] == "accounts" and parts[3] == "balance":
            row = db().execute("SELECT balance, currency FROM accounts WHERE id = ? AND user_id = ?", (parts[2], self.headers.get("X-Centli-User"))).fetchone()
            if row:
                self.answer(200, {"account_id": parts[2], "currency": row[1], "balance": f"{row[0] // 100}.{row[0] % 100:02d}"})
                return
        self.answer(404, {"error": {"code": "NOT_FOUND", "message": "No such path."}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        amount = 1
        conn = db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?", (amount, body["from_account_id"], amount))
            conn.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, body["destination_id"]))
            cur = conn.execute("INSERT INTO transfers (key, src, dst, amount) VALUES (?, ?, ?, ?)", (self.headers.get("Idempotency-Key"), body["from_account_id"], body["destination_id"], amount))
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        self.answer(200, {"transfer_id": str(cur.lastrowid), "status": "COMPLETED", "amount": "0.01", "currency": "MXN"})


if __name__ == "__main__":
    setup()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
