"""What the three upstream encoders share about carrying an IR conversation.

Every upstream API gets the conversation in the same normal form before its
encoder writes it (`normal_form`), so that servers accept every turn and
the encoding of a turn never depends on what comes after it:

- in a user message, tool results come first (Chat `tool` messages and
  Anthropic `tool_result` blocks must directly follow the calls);
- adjacent text parts are one text, joined by `ir.join_text` (no word or
  line boundary is lost, whatever the server does with several parts);
  empty text parts are dropped, as are messages left with nothing;
- for APIs that take system text only at the start (Chat, Messages), a
  system message in the middle of the conversation becomes user text,
  `system_note(text)`, merged into the user message next to it;
- consecutive messages of the same role are merged (many chat templates
  insist that user and assistant alternate).

`refuse_unportable` is the 400 an encoder gives for `Request.unportable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lmbridge.core import ir
from lmbridge.core.errors import InvalidRequest

SYSTEM_NOTE = "<system>\n{text}\n</system>"
"""A mid-conversation system message, sent as user text."""


def system_note(text: str) -> str:
    """How a system message reads where only user text can carry it."""
    return SYSTEM_NOTE.format(text=text)


def normal_form(
    messages: Iterable[ir.Message], *, system_as_user: bool
) -> list[ir.Message]:
    """`messages` in the form every encoder starts from (module docstring).

    With `system_as_user`, SYSTEM messages become user text; otherwise they
    stay SYSTEM messages, with their text joined.
    """
    out: list[ir.Message] = []
    for message in messages:
        role, parts = message.role, list(message.parts)
        if role is ir.Role.SYSTEM:
            texts = ir.join_text(p.text for p in parts if isinstance(p, ir.Text))
            if not texts:
                continue
            if system_as_user:
                role, parts = ir.Role.USER, [ir.Text(system_note(texts))]
            else:
                parts = [ir.Text(texts)]
        if out and out[-1].role is role and role is not ir.Role.SYSTEM:
            parts = [*out.pop().parts, *parts]
        if role is ir.Role.USER:
            parts.sort(key=lambda p: not isinstance(p, ir.ToolResult))
        merged = merge_texts(parts)
        if merged:
            out.append(ir.Message(role, tuple(merged)))
    return out


def merge_texts(parts: Sequence[ir.Part]) -> list[ir.Part]:
    """`parts` with each run of adjacent texts joined into one; no empty text."""
    out: list[ir.Part] = []
    run: list[str] = []
    for part in parts:
        if isinstance(part, ir.Text):
            run.append(part.text)
            continue
        if run:
            _add_run(out, run)
            run = []
        out.append(part)
    if run:
        _add_run(out, run)
    return out


def _add_run(out: list[ir.Part], run: list[str]) -> None:
    """A run of texts as one text part (none if empty); a single text, the
    most common run, is not joined."""
    if text := run[0] if len(run) == 1 else ir.join_text(run):
        out.append(ir.Text(text))


def rewritten(request: ir.Request, api: str) -> list[str]:
    """The record's line for system messages sent as user text, if any."""
    count = [m.role for m in request.messages].count(ir.Role.SYSTEM)
    if not count:
        return []
    return [
        f"system messages inside the conversation ({count}): sent in place as"
        f" user text ({api} takes system text only at the start)"
    ]


def refuse_unportable(request: ir.Request, api: str) -> None:
    """Refuse `request` if it holds fields only its own protocol carries.

    `api` names the upstream API ("Messages", "Responses") in the message.
    """
    if not request.unportable:
        return
    field = request.unportable[0].partition(":")[0]
    asked = "; ".join(request.unportable)
    raise InvalidRequest(
        f"{asked}: this model's upstream speaks {api}, which cannot carry"
        f" {'these fields' if len(request.unportable) > 1 else 'this field'};"
        " leave it out, or route the model to an upstream that speaks the"
        " client's API",
        param=field,
    )
