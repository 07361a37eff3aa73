"""Why a prefix broke: each request's prompt against its chain's previous one.

A server's prompt cache (llama.cpp, LM Studio, vLLM, Anthropic, OpenAI)
reuses the longest unchanged START of the prompt and evaluates the rest
again; one changed byte early on costs the whole conversation. For every
request in a chain (the session key and the subagent within it,
`ir.ClientInfo.chain_key`), `PrefixTracker` compares the prompt that goes
upstream with the previous request's of the same chain on the same model,
and writes on the request's record:

- `chain_turn`: the request's turn in its chain;
- `prefix_change` (`core.record.PrefixChange`): only appended, or where it
  broke: a setting the cache keys on (reasoning, which changes the chat
  template), the system prompt, the tools, an earlier message rewritten
  (edited; or the history compacted into a shorter one), messages moved;
- `prefix_at` and `prefix_detail`: the first message that differs, and
  what is there, in words;
- `kept_tokens`: the prompt tokens that are the same as before (the
  previous request's prompt tokens as the upstream counted them, scaled
  by the share of its bytes that is unchanged; the estimate of
  `protocols/tokens.py` where the upstream counted nothing).

It is cheap: a prompt is fingerprinted once per request as one short hash
per message (of its canonical bytes), of the system prompt, of the tools
and of the settings, never diffed as text, and only for requests that
belong to a chain; and that happens when the answer is over, so it adds
nothing ahead of the answer (about 0.2 ms of CPU for a 50 KB prompt).
State is bounded: the last prompt of at most
`MAX_CHAINS` chains (least recently used first out), `MAX_MODELS` models
each.

When a turn only appended but the upstream reports it served less than
half of what it could have reused from its cache, the chain's reuse
collapsed (the server dropped this conversation for another one); the
record gets a note that says so and what to do. A broken prefix that cost
most of the prompt gets a note naming the cause too.

The pipeline calls `observe` before each try at an upstream (only the
first counts: it numbers the turn and keeps a reference to the prompt) and
`finish` when the request is over, before its record is published
finished (it fingerprints and compares).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import msgspec

from lmbridge.core import ir
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind, PrefixChange
from lmbridge.protocols import tokens
from lmbridge.protocols.registry import platform_blocks
from lmbridge.upstreams.router import Resolved

MAX_CHAINS = 512
MAX_MODELS = 4
COLLAPSED = 0.5
"""A chain's reuse collapsed when the server served less than this share
of what the turn kept from the previous one."""

_encode = msgspec.json.Encoder().encode


# Python's own (SipHash) hash: several times faster than hashlib's, and
# enough here, where prints never leave this process. The builtin itself,
# so that map() runs it without a Python frame per message.
_digest: Callable[[bytes], int] = hash


class PromptPrint(msgspec.Struct, frozen=True):
    """A prompt's fingerprint: what a server's cache keys on, hashed in parts."""

    settings: tuple[tuple[str, str], ...]
    system: int
    tools: int
    tool_names: tuple[str, ...]
    head_size: int  # bytes of the system prompt and tools
    messages: tuple[int, ...]  # one hash per message
    sizes: tuple[int, ...]  # each message's canonical bytes
    roles: tuple[str, ...]

    @property
    def size(self) -> int:
        return self.head_size + sum(self.sizes)


def fingerprint(req: ir.Request, target: str) -> PromptPrint:
    """The fingerprint of `req` as it goes to `target`."""
    # map() and list comprehensions, not generators: this runs on every
    # turn of a chain, over every message.
    messages = req.messages
    encoded = list(map(_encode, messages))
    system = _encode(req.system)
    tools = _encode(req.tools)
    reasoning = req.reasoning
    settings = (
        ("model", target),
        ("reasoning effort", (reasoning.effort or "") if reasoning else "off"),
        ("reasoning budget", str(reasoning.budget_tokens or "") if reasoning else ""),
    )
    return PromptPrint(
        settings=settings,
        system=_digest(system),
        tools=_digest(tools),
        tool_names=tuple([tool.name for tool in req.tools]),
        head_size=len(system) + len(tools),
        messages=tuple(map(_digest, encoded)),
        sizes=tuple(map(len, encoded)),
        roles=tuple([message.role.value for message in messages]),
    )


class Comparison(msgspec.Struct, frozen=True):
    """How a prompt differs from the one before it in its chain."""

    change: PrefixChange
    at: int | None = None  # the first message that differs (0-based)
    detail: str = ""
    kept_bytes: int = 0  # of the previous prompt, unchanged in this one


def _settings_detail(old: PromptPrint, new: PromptPrint) -> str:
    changed = [
        f"{name} {before or '—'} → {after or '—'}"
        for (name, before), (_n, after) in zip(old.settings, new.settings, strict=True)
        if before != after
    ]
    return "; ".join(changed)


def _tools_detail(old: PromptPrint, new: PromptPrint) -> str:
    added = [name for name in new.tool_names if name not in old.tool_names]
    removed = [name for name in old.tool_names if name not in new.tool_names]
    parts = []
    if added:
        parts.append("added " + ", ".join(added[:5]))
    if removed:
        parts.append("removed " + ", ".join(removed[:5]))
    if not parts:
        if sorted(old.tool_names) == sorted(new.tool_names) and (
            old.tool_names != new.tool_names
        ):
            return "the same tools in another order"
        return "a tool's definition changed"
    return "; ".join(parts)


def compare(old: PromptPrint | None, new: PromptPrint) -> Comparison:
    """Where `new` stops being `old`, and how much of `old` it kept."""
    if old is None:
        return Comparison(PrefixChange.FIRST)
    if old.settings != new.settings:
        return Comparison(PrefixChange.SETTING, detail=_settings_detail(old, new))
    if old.system != new.system:
        return Comparison(PrefixChange.SYSTEM, detail="the system prompt changed")
    if old.tools != new.tools:
        return Comparison(PrefixChange.TOOLS, detail=_tools_detail(old, new))
    same = 0
    for before, after in zip(old.messages, new.messages, strict=False):
        if before != after:
            break
        same += 1
    kept = old.head_size + sum(old.sizes[:same])
    if same == len(old.messages):
        return Comparison(PrefixChange.APPENDED, kept_bytes=kept)
    if same == len(new.messages):
        detail = f"the last {len(old.messages) - same} message(s) left out"
        return Comparison(PrefixChange.REWOUND, same, detail, kept)
    where = f"message {same + 1} ({new.roles[same]})"
    later = set(old.messages[same + 1 :])
    if new.messages[same] in later:
        return Comparison(PrefixChange.REORDERED, same, f"{where} moved", kept)
    survivors = sum(h in set(new.messages) for h in old.messages[same:])
    if len(new.messages) < len(old.messages) and survivors * 2 < len(
        old.messages[same:]
    ):
        detail = (
            f"{len(old.messages) - same} messages from {where} on replaced by"
            f" {len(new.messages) - same}"
        )
        return Comparison(PrefixChange.COMPACTED, same, detail, kept)
    return Comparison(PrefixChange.EDITED, same, f"{where} rewritten", kept)


class _Turn(msgspec.Struct):
    """A chain's last prompt on one model, and what the upstream counted."""

    print: PromptPrint
    turn: int
    prompt_tokens: int


class _Chain(msgspec.Struct):
    turns: int = 0
    last_target: str = ""
    # By "upstream/target": the last finished prompt there.
    models: OrderedDict[str, _Turn] = msgspec.field(default_factory=OrderedDict)


class _Pending(msgspec.Struct):
    chain: str
    model: str
    target: str
    req: ir.Request


class _Compared(msgspec.Struct):
    print: PromptPrint
    comparison: Comparison
    previous: _Turn | None


class PrefixTracker:
    """Per-chain prompt fingerprints, bounded; see the module docstring."""

    def __init__(self, max_chains: int = MAX_CHAINS) -> None:
        self.max_chains = max_chains
        self._chains: OrderedDict[str, _Chain] = OrderedDict()
        self._pending: dict[int, _Pending] = {}

    def __len__(self) -> int:
        return len(self._chains)

    def observe(
        self, record: RequestRecord, req: ir.Request, resolved: Resolved
    ) -> None:
        """Note `req`, about to go to `resolved`, as its chain's next turn;
        the first try of a request counts, not its retries. The comparison
        waits for `finish`: nothing is added ahead of the answer."""
        key = req.client.chain_key
        if key is None or record.chain_turn is not None:
            return
        chain = self._chains.pop(key, None) or _Chain()
        self._chains[key] = chain
        while len(self._chains) > self.max_chains:
            self._chains.popitem(last=False)
        chain.turns += 1
        record.chain_turn = chain.turns
        if "previous_response_id" in req.extras:
            # The upstream (or LM Bridge's memory) holds the earlier turns;
            # only new input is here, after all of them.
            record.prefix_change = PrefixChange.APPENDED
            record.prefix_detail = "continues a stored response"
            return
        upstream = resolved.upstream
        if not upstream.keeps_billing_header:
            for block in platform_blocks():
                req = block.without(req)  # it does not go upstream
        model = f"{upstream.name}/{resolved.target}"
        self._pending[record.id] = _Pending(key, model, resolved.target, req)

    def finish(self, record: RequestRecord) -> None:
        """The request is over: compare its prompt with its chain's last,
        write what changed, the kept tokens and any note on the record, and
        (when it succeeded) keep its prompt as the chain's last."""
        pending = self._pending.pop(record.id, None)
        if pending is None:
            return
        chain = self._chains.get(pending.chain)
        if chain is None:  # forgotten meanwhile (the LRU was full)
            return
        new = fingerprint(pending.req, pending.target)
        previous = chain.models.get(pending.model)
        comparison = compare(previous.print if previous else None, new)
        if previous is None and chain.last_target not in ("", pending.model):
            comparison = Comparison(
                PrefixChange.FIRST,
                detail=(
                    f"first on {pending.model}; the chain ran on {chain.last_target}"
                ),
            )
        chain.last_target = pending.model
        record.prefix_change = comparison.change
        record.prefix_at = comparison.at
        record.prefix_detail = comparison.detail
        compared = _Compared(new, comparison, previous)
        record.kept_tokens = _kept_tokens(record, pending, compared)
        _note(record, compared)
        if record.error or not 200 <= record.status < 300:
            return
        models = chain.models
        models.pop(pending.model, None)
        models[pending.model] = _Turn(new, record.chain_turn or 0, record.tokens_in)
        while len(models) > MAX_MODELS:
            models.popitem(last=False)


def _kept_tokens(
    record: RequestRecord, pending: _Pending, compared: _Compared
) -> int | None:
    """The prompt tokens unchanged since the previous turn (an estimate)."""
    kept = compared.comparison.kept_bytes
    previous = compared.previous
    if previous is None or kept == 0:
        return 0 if previous is not None else None
    if previous.prompt_tokens > 0:
        estimate = previous.prompt_tokens * kept / max(previous.print.size, 1)
    else:
        prompt = record.tokens_in or tokens.count_request(pending.req)
        estimate = prompt * kept / max(compared.print.size, 1)
    if record.tokens_in > 0:
        estimate = min(estimate, record.tokens_in)
    return round(estimate)


_CAUSES: dict[PrefixChange, str] = {
    PrefixChange.SYSTEM: (
        "the system prompt changed, so the server evaluated the whole prompt"
        " again — a client that writes the date, a git status or other"
        " changing text into its system prompt does this every turn"
    ),
    PrefixChange.TOOLS: (
        "the tools changed ({detail}), so the server evaluated the whole"
        " prompt again — tools that come and go (MCP servers connecting, a"
        " per-turn tool list) do this"
    ),
    PrefixChange.SETTING: (
        "{detail} changed the prompt's template, so the server evaluated the"
        " whole prompt again — keep the setting the same through a session"
    ),
}


def _note(record: RequestRecord, compared: _Compared) -> None:
    previous, change = compared.previous, compared.comparison.change
    if previous is None or record.tokens_in <= 0:
        return
    cause = _CAUSES.get(change)
    if cause is not None and previous.prompt_tokens >= record.tokens_in * COLLAPSED:
        text = cause.format(detail=compared.comparison.detail)
        record.note(NoteKind.CACHE, f"prompt cache: {text}")
        return
    kept, cached = record.kept_tokens, record.cached_tokens
    if change is not PrefixChange.APPENDED or cached is None or not kept:
        return
    if cached >= kept * COLLAPSED:
        return
    record.note(
        NoteKind.CACHE,
        f"prompt cache lost: this turn only added to the conversation, yet"
        f" {record.upstream} reused {cached:,} of the {kept:,} prompt tokens it"
        f" had before and evaluated {record.tokens_in - cached:,} again. The"
        " server dropped this conversation from its cache, most likely for"
        " another one (a subagent, another client) — give it more slots"
        " (llama-server --parallel, LM Studio's parallel requests) or more"
        " cache memory (llama-server --cache-ram), or run fewer conversations"
        " at once",
    )
