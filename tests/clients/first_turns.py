"""Record what each newer CLI sends on its first turn:
`python tests/clients/first_turns.py tests/clients/captures`.

Not a test. Each CLI (installed by `make clients`) runs straight against the
scripted fake in `fake_model.py`, no LM Bridge in between, and its first
conversation request is written to OUTDIR/<cli>.json: the pinned version,
method, path, query, the headers (secret values and per-run ids replaced,
connection details dropped) and the body's shape (its keys, the values of
the small fields, message roles, tool names). Gemini CLI's request is
captured even though the fake does not speak the Gemini API (it answers
404). Run it again after moving a pin in the Makefile;
test_captures.py fails until the captures name the pinned versions.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clients import clis, harness
from clients.fake_model import Reply, ScriptedModel

PROMPT = "Say hello in one short sentence."
DROPPED = {"host", "content-length", "connection", "accept-encoding"}
SECRET = re.compile(r"(authorization|api-key|x-goog-api-key|x-api-key|cookie)", re.I)
PER_RUN = re.compile(r"(session|affinity|request-id|x-stainless-retry)", re.I)
VERSIONS = {
    "opencode": "OPENCODE_VERSION",
    "cline": "CLINE_VERSION",
    "qwen": "QWEN_CODE_VERSION",
    "cn": "CONTINUE_CLI_VERSION",
    "gemini": "GEMINI_CLI_VERSION",
}
CLIS = [
    clis.OPENCODE_CLI,
    clis.CLINE_CLI,
    clis.QWEN_CLI,
    clis.CONTINUE_CLI,
    clis.GEMINI_CLI,
]


def pinned(variable: str) -> str:
    """A version pinned in the Makefile."""
    text = (harness.REPO / "Makefile").read_text()
    found = re.search(rf"^{variable} := (\S+)$", text, re.M)
    assert found, variable
    return found.group(1)


def headers(seen: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in sorted(seen.items(), key=lambda kv: kv[0].lower()):
        if name.lower() in DROPPED:
            continue
        if SECRET.search(name):
            value = re.sub(re.escape(harness.FAKE_KEY), "<key>", value)
        elif PER_RUN.search(name):
            value = "<per run>"
        out[name] = value
    return out


def shape(body: dict[str, Any]) -> dict[str, Any]:
    """The body's keys, small values kept, big ones summarized."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "messages":
            out[key] = [m.get("role") for m in value]
        elif key == "contents":
            out[key] = [c.get("role") for c in value]
        elif key == "tools":
            names = []
            for tool in value:
                if "function" in tool:
                    names.append(tool["function"]["name"])
                elif "functionDeclarations" in tool:
                    names += [f["name"] for f in tool["functionDeclarations"]]
                else:
                    names.append(tool.get("name") or tool.get("type"))
            out[key] = sorted(names)
        elif key in ("system", "systemInstruction"):
            out[key] = "<text>"
        elif isinstance(value, dict):
            out[key] = {
                k: v for k, v in value.items() if not isinstance(v, (dict, list))
            }
        else:
            out[key] = value
    return out


def first_turn(fake: ScriptedModel) -> dict[str, Any]:
    """The first request carrying the prompt and tools."""
    for seen in fake.requests:
        body = seen.body if isinstance(seen.body, dict) else {}
        if body.get("tools") and PROMPT in json.dumps(body):
            return {
                "method": seen.method,
                "path": seen.path,
                "query": seen.query,
                "headers": headers(seen.headers),
                "body": shape(body),
            }
    raise AssertionError([s.path for s in fake.requests])


async def capture(cli: clis.Cli, out: Path, trap: harness.ProxyTrap) -> None:
    root = out / "tmp" / cli.name
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    fake = ScriptedModel(lambda api, body: Reply(text="Hello."))
    await fake.start()
    try:
        env = cli.setup(root, fake.url, trap.url, "fake-model")
        result = await harness.run(cli.argv(PROMPT, False), env, work, timeout=120)
        try:
            turn = first_turn(fake)
        except AssertionError:
            print(result.explain(), flush=True)
            raise
        record: dict[str, Any] = {
            "client": cli.name,
            "version": pinned(VERSIONS[cli.name]),
            "first_turn": turn,
        }
    finally:
        await fake.stop()
    (out / f"{cli.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{cli.name}: {record['first_turn']['path']}", flush=True)


async def main(out: Path) -> None:
    trap = harness.ProxyTrap()
    await trap.start()
    for cli in CLIS:
        if (reason := clis.missing(Path(cli.argv("", False)[0]))) is not None:
            raise SystemExit(reason)
        await capture(cli, out, trap)
    await trap.stop()


if __name__ == "__main__":
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else "captures")
    outdir.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(outdir))
