"""The bank's tools over MCP (the official ``mcp`` SDK, lowlevel server).

- :mod:`.tools`: tool definitions generated from the one operation table;
- :mod:`.confirmations`: quotes the human confirms before a write commits;
- :mod:`.server`: the MCP server, ``centli mcp`` over stdio, and the ``/mcp``
  unit (routes and lifespan) the local runtime mounts;
- :mod:`.page`: the URL-mode confirmation page.

The SDK is imported only here, so the Lambda bundle never loads it.
"""
