"""Which upstream made each piece of opaque reasoning a client carries in
its history, and where each may go back to.

Two kinds of reasoning only some upstreams can take back:

- OpenAI encrypted reasoning (`encrypted_content` of a Responses
  `reasoning` item, `Thinking.data`): only the upstream that produced it can
  read it; another refuses the request or misreads it.
- Anthropic thinking (`Thinking.signature`): a Messages upstream checks the
  signature and refuses the request ("Invalid `signature` in `thinking`
  block") when it did not make it; and refuses thinking without one.

The pipeline remembers where each item came from, for whole and streamed
answers alike (relayed answers report what they carried,
`RelayRules.produced` and `Passthrough.whole_produced`; translated ones,
a whole answer being the stream assembled, through `observe`), and a
request goes to an upstream only with what is valid there (`foreign`
counts the rest, `without_foreign` leaves it out, `notes` says what on
the record):

- encrypted reasoning only to the upstream that made it;
- signed thinking, to a Messages upstream, only when that upstream made
  it, or when both it and the upstream that made it are on Anthropic's own
  platform. Anthropic documents its signatures as valid across its
  platform; LM Bridge recognises the platform by the upstream's settings:
  kind `azure-foundry` (Claude on Foundry) or kind `anthropic` at
  api.anthropic.com (or with no base_url). Any other Messages server (LM
  Studio's `/v1/messages`, an Anthropic-compatible gateway) signs with keys
  of its own. A signature of unknown origin (made before a restart, or
  before the client came to LM Bridge) goes only to the platform, which is
  where Claude Code's own signatures come from;
- thinking without a signature (produced through a Chat or Responses
  upstream) never goes to a Messages upstream: it is dropped, not turned
  into text the model would take for its own answer, and the record says
  so ("thinking without a signature", `protocols/anthropic/upstream.py`).

Signatures and encrypted reasoning mean nothing to the other APIs, whose
codecs leave them out.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from urllib.parse import urlsplit

import msgspec

from lmbridge.core import ir

ANTHROPIC_HOST = "api.anthropic.com"
# Items remembered at most (the oldest are forgotten first).
LIMIT = 20_000


def _digest(data: str) -> bytes:
    return hashlib.blake2b(data.encode(), digest_size=16).digest()


class ReasoningOrigins:
    """Opaque reasoning -> the upstream that produced it, for this run.

    `platform` names the upstreams on Anthropic's own platform, whose
    signatures each of them accepts.
    """

    def __init__(
        self, limit: int = LIMIT, platform: frozenset[str] = frozenset()
    ) -> None:
        self.limit = limit
        self.platform = platform
        self._origin: OrderedDict[bytes, str] = OrderedDict()

    def remember(self, produced: list[str], upstream: str) -> None:
        """`upstream` made each of `produced` (encrypted reasoning, signatures)."""
        for data in produced:
            key = _digest(data)
            self._origin[key] = upstream
            self._origin.move_to_end(key)
        while len(self._origin) > self.limit:
            self._origin.popitem(last=False)

    def observe(self, event: ir.Event, upstream: str) -> None:
        """A translated stream's event: remember a signature it carries."""
        if isinstance(event, ir.SignatureDelta) and event.signature:
            self.remember([event.signature], upstream)

    def _origin_of(self, data: str) -> str | None:
        return self._origin.get(_digest(data))

    def _encrypted_elsewhere(self, part: ir.Thinking, upstream: str) -> bool:
        return (
            bool(part.data)
            and not part.redacted
            and (self._origin_of(part.data or "") != upstream)
        )

    def _signed_elsewhere(self, part: ir.Thinking, upstream: str, signs: bool) -> bool:
        if not signs or not part.signature or part.data:
            return False
        origin = self._origin_of(part.signature)
        if origin == upstream:
            return False
        on_platform = upstream in self.platform
        return not (on_platform and (origin is None or origin in self.platform))

    @staticmethod
    def _unsigned(part: ir.Thinking, signs: bool) -> bool:
        return signs and not part.signature and not part.redacted and not part.data

    def _thinking(self, req: ir.Request) -> list[ir.Thinking]:
        return [
            part
            for message in req.messages
            for part in message.parts
            if isinstance(part, ir.Thinking)
        ]

    def foreign(self, req: ir.Request, upstream: str, signs: bool = False) -> int:
        """How many reasoning items of `req` are not valid at `upstream`
        (`signs`: whose API checks thinking signatures, `Wire.signs_thinking`):
        such a request is translated, not relayed."""
        return sum(
            1
            for part in self._thinking(req)
            if self._encrypted_elsewhere(part, upstream)
            or self._signed_elsewhere(part, upstream, signs)
            or self._unsigned(part, signs)
        )

    def notes(self, req: ir.Request, upstream: str, signs: bool = False) -> list[str]:
        """What `without_foreign` (and the Messages codec) leave out, for
        the record."""
        parts = self._thinking(req)
        encrypted = sum(self._encrypted_elsewhere(p, upstream) for p in parts)
        signed = sum(self._signed_elsewhere(p, upstream, signs) for p in parts)
        out = []
        if encrypted:
            out.append(
                f"dropped for {upstream}: encrypted reasoning made by another"
                f" upstream ({encrypted})"
            )
        if signed:
            out.append(
                f"dropped for {upstream}: thinking signed by another upstream"
                f" ({signed} blocks)"
            )
        return out

    def without_foreign(
        self, req: ir.Request, upstream: str, signs: bool = False
    ) -> ir.Request:
        """`req` without the opaque reasoning and signatures not valid at
        `upstream` (readable text is kept where the API takes it: the
        Messages codec drops thinking that is left without a signature)."""
        messages = []
        for message in req.messages:
            parts: list[ir.Part] = []
            for part in message.parts:
                if isinstance(part, ir.Thinking) and (
                    self._encrypted_elsewhere(part, upstream)
                    or self._signed_elsewhere(part, upstream, signs)
                ):
                    if part.text:
                        parts.append(
                            msgspec.structs.replace(part, data=None, signature=None)
                        )
                    continue
                parts.append(part)
            if parts:
                messages.append(ir.Message(message.role, tuple(parts)))
        return msgspec.structs.replace(req, messages=tuple(messages))


def anthropic_platform(upstreams: list[tuple[str, str, str]]) -> frozenset[str]:
    """The names of the upstreams on Anthropic's own platform, from
    (name, kind, base_url) of each: Claude on Azure AI Foundry, and
    Anthropic's API itself."""
    return frozenset(
        name
        for name, kind, base_url in upstreams
        if kind == "azure-foundry"
        or (
            kind == "anthropic"
            and urlsplit(base_url).hostname in (None, ANTHROPIC_HOST)
        )
    )
