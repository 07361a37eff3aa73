"""LM Studio as an upstream: what differs from any OpenAI-compatible server.

- It serves Chat Completions natively whatever API it is configured with
  for translated traffic, so Chat clients get the pass-through unless `api`
  is set explicitly.
- Before 0.3.29 it has no `/v1/responses`: the first 404 switches this
  upstream to Chat Completions for the rest of the run (noted once).
- "Not reachable" says what to do in LM Studio's terms.
"""

from __future__ import annotations

import logging

import aiohttp

from lmbridge.core import errors, ir
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.protocols.base import UpstreamCodec
from lmbridge.protocols.registry import upstream_codec
from lmbridge.upstreams.http import HttpUpstream

log = logging.getLogger(__name__)

NATIVE_API = "openai"
"""The API LM Studio serves at every version: Chat Completions."""


class LMStudioUpstream(HttpUpstream):
    """An upstream of `kind = "lmstudio"`."""

    def unavailable(self, reason: str) -> errors.UpstreamUnavailable:
        return errors.UpstreamUnavailable(
            f"LM Studio is not reachable at {self.address} ({reason})"
            " — start its server, or set the address in Settings"
        )

    def speaks(self, api: str) -> bool:
        if api == self.api:
            return True
        return not self.settings.api and api == NATIVE_API

    async def _send_request(
        self, req: ir.Request, record: RequestRecord
    ) -> tuple[aiohttp.ClientResponse, UpstreamCodec]:
        try:
            return await super()._send_request(req, record)
        except errors.LMBridgeError as err:
            if not self._lacks_responses_api(err):
                raise
        # An LM Studio before 0.3.29: remember, and use Chat Completions.
        self.codec = upstream_codec(NATIVE_API)
        record.upstream_api = self.api
        record.note(
            NoteKind.UPSTREAM,
            f"{self.name} has no /v1/responses; using chat completions from now on",
        )
        log.info("upstream %s has no Responses API; using chat", self.name)
        return await super()._send_request(req, record)

    def _lacks_responses_api(self, err: errors.LMBridgeError) -> bool:
        # Its default API (Responses) is what an old LM Studio lacks.
        return (
            self.api != NATIVE_API
            and not self.settings.api
            and err.status in (404, 405)
            and "model" not in err.message.lower()
        )
