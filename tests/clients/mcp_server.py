"""A small MCP server on stdio, for Codex: `python mcp_server.py LOGFILE`.

It speaks MCP's JSON-RPC 2.0, one message a line (the stdio transport):
`initialize`, `notifications/initialized`, `ping`, `tools/list` and
`tools/call`. It has one tool, `lookup_token`, whose answer is made from its
argument, so a test can tell that the tool ran and that its result reached
the model. Every message received is appended to LOGFILE as a JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

SERVER_NAME = "probe"
TOOL_NAME = "lookup_token"
DEFAULT_PROTOCOL = "2025-06-18"

TOOL = {
    "name": TOOL_NAME,
    "title": "Look up a token",
    "description": "Returns the secret token stored under a key.",
    "inputSchema": {
        "type": "object",
        "properties": {"key": {"type": "string", "description": "The key."}},
        "required": ["key"],
        "additionalProperties": False,
    },
}


def token_for(key: str) -> str:
    """What `lookup_token` answers for `key`."""
    return f"MCP-TOKEN-{key.upper()}-4217"


def _result(msg_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "result": result}


def _error(msg_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}


def handle(message: dict[str, Any]) -> dict[str, Any] | None:
    """The answer to one JSON-RPC message (None for notifications)."""
    method = message.get("method")
    msg_id = message.get("id")
    params = message.get("params") or {}
    if msg_id is None:  # a notification, e.g. notifications/initialized
        return None
    if method == "initialize":
        return _result(
            msg_id,
            {
                "protocolVersion": params.get("protocolVersion", DEFAULT_PROTOCOL),
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": SERVER_NAME, "version": "1.0.0"},
            },
        )
    if method == "ping":
        return _result(msg_id, {})
    if method == "tools/list":
        return _result(msg_id, {"tools": [TOOL]})
    if method == "tools/call":
        if params.get("name") != TOOL_NAME:
            return _error(msg_id, -32602, f"unknown tool {params.get('name')!r}")
        key = str((params.get("arguments") or {}).get("key", ""))
        text = token_for(key)
        return _result(
            msg_id, {"content": [{"type": "text", "text": text}], "isError": False}
        )
    return _error(msg_id, -32601, f"method not found: {method}")


def serve(stdin: TextIO, stdout: TextIO, log: TextIO) -> None:
    for line in stdin:
        line = line.strip()
        if not line:
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            answer: dict[str, Any] | None = _error(None, -32700, "parse error")
        else:
            log.write(json.dumps(message) + "\n")
            log.flush()
            answer = handle(message) if isinstance(message, dict) else None
        if answer is not None:
            stdout.write(json.dumps(answer) + "\n")
            stdout.flush()


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.devnull
    with open(path, "a", encoding="utf-8") as log:
        serve(sys.stdin, sys.stdout, log)


if __name__ == "__main__":
    main()
