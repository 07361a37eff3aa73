"""Token estimates without a tokenizer, for count_tokens and the context-fit guard.

How it is computed: the text's UTF-8 bytes are mapped to character classes
(lowercase, uppercase, digit, punctuation, space, line break, non-ASCII) with
`bytes.translate`, and C string counting then finds the pieces a GPT-2-style
BPE pre-tokenizer would cut: words and camelCase humps, runs of capitals,
single digits, punctuation runs, line breaks and indentation. The estimate is
a weighted sum of those counts, fitted by least squares against the tokenizer
of SmolLM2 (a 49k-entry BPE) on ~950 English prose, Python, C, Rust,
JavaScript, Markdown, JSON-schema and shell texts: every whole document is
within 10% of the real count and every 2 KB chunk within 15% (mean error
2.5%); other languages get a rougher guess. No model is loaded, 50 KB takes
under a millisecond, long texts are memoised, and an image costs a flat
`IMAGE_TOKENS`.
"""

from __future__ import annotations

import functools

import msgspec

from lmbridge.core import ir

IMAGE_TOKENS = 1000
"""A flat cost per image: about what a ~900x900 picture costs Claude or GPT-4o."""

MESSAGE_TOKENS = 4
"""Chat-template tokens around each message (ChatML: role header and end)."""

REPLY_TOKENS = 3
"""The template's header that primes the assistant's reply."""

TOOL_TOKENS = 8
"""Per tool definition, for the template's wrapping of name and schema."""

PART_TOKENS = 3
"""Per tool call or tool result, for its id, name and delimiters."""


def _table(default: str, **classes: str) -> bytes:
    """A `bytes.translate` table: each keyword's byte values map to its name."""
    table = bytearray(default.encode() * 256)
    for name, members in classes.items():
        for char in members:
            table[ord(char)] = ord(name)
    return bytes(table)


_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()

# Byte -> class: a lowercase, A uppercase, d digit, s space, n line break,
# t tab, p punctuation and control, w a 2-byte UTF-8 character (accented and
# Cyrillic letters), c a 3-byte one (CJK, Hangul), e a 4-byte one (emoji).
# Lead byte 0xE2 starts typographic punctuation (quotes, dashes, arrows), so
# it counts as p. Continuation bytes are deleted, one class byte per character.
_CLASS = bytearray(_table("p", a=_LOWER, A=_UPPER, d="0123456789"))
_CLASS[ord(" ")] = ord("s")
_CLASS[ord("\n")] = _CLASS[ord("\r")] = ord("n")
_CLASS[ord("\t")] = _CLASS[0x0B] = _CLASS[0x0C] = ord("t")
_CLASS[0xC0:0xE0] = b"w" * 0x20
_CLASS[0xE0:0xF0] = b"c" * 0x10
_CLASS[0xE2] = ord("p")
_CLASS[0xF0:0x100] = b"e" * 0x10
_CLASSES = bytes(_CLASS)
_CONTINUATION = bytes(range(0x80, 0xC0))

# Masks over the class string. The start ("^") and every class a mask does not
# name become ".", so a pattern that starts with "." matches once per run.
_LETTERS = _table(".", L="aAw")
_GLUED = _table(".", L="aAw", P="p")
_CAPITALS = _table(".", U="A")
_PUNCTUATION = _table(".", P="p")
_BREAKS = _table(".", S="s", N="nt")

# (mask, or None for the class string itself; ((pattern, tokens each), ...)).
# 2-byte patterns are counted with overlaps, longer ones without. Every weight
# is positive and every count only grows as text is appended, so appending
# never lowers the estimate. Weights: least squares on the relative error.
_FEATURES: tuple[tuple[bytes | None, tuple[tuple[bytes, float], ...]], ...] = (
    (
        _LETTERS,
        (
            (b".L", 1.00),  # a word; a leading space merges into it
            (b".LLLLLLLLLLLL", 0.21),  # long words split into several tokens
        ),
    ),
    (_GLUED, ((b"PLLLLLLLLL", 0.52),)),  # identifiers after "." or "_" split more
    (None, ((b"aA", 1.08), (b"d", 1.07), (b"sd", 0.86))),  # camelCase; digits
    (_CAPITALS, ((b"UU", 0.13), (b"UUUU", 0.67), (b".UUUUUUUU", 0.42))),
    (_PUNCTUATION, ((b".P", 1.15), (b"PPP", 0.66))),  # runs, long runs
    # Line breaks before text, indented lines, blank lines, runs of spaces.
    (_BREAKS, ((b"N.", 1.44), (b"NS", 0.53), (b"NN", 0.64), (b"SS", 0.03))),
)
# Characters outside ASCII, by their UTF-8 length, in the class string.
_NON_ASCII = ((b"w", 0.61), (b"c", 1.80), (b"e", 3.00))
_WEIGHTS = tuple(w for _, patterns in _FEATURES for _, w in patterns) + tuple(
    w for _, w in _NON_ASCII
)


def _counts(text: str) -> list[int]:
    """How often each feature pattern occurs in `text`, in `_FEATURES` order."""
    data = text.encode("utf-8", "surrogatepass")
    classes = b"^" + data.translate(_CLASSES, _CONTINUATION)
    counts: list[int] = []
    for mask, patterns in _FEATURES:
        masked = classes if mask is None else classes.translate(mask)
        units: tuple[str, str] | None = None
        for pattern, _ in patterns:
            if len(pattern) != 2:
                counts.append(masked.count(pattern))
                continue
            # bytes.count is slow for 2-byte patterns over a small alphabet;
            # as one UTF-16 code unit, read from offset 0 and from offset 1,
            # str.count is several times faster. Masks are ASCII: no surrogates.
            if units is None:
                size = len(masked)
                units = (
                    masked[: size & ~1].decode("utf-16-le"),
                    masked[1 : 1 + ((size - 1) & ~1)].decode("utf-16-le"),
                )
            unit = pattern.decode("utf-16-le")
            counts.append(units[0].count(unit) + units[1].count(unit))
    if data.isascii():
        counts.extend(0 for _ in _NON_ASCII)
    else:
        counts.extend(classes.count(pattern) for pattern, _ in _NON_ASCII)
    return counts


LARGE_TEXT = 4096
"""Texts of at least this many characters are memoised (a small LRU cache).

Clients count the same growing conversation many times a second; its system
prompt, tool list and earlier turns then cost a hash lookup, not a rescan.
"""


def count_text(text: str) -> int:
    """Estimated number of tokens in `text` (0 for the empty string)."""
    if len(text) >= LARGE_TEXT:
        return _count_large(text)
    return _estimate(text)


@functools.lru_cache(maxsize=64)
def _count_large(text: str) -> int:
    return _estimate(text)


def _estimate(text: str) -> int:
    if not text:
        return 0
    total = sum(w * n for w, n in zip(_WEIGHTS, _counts(text), strict=True))
    return max(1, round(total))


_json = msgspec.json.Encoder()


def count_request(req: ir.Request) -> int:
    """Estimated prompt tokens of `req` as a chat template would render it.

    Counts the system text, every message part, tool calls' arguments, tool
    results, thinking text and the tools' names, descriptions and JSON
    schemas. Opaque provider data (redacted thinking, signatures) is not sent
    to the model as text and is not counted.
    """
    texts = [req.system_text()]
    overhead = MESSAGE_TOKENS if req.system else 0
    overhead += REPLY_TOKENS + MESSAGE_TOKENS * len(req.messages)
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, ir.Text | ir.Thinking):
                texts.append(part.text)
            elif isinstance(part, ir.Image):
                overhead += IMAGE_TOKENS
            elif isinstance(part, ir.ToolCall):
                texts += (part.name, part.arguments)
                overhead += PART_TOKENS
            else:
                texts.append(part.text())
                overhead += PART_TOKENS + IMAGE_TOKENS * sum(
                    isinstance(p, ir.Image) for p in part.content
                )
    if req.tools:
        texts.append(
            "\n".join(
                f"{t.name}\n{t.description}\n{_json.encode(t.parameters).decode()}"
                for t in req.tools
            )
        )
        overhead += TOOL_TOKENS * len(req.tools)
    # Short texts are joined and scanned once, which is much faster than one
    # scan each; the line breaks stand for a template's separators, and a long
    # text counts one more token for its separator.
    large = [t for t in texts if len(t) >= LARGE_TEXT]
    small = "\n".join(t for t in texts if 0 < len(t) < LARGE_TEXT)
    return sum(map(count_text, large)) + len(large) + count_text(small) + overhead
