"""The one scrubber: no secret LM Bridge holds leaves it by any way out.

Every secret LM Bridge learns is registered here the moment it is read
(`SECRETS.add`): upstream keys from environment variables and from the
keyring (every upstream kind, Azure included), Azure access tokens, the
proxy's access token, and credentials written into a `base_url`. Every way
out passes its text through `scrub` (or `scrub_bytes`): error answers
before and after an answer starts, SSE error events, `/health`, records,
the request history, captured bodies, the log file, stderr and the command
line's output.

Two kinds of matching:

- literal: each registered value (and the forms it takes in JSON, in URLs
  and in a Basic `Authorization` header) is found as is, whatever it looks
  like: a bare hex Azure key has no pattern;
- patterns: what looks like a key or token even when LM Bridge never held
  it (`sk-...`, JWTs, `Bearer ...`, `api_key=...`), for error texts and log
  lines. Model output is never pattern-scrubbed (a model may well write
  "password = hunter2" in code); it gets only the cheap literal check.

Lookups are cheap on the answer path: the registered values live in an
immutable snapshot (replaced, never mutated, so threads that log read it
without a lock), compiled into one regular expression, so `scrub_bytes` is
one search of the bytes whatever the number of secrets (about half a
microsecond for an SSE frame); a request's own credentials are encoded
once per request (`encoded`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

REDACTED = "[REDACTED]"
_REDACTED_BYTES = REDACTED.encode()
# Shorter values are not looked for: they would match ordinary words.
MIN_SECRET = 8
# Values kept at most (old Azure tokens go first: they have expired).
MAX_SECRETS = 512

_KEY_NAMES = (
    r"x-api-key|api[-_]?key|apikey|access[-_]?token|refresh[-_]?token|id[-_]?token"
    r"|client[-_]?secret|password|secret|token"
)
# (pattern, replacement); applied in order to the text.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # JSON Web Tokens (Azure / Entra access and id tokens): header.payload.sig
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
        REDACTED,
    ),
    # Bearer <token>, wherever it appears; Authorization: Basic <credentials>
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    (
        re.compile(r"(?i)\b(authorization[\"']?\s*[:=,]\s*[\"']?basic)(\s+)[^\s\"']+"),
        rf"\1\2{REDACTED}",
    ),
    # OpenAI / Anthropic style keys: sk-..., sk-proj-..., sk-ant-api03-...
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), REDACTED),
    # key: value, key=value, "key": "value", 'key': 'value' for secret names
    (
        re.compile(
            rf"""(?ix)
            (["']?\b(?:{_KEY_NAMES})\b["']?)   # the name, maybe quoted
            (\s*[:=]\s*)                       # separator
            (["']?)                            # opening quote of the value
            (?!\[REDACTED\])
            [^\s"',;}}\]]+                     # the value
            """
        ),
        rf"\1\2\3{REDACTED}",
    ),
    # ("x-api-key", "value") header tuples
    (
        re.compile(
            rf"""(?i)(["'](?:{_KEY_NAMES})["']\s*,\s*["'])(?!\[REDACTED\])[^"']+"""
        ),
        rf"\1{REDACTED}",
    ),
    # user:password@ in a URL
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@"), rf"\1{REDACTED}@"),
)


def redact_patterns(text: str) -> str:
    """`text` with everything that looks like a key or token replaced."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def forms(value: str) -> list[str]:
    """`value` as it may appear in text: itself, JSON-escaped, URL-quoted."""
    found = [value]
    for form in (json.dumps(value)[1:-1], quote(value, safe=""), unquote(value)):
        if form not in found:
            found.append(form)
    return found


def url_secrets(url: str) -> list[str]:
    """The credentials written into `url` (`scheme://user:password@host`):
    the password, and the Basic credentials aiohttp makes of them."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    user, password = parts.username, parts.password
    if not password:
        return []
    pair = f"{unquote(user or '')}:{unquote(password)}"
    return [password, unquote(password), base64.b64encode(pair.encode()).decode()]


class Scrubber:
    """The secrets of this process and the way they are taken out of text."""

    def __init__(self) -> None:
        self._values: dict[str, None] = {}
        # Immutable snapshots, longest first (a secret containing another
        # is replaced whole).
        self._text: tuple[str, ...] = ()
        self._text_re: re.Pattern[str] | None = None
        self._bytes_re: re.Pattern[bytes] | None = None

    def add(self, value: str | None) -> None:
        """Remember `value` (and its forms) as a secret; short values are
        ignored. Cheap when `value` is already known."""
        if not value or value in self._values:
            return
        self._values[value] = None
        if len(value.strip()) < MIN_SECRET:
            return
        known = set(self._text)
        fresh = [f for f in forms(value) if len(f) >= MIN_SECRET and f not in known]
        text = list(self._text) + fresh
        if len(text) > MAX_SECRETS:
            text = text[-MAX_SECRETS:]
        text.sort(key=len, reverse=True)
        raw = [t.encode("utf-8", "surrogateescape") for t in text]
        # Built whole, then published: a reader sees the old or the new.
        text_re = re.compile("|".join(map(re.escape, text))) if text else None
        bytes_re = re.compile(b"|".join(map(re.escape, raw))) if raw else None
        self._text, self._text_re, self._bytes_re = tuple(text), text_re, bytes_re
        if len(self._values) > 4 * MAX_SECRETS:
            self._values = dict.fromkeys(list(self._values)[-MAX_SECRETS:])

    def add_url(self, url: str) -> None:
        """Remember the credentials written into `url`, if any."""
        for secret in url_secrets(url):
            self.add(secret)

    def forget_all(self) -> None:
        """Forget every secret (tests)."""
        self._values = {}
        self._text = ()
        self._text_re = None
        self._bytes_re = None

    @property
    def count(self) -> int:
        """How many forms of secrets are looked for."""
        return len(self._text)

    def scrub_literal(self, text: str, extra: Iterable[str] = ()) -> str:
        """`text` without any registered secret nor any of `extra`."""
        for secret in _long(extra):
            if secret in text:
                text = text.replace(secret, REDACTED)
        pattern = self._text_re
        if pattern is not None and pattern.search(text) is not None:
            text = pattern.sub(REDACTED, text)
        return text

    def scrub(self, text: str, extra: Iterable[str] = ()) -> str:
        """`text` without secrets: the registered ones, `extra`, and
        whatever looks like a key (for error texts and log lines)."""
        return redact_patterns(self.scrub_literal(text, extra))

    def scrub_bytes(self, data: bytes, extra: tuple[bytes, ...] = ()) -> bytes:
        """`data` without any registered secret nor any of `extra` (from
        `encoded`): the cheap literal check for bytes on their way out."""
        for secret in extra:
            if secret in data:
                data = data.replace(secret, _REDACTED_BYTES)
        pattern = self._bytes_re
        if pattern is not None and pattern.search(data) is not None:
            data = pattern.sub(_REDACTED_BYTES, data)
        return data


def _long(values: Iterable[str]) -> list[str]:
    return sorted((v for v in values if len(v) >= MIN_SECRET), key=len, reverse=True)


def encoded(values: Iterable[str]) -> tuple[bytes, ...]:
    """A request's own secrets (its credential headers) as `scrub_bytes`
    takes them, computed once per request."""
    return tuple(v.encode("utf-8", "surrogateescape") for v in _long(values))


# The secrets of this process: every module registers what it reads.
SECRETS = Scrubber()


def scrub(text: str, extra: Iterable[str] = ()) -> str:
    """`SECRETS.scrub`: literal and pattern scrubbing of `text`."""
    return SECRETS.scrub(text, extra)


def scrub_bytes(data: bytes, extra: tuple[bytes, ...] = ()) -> bytes:
    """`SECRETS.scrub_bytes`: the literal check of bytes."""
    return SECRETS.scrub_bytes(data, extra)


_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
_CONTROL_WITH_LINES = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def escape_control(found: re.Match[str]) -> str:
    """The escape that stands for one matched control character."""
    char = found.group()
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: str, *, lines: bool = False) -> str:
    """`text` safe for a terminal or a log line: control characters (ESC of
    terminal sequences, C1 controls, bidirectional overrides, and newlines
    unless `lines`) are written as escapes such as `\\x1b`."""
    pattern = _CONTROL if lines else _CONTROL_WITH_LINES
    if pattern.search(text) is None:
        return text
    return pattern.sub(escape_control, text)


def has_control(text: str) -> bool:
    """Whether `text` holds a character `printable` would escape (newlines
    and tabs included)."""
    return _CONTROL_WITH_LINES.search(text) is not None
