"""Before a request reaches LM Studio: load on demand, minimum context, fit.

- Load on demand: a model the request names that LM Studio has downloaded
  but not loaded is loaded with the configured context length (not LM
  Studio's small JIT default). Concurrent requests share one load.
- Minimum context: a loaded model whose context is below the configured
  minimum is reloaded with it (policy "auto"), reported ("warn"), or left
  alone ("off").
- Context fit: the prompt's tokens are estimated (protocols/tokens.py). When
  the prompt plus `max_tokens` exceed the loaded context but the prompt
  leaves room for at least `MIN_ANSWER` tokens, `max_tokens` is lowered to
  what fits (Claude Code asks for 32000 or more whatever the model); when it
  leaves less, the request is refused with a context-overflow error, before
  anything is sent, naming the model, its context and the fix.

Each `lmstudio` upstream has its own preparer and model service, on the
host and port of its own `base_url`. Where that server does not speak the
SDK (another OpenAI-compatible server, an LM Studio whose SDK port is not
reachable), model management is off for the upstream: said once, in the
log and on the request's record, and requests go out by REST as they are.
"""

from __future__ import annotations

import logging
import time

from lmbridge.config import LMStudioSettings
from lmbridge.core import errors, ir
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.lmstudio import (
    ConnectionState,
    ContextPolicy,
    EnsureAction,
    LMStudioService,
)
from lmbridge.protocols import tokens

log = logging.getLogger(__name__)


class ModelPreparer:
    """Gets LM Studio ready for one request, using the model service."""

    def __init__(
        self,
        service: LMStudioService,
        settings: LMStudioSettings,
        upstream: str = "",
    ) -> None:
        self.service = service
        self.settings = settings
        self.upstream = upstream
        # Whether "model management is off" has been said since the last
        # connection (once per outage, not once per request).
        self._said_off = False

    @property
    def connected(self) -> bool:
        return self.service.status.state is ConnectionState.CONNECTED

    def off_note(self) -> str | None:
        """Why model management is off for this upstream, once per outage."""
        status = self.service.status
        if status.state is ConnectionState.CONNECTED:
            self._said_off = False
            return None
        if self._said_off or status.error is None:
            return None  # said already, or the first attempt is under way
        self._said_off = True
        name = f" for {self.upstream}" if self.upstream else ""
        return (
            f"model management is off{name}: no LM Studio SDK answers at"
            f" {self.service.connection.address} ({status.error}); requests go by REST"
            " without loads or context checks"
        )

    async def prepare(
        self, req: ir.Request, target: str, record: RequestRecord
    ) -> int | None:
        """Load `target` if needed, check its context, and check the fit.

        Returns a cap for `max_tokens` when the answer must be shorter than
        asked to fit. Does nothing while LM Studio is not connected: the
        request then goes out and fails or succeeds on its own.
        """
        if not self.connected:
            if (note := self.off_note()) is not None:
                log.info("%s", note)
                record.note(NoteKind.LOAD, note)
            return None
        svc = self.service
        loaded = svc.loaded_model(target)
        if loaded is None and self.settings.load_on_demand:
            started = time.monotonic()
            record.note(NoteKind.LOAD, f"loading {target}")
            loaded = await svc.ensure_loaded(target, self.settings.load_context_length)
            record.note(
                NoteKind.LOAD,
                f"loaded {target} with context {loaded.context_length}"
                f" in {time.monotonic() - started:.1f}s",
            )
        if loaded is None:
            return None
        policy = ContextPolicy(self.settings.context_policy)
        if policy is not ContextPolicy.OFF:
            result = await svc.ensure_context(target, self.settings.min_context, policy)
            if result.action is EnsureAction.RELOADED:
                record.note(NoteKind.LOAD, result.message or f"reloaded {target}")
            elif result.action is EnsureAction.BELOW_MINIMUM:
                record.note(NoteKind.LOAD, result.message)
        context = svc.loaded_context(target)
        if not context:
            return None
        cap = fit(req, target, context)
        if cap is not None:
            record.note(
                NoteKind.LIMIT, f"max_tokens lowered to {cap} to fit context {context}"
            )
        return cap


# The fewest answer tokens worth sending a request for.
MIN_ANSWER = 512
# Estimates are within about 15%; keep this much of the context spare.
SAFETY = 0.05


# What to do about an overflow on a server that reports its window itself
# (llama.cpp's /props), by `fix.format(context=..., model=...)`.
SERVER_WINDOW_FIX = (
    "the server gives each request a context of {context} tokens (llama-server:"
    " -c divided by --parallel); restart it with a larger -c or fewer slots, or"
    " shorten the conversation"
)


def fit(
    req: ir.Request, model: str, context: int, *, fix: str | None = None
) -> int | None:
    """A `max_tokens` cap that makes `req` fit `context` (None: it fits).

    Raises ContextOverflow when the prompt leaves too little room; its
    message names the fix (`fix`, formatted with `context` and `model`;
    by default, LM Studio's).
    """
    prompt = tokens.count_request(req)
    room = int(context * (1 - SAFETY)) - prompt
    asked = req.max_tokens
    if asked is not None and asked <= room:
        return None
    if room >= min(MIN_ANSWER, asked or MIN_ANSWER):
        return room
    fix = (
        fix.format(context=context, model=model)
        if fix
        else (
            f"the model is loaded with a context of {context} tokens; reload it with"
            " a larger context (Models panel, `lmbridge models load"
            f" {model} --context N`, or lmstudio.min_context), or shorten the"
            " conversation"
        )
    )
    # What is kept free: the estimate's margin and the smallest answer, so
    # the message's "N tokens > M maximum" holds (M = context - reserve).
    reserve = (
        context - int(context * (1 - SAFETY)) + min(MIN_ANSWER, asked or MIN_ANSWER)
    )
    raise errors.ContextOverflow.for_prompt(
        prompt, context, model, fix, reserve=reserve
    )
