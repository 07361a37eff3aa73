"""Short texts for numbers that several pages show: durations, sizes, token
counts, client names. Shared by the features so none imports another's."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """ "312 ms", "2.4 s", or "—"."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def size_text(size: int) -> str:
    """A file size in MB below 1 GB, else in GB with one decimal."""
    if size >= 1024**3:
        return f"{size / 1024**3:.1f} GB"
    return f"{size / 1024**2:.0f} MB"


def tokens_text(tokens: int | None) -> str:
    """12,345 tokens, or "—" for none or unknown."""
    return "—" if not tokens else f"{tokens:,}"


def context_k(tokens: int) -> str:
    """32768 -> "32K"."""
    return (
        f"{tokens // 1024}K" if tokens >= 1024 and tokens % 1024 == 0 else str(tokens)
    )


def client_name(user_agent: str) -> str:
    """The product part of a user agent ("claude-cli/1.0.80")."""
    return (user_agent or "—").split(" ")[0][:40]
