"""The scenarios every newer CLI goes through, and the fake model's side of them.

A session of three user turns whose first turn is a tool round trip: the
model asks the client to run `cat note.txt` with the client's own shell
tool, the client runs it, and the note's unique text must be in what the
model receives on the next request; each later turn's request carries the
earlier turns in order. The same responder serves a Chat Completions
upstream (`ScriptedModel`) and Claude on Azure AI Foundry
(`ScriptedFoundry`, a Messages upstream), so one scenario checks both.

Requests that are not part of the conversation (titles, summaries) are
answered with a short text and left out of the checks: the conversation's
requests are those that offer the CLI's shell tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from clients.fake_model import (
    Call,
    Reply,
    Responder,
    chat_text,
    chat_tool_results,
    chat_tools,
)
from fakes.foundry import FakeFoundry
from fakes.openai_upstream import Script, ToolCallScript

CALL_ID = "call_note_1"
NOTE = "NOTE-TEXT-4417"

# --------------------------------------------------- reading either API


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def tool_names(api: str, body: dict[str, Any]) -> set[str]:
    """The names of the tools a request offers (Chat or Messages)."""
    names = set()
    for tool in body.get("tools") or []:
        if api == "chat":
            names.add(str((tool.get("function") or {}).get("name")))
        else:
            names.add(str(tool.get("name")))
    return names


def turns(api: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of the user and assistant messages, tool parts left out."""
    out = []
    for m in body.get("messages", []):
        if m.get("role") not in ("user", "assistant"):
            continue
        content = m.get("content")
        if api == "messages" and isinstance(content, list):
            content = [p for p in content if p.get("type") == "text"]
        out.append((str(m["role"]), _text(content)))
    return out


def tool_results(api: str, body: dict[str, Any]) -> dict[str, str]:
    """The tool results a request carries, by call id."""
    found: dict[str, str] = {}
    for m in body.get("messages", []):
        if api == "chat" and m.get("role") == "tool":
            found[str(m.get("tool_call_id"))] = _text(m.get("content"))
        elif api == "messages" and isinstance(m.get("content"), list):
            for part in m["content"]:
                if part.get("type") == "tool_result":
                    found[str(part.get("tool_use_id"))] = _text(part.get("content"))
    return found


def tool_calls(api: str, body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(id, name, arguments) of every tool call in a request's history."""
    calls = []
    for m in body.get("messages", []):
        if m.get("role") != "assistant":
            continue
        if api == "chat":
            for c in m.get("tool_calls") or []:
                args = json.loads(c["function"]["arguments"] or "{}")
                calls.append((c["id"], c["function"]["name"], args))
        elif isinstance(m.get("content"), list):
            for part in m["content"]:
                if part.get("type") == "tool_use":
                    calls.append((part["id"], part["name"], part["input"]))
    return calls


# ------------------------------------- Claude Code's and Codex's round trips


def chat_user_texts(body: dict[str, Any]) -> list[str]:
    """The texts of a Chat request's user messages."""
    return [chat_text(m) for m in body.get("messages", []) if m.get("role") == "user"]


def claude_bash_round_trip(prompt: str, final: str) -> Responder:
    """Claude Code's turn on `prompt`: the model runs `cat note.txt` with the
    Bash tool (call `call_bash_1`), then answers `final`; other requests
    (titles, warm-ups) get a short text."""

    def respond(api: str, body: dict[str, Any]) -> Reply:
        if not any(prompt in t for t in chat_user_texts(body)):
            return Reply(text="(side request)")
        if chat_tool_results(body):
            return Reply(text=final)
        if "Bash" not in chat_tools(body):
            return Reply(text="I have no Bash tool.")
        args = json.dumps({"command": "cat note.txt", "description": "Show the note"})
        return Reply(calls=[Call("Bash", args, call_id="call_bash_1")])

    return respond


def codex_shell_round_trip(final: str) -> Responder:
    """Codex's turn: the model runs `cat note.txt` with its `exec_command`
    tool (call `call_shell_1`), then answers `final`."""

    def respond(api: str, body: dict[str, Any]) -> Reply:
        if chat_tool_results(body):
            return Reply(text=final)
        if "exec_command" not in chat_tools(body):
            return Reply(text="I have no shell tool.")
        args = json.dumps({"cmd": "cat note.txt"})
        return Reply(calls=[Call("exec_command", args, call_id="call_shell_1")])

    return respond


# ------------------------------------------------------------ the script


@dataclass
class Conversation:
    """Three prompts; turn 1 runs `tool` with `args` before it answers."""

    tool: str
    args: dict[str, Any]
    prompts: tuple[str, ...] = (
        "First question: what does note.txt say?",
        "Second question: and the word BRAVO?",
        "Third question: and the word CHARLIE?",
    )

    @staticmethod
    def answer(n: int) -> str:
        return f"Answer {n} of three, done."

    def asked(self, api: str, body: dict[str, Any]) -> int:
        """How many of the prompts the request carries (0: not ours)."""
        texts = [t for role, t in turns(api, body) if role == "user"]
        return sum(1 for p in self.prompts if any(p in t for t in texts))

    def ours(self, api: str, body: dict[str, Any]) -> bool:
        return self.tool in tool_names(api, body) and self.asked(api, body) > 0

    def respond(self, api: str, body: dict[str, Any]) -> Reply:
        if not self.ours(api, body):
            return Reply(text="(side request)")
        n = self.asked(api, body)
        if n == 1 and CALL_ID not in tool_results(api, body):
            return Reply(calls=[Call(self.tool, json.dumps(self.args), CALL_ID)])
        return Reply(text=self.answer(n))

    def check(self, api: str, bodies: list[dict[str, Any]], runs: int) -> None:
        """What the model received: the tool's output after the call, and
        every turn's request carrying the earlier turns in order."""
        mine = [b for b in bodies if self.ours(api, b)]
        assert mine, [turns(api, b)[-1:] for b in bodies]
        first = mine[0]
        assert self.asked(api, first) == 1 and not tool_results(api, first)
        after = [b for b in mine if CALL_ID in tool_results(api, b)]
        assert after, [turns(api, b)[-1:] for b in mine]
        assert NOTE in tool_results(api, after[0])[CALL_ID]
        calls = tool_calls(api, after[0])
        assert [(i, n) for i, n, _ in calls] == [(CALL_ID, self.tool)], calls
        assert calls[0][2] == self.args
        # The last turn's request: it ends with the last prompt (a CLI may
        # ask more after the answer, e.g. Qwen Code's follow-up checks).
        last = next(
            b
            for b in reversed(mine)
            if turns(api, b)[-1][0] == "user"
            and self.prompts[runs - 1] in turns(api, b)[-1][1]
        )
        expected = []
        for k in range(1, runs):
            expected += [("user", self.prompts[k - 1]), ("assistant", self.answer(k))]
        expected.append(("user", self.prompts[runs - 1]))
        markers = [*self.prompts, *(self.answer(k) for k in (1, 2, 3))]
        seen = [
            (role, marker)
            for role, text in turns(api, last)
            for marker in markers
            if marker in text
        ]
        assert seen == expected, seen


# ------------------------------------------------- Claude on Azure Foundry

FOUNDRY_KEY_ENV = "LMBRIDGE_TEST_FOUNDRY_KEY"
FOUNDRY_KEY = "foundry-fake-key-0000"
CLAUDE_MODEL = "claude-sonnet-4-5"  # what the CLI asks for
CLAUDE_DEPLOYMENT = "claude-deploy"


class ScriptedFoundry(FakeFoundry):
    """The fake Foundry answering Claude's route from `conversation`."""

    def __init__(self, conversation: Conversation) -> None:
        super().__init__()
        self.api_key = FOUNDRY_KEY
        self.conversation = conversation

    async def _intake(
        self, request: web.Request
    ) -> tuple[dict[str, Any], web.Response | None]:
        body, failed = await super()._intake(request)
        reply = self.conversation.respond("messages", body)
        calls = [ToolCallScript(c.name, c.arguments, c.call_id) for c in reply.calls]
        self.script = Script(text=reply.text, tool_calls=calls)
        return body, failed

    def claude_bodies(self) -> list[dict[str, Any]]:
        return [a.body for a in self.attempts if a.path == "/anthropic/v1/messages"]


def foundry_config(foundry: FakeFoundry) -> str:
    """LM Bridge's upstream and route for Claude on the fake Foundry."""
    return f"""
[[upstream]]
name = "foundry"
kind = "azure-foundry"
base_url = "{foundry.url}"
api = "messages"
auth = "api-key"
api_key_env = "{FOUNDRY_KEY_ENV}"

[[route]]
model = "claude-*"
upstream = "foundry"
target = "{CLAUDE_DEPLOYMENT}"
"""
