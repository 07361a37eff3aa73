"""Claude Code's billing block, which only Anthropic's own servers read.

Claude Code (2.1+) starts the system prompt with a text block
`x-anthropic-billing-header: cc_version=2.1.332.d7d; cc_entrypoint=sdk-cli;`
whose suffix changes with the conversation. For any other server it is
noise at the very start of the prompt that changes between turns, so the
server's prompt cache is lost and every turn re-processes everything. LM
Bridge drops it for upstreams other than Claude on Azure AI Foundry
(`keep_billing_header = true` on an upstream keeps it).

`BILLING` is the protocol's `Wire.platform_block`: code outside asks the
codec (or `registry.platform_blocks()`) for it, never this module.
"""

from __future__ import annotations

from typing import Any

from lmbridge.protocols.base import PlatformBlock

BILLING = PlatformBlock(
    prefix="x-anthropic-billing-header:",
    note="the billing block of Claude Code's system prompt (changes every turn)",
)


def strip_body(body: dict[str, Any]) -> bool:
    """Remove the billing block from a Messages body's `system`; True if one was."""
    system = body.get("system")
    if isinstance(system, str):
        if BILLING.matches(system):
            del body["system"]
            return True
        return False
    if not isinstance(system, list):
        return False
    kept = [
        block
        for block in system
        if not (isinstance(block, dict) and BILLING.matches(str(block.get("text", ""))))
    ]
    if len(kept) == len(system):
        return False
    if kept:
        body["system"] = kept
    else:
        del body["system"]
    return True
