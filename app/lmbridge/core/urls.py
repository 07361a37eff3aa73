"""URLs shown without their credentials.

A `base_url` may carry `user:password@`; wherever LM Bridge shows a URL
(an answer's error, `/health`, the request history, `serve`'s banner, the
log) it shows `user:***@host` instead. `Url` holds the full URL for the
one place that needs it (the request) and renders masked everywhere else.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

MASK = "***"


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return parts


def masked_netloc(url: str) -> str:
    """`host:port` of `url`, with `user:***@` ahead when it has a password."""
    parts = _split(url)
    if parts is None:
        return MASK
    netloc = parts.netloc
    if "@" not in netloc:
        return netloc
    userinfo, _, hostport = netloc.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    return f"{user}:{MASK}@{hostport}" if sep else f"{user}@{hostport}"


def masked(url: str) -> str:
    """`url` with its password written as `***`."""
    parts = _split(url)
    if parts is None:
        return MASK
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=masked_netloc(url)))


def has_credentials(url: str) -> bool:
    """Whether `url` carries a password (`scheme://user:password@host`)."""
    parts = _split(url)
    return parts is not None and bool(parts.password)


def without_credentials(url: str) -> str:
    """`url` with no `user:password@` at all."""
    parts = _split(url)
    if parts is None:
        return MASK
    if "@" not in parts.netloc:
        return url
    hostport = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=hostport))


class Url:
    """A URL that renders without its password (`str`, `repr`, f-strings);
    `full` is the URL itself, for the request and nothing else."""

    __slots__ = ("full",)

    def __init__(self, full: str) -> None:
        self.full = full

    def __str__(self) -> str:
        return masked(self.full)

    def __repr__(self) -> str:
        return f"Url({masked(self.full)!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Url) and other.full == self.full

    def __hash__(self) -> int:
        return hash(self.full)

    @property
    def netloc(self) -> str:
        """`host:port`, with `user:***@` ahead when the URL has a password."""
        return masked_netloc(self.full)

    @property
    def has_credentials(self) -> bool:
        return has_credentials(self.full)
