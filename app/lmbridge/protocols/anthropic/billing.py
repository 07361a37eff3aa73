"""Claude Code's billing block, which only Anthropic's own servers read.

Claude Code (2.1+) starts the system prompt with a text block
`x-anthropic-billing-header: cc_version=2.1.332.d7d; cc_entrypoint=sdk-cli;`
whose suffix changes with the conversation. For any other server it is
noise at the very start of the prompt that changes between turns, so the
server's prompt cache is lost and every turn re-processes everything. LM
Bridge drops it for upstreams other than Claude on Azure AI Foundry
(`keep_billing_header = true` on an upstream keeps it).
"""

from __future__ import annotations

from typing import Any

import msgspec

from lmbridge.core import ir

PREFIX = "x-anthropic-billing-header:"
PREFIX_BYTES = PREFIX.encode()
NOTE = "the billing block of Claude Code's system prompt (changes every turn)"


def is_billing(text: str) -> bool:
    return text.lstrip().startswith(PREFIX)


def without_billing(req: ir.Request) -> ir.Request:
    """`req` without a billing block in its system prompt (same object if none)."""
    if not any(is_billing(part.text) for part in req.system):
        return req
    system = tuple(part for part in req.system if not is_billing(part.text))
    return msgspec.structs.replace(req, system=system)


def strip_body(body: dict[str, Any]) -> bool:
    """Remove the billing block from a Messages body's `system`; True if one was."""
    system = body.get("system")
    if isinstance(system, str):
        if is_billing(system):
            del body["system"]
            return True
        return False
    if not isinstance(system, list):
        return False
    kept = [
        block
        for block in system
        if not (isinstance(block, dict) and is_billing(str(block.get("text", ""))))
    ]
    if len(kept) == len(system):
        return False
    if kept:
        body["system"] = kept
    else:
        del body["system"]
    return True
