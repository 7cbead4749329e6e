"""The URL-mode confirmation page: the quote, and one click that commits it.

``GET /confirm/{id}`` shows the quote and changes nothing (a link preview or
prefetch cannot confirm). The click is a same-origin ``POST /confirm/{id}``
that the server checks: JSON body (a cross-site form cannot send it without a
preflight this server never answers), an ``Origin`` equal to the server's own
origin, ``Sec-Fetch-Site: same-origin`` when the browser sends it, and the
per-quote token embedded in the page. A quote is single use and expires; only
the first confirmation of a pending quote commits.
"""

from __future__ import annotations

import hmac
import html
import json
import secrets
from typing import TYPE_CHECKING, Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from centli.entrypoints.mcp.confirmations import Quote, commit_claimed

if TYPE_CHECKING:
    from centli.entrypoints.local_app import LocalSite
    from centli.entrypoints.mcp.server import BankTools

MAX_BODY_BYTES: Final = 4096
_STATE_TEXT: Final = {
    "committing": "This operation is being carried out.",
    "committed": "Done: this operation was carried out.",
    "declined": "You declined this operation. Nothing was done.",
    "expired": "This confirmation link has expired. Nothing was done.",
}


def page_routes(bank: BankTools, site: LocalSite) -> list[Route]:
    async def show(request: Request) -> Response:
        request.scope["centli.route"] = "confirm-page"
        quote = bank.confirmations.get(str(request.path_params["quote_id"]))
        if quote is None:
            return _page(None, "This confirmation link is not valid. Nothing was done.", status=404)
        if quote.state != "pending":
            return _page(quote, _state_text(quote), status=410 if quote.state == "expired" else 200)
        return _page(quote, "")

    async def decide(request: Request) -> Response:
        request.scope["centli.route"] = "confirm-page"
        problem = _refused(request, site)
        if problem is not None:
            return _error(403, "FORBIDDEN", problem)
        if not request.headers.get("content-type", "").lower().startswith("application/json"):
            return _error(415, "UNSUPPORTED_MEDIA_TYPE", "Send the decision as application/json.")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, "REQUEST_TOO_LARGE", f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("decision") not in ("confirm", "decline"):
            return _error(400, "INVALID_INPUT", 'Send {"decision": "confirm" or "decline", "token": ...}.')
        quote = bank.confirmations.get(str(request.path_params["quote_id"]))
        token = data.get("token")
        if quote is None or not isinstance(token, str) or not _same_token(token, quote.page_token):
            return _error(404, "NOT_FOUND", "This confirmation link is not valid. Nothing was done.")
        if data["decision"] == "decline":
            if not bank.confirmations.decline(quote):
                return _finished(quote)
            return JSONResponse({"status": "declined", "message": _STATE_TEXT["declined"]})
        if not bank.confirmations.claim(quote):
            return _finished(quote)
        outcome = await commit_claimed(bank.confirmations, quote)
        body = outcome.result.body
        if outcome.result.status != 200:
            message = _state_text(quote)
            return JSONResponse({"status": "failed", "message": message, **body}, status_code=outcome.result.status)
        return JSONResponse({"status": "committed", "message": _STATE_TEXT["committed"], "result": body})

    return [
        Route("/confirm/{quote_id}", show, methods=["GET"]),
        Route("/confirm/{quote_id}", decide, methods=["POST"]),
    ]


def _refused(request: Request, site: LocalSite) -> str | None:
    """Why a POST is not a same-origin click on this server's own page, or None when it is.

    The local runtime's guard checks Host and Origin too; this check stands on its own and is stricter:
    an Origin is required (every browser sends one on a fetch POST), and Sec-Fetch-Site, when sent,
    must say same-origin.
    """
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    same_origin = origin is not None and origin == f"http://{host}" and origin in site.allowed_origins
    if not same_origin or request.headers.get("sec-fetch-site", "same-origin") != "same-origin":
        return "Confirm from the bank's own page. Nothing was done."
    return None


def _same_token(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _state_text(quote: Quote) -> str:
    outcome = quote.outcome
    if quote.state == "committed" and outcome is not None and outcome.result.status != 200:
        reason = outcome.result.body.get("error", {}).get("message", "")
        return f"The bank could not carry this out: {reason} Nothing was moved."
    return _STATE_TEXT[quote.state]


def _finished(quote: Quote) -> Response:
    if quote.state == "expired":
        return _error(410, "CONFIRMATION_EXPIRED", _STATE_TEXT["expired"])
    return _error(409, "CONFIRMATION_USED", "This confirmation was already used. Nothing more was done.")


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _page(quote: Quote | None, notice: str, *, status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(16)
    rows = ""
    title = "CENTLI"
    actions = ""
    if quote is not None:
        title = html.escape(quote.title)
        rows = "".join(
            f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>" for label, value in quote.lines
        )
        if quote.state == "pending":
            actions = (
                "<p>Confirm only if you asked for this. This link works once and expires soon.</p>"
                '<button id="confirm" type="button">Confirm</button> '
                '<button id="decline" type="button">Decline</button>'
            )
    token = html.escape(quote.page_token if quote is not None and quote.state == "pending" else "")
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="referrer" content="no-referrer"><title>{title} - CENTLI</title>
<style nonce="{nonce}">body{{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}
th{{text-align:left;padding-right:1rem}}button{{font-size:1.1rem;margin-right:1rem}}</style></head>
<body><h1>{title}</h1>
<table id="quote" data-token="{token}">{rows}</table>
<div id="actions">{actions}</div>
<p id="status" role="status">{html.escape(notice)}</p>
<script nonce="{nonce}">
(function () {{
  var token = document.getElementById("quote").dataset.token;
  function send(decision) {{
    document.querySelectorAll("button").forEach(function (b) {{ b.disabled = true; }});
    fetch(window.location.pathname, {{
      method: "POST", credentials: "omit", cache: "no-store",
      headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{decision: decision, token: token}})
    }}).then(function (r) {{ return r.json(); }}).then(function (b) {{
      document.getElementById("status").textContent = b.message || (b.error && b.error.message) || "";
      document.getElementById("actions").textContent = "";
    }}).catch(function () {{
      document.getElementById("status").textContent = "The bank could not be reached. Nothing was done.";
    }});
  }}
  var c = document.getElementById("confirm"), d = document.getElementById("decline");
  if (c) c.addEventListener("click", function () {{ send("confirm"); }});
  if (d) d.addEventListener("click", function () {{ send("decline"); }});
}})();
</script></body></html>
"""
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
        ),
    }
    return HTMLResponse(body, status_code=status, headers=headers)
