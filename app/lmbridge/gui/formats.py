"""Short texts for numbers that several pages show: durations, sizes, token
counts. Shared by the features so none imports another's. (A client's name
is `store.usage_types.client_name`, the one the history groups by.)"""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """ "312 ms", "2.4 s", or "—"."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def size_text(size: float) -> str:
    """The one way sizes are said: "12 B", "840 KB", "12.3 MB", "4.1 GB"
    (binary units)."""
    if size >= 1024**3:
        return f"{size / 1024**3:,.1f} GB"
    if size >= 1024**2:
        return f"{size / 1024**2:,.1f} MB"
    if size >= 1024:
        return f"{size / 1024:,.0f} KB"
    return f"{size:,.0f} B"


def tokens_text(tokens: int | None) -> str:
    """12,345 tokens, or "—" for none or unknown."""
    return "—" if not tokens else f"{tokens:,}"


def context_k(tokens: int) -> str:
    """32768 -> "32K"."""
    return (
        f"{tokens // 1024}K" if tokens >= 1024 and tokens % 1024 == 0 else str(tokens)
    )
