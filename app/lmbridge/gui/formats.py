"""Short texts for numbers that several pages show: durations, sizes, token
counts, a request's prompt and its place in its chain. Shared by the
features so none imports another's. (A client's name is
`store.usage_types.client_name`, the one the history groups by.)"""

from __future__ import annotations

from lmbridge.core.record import RequestSummary


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


def share_text(share: float | None) -> str:
    """0.834 -> "83%"; "—" when unknown."""
    return "—" if share is None else f"{share:.0%}"


def cached_text(record: RequestSummary) -> str:
    """The prompt tokens a request's upstream served from its cache, "—"
    when it did not say."""
    if record.cached_tokens is None:
        return "—"
    return f"{record.cached_tokens:,} ({share_text(record.cache_share)})"


def prompt_text(record: RequestSummary) -> str:
    """ "1,200 tokens · 1,000 from cache (83%) · 200 new" (what it said)."""
    text = f"{record.tokens_in:,} tokens"
    if record.cached_tokens is not None:
        text += f" · {cached_text(record)} from cache · {record.new_tokens:,} new"
    return text


def chain_text(record: RequestSummary) -> str:
    """ "turn 4 · kept 1,000 tokens (83%) · tools: added grep", "—" outside
    a chain."""
    if record.chain_turn is None:
        return "—"
    parts = [f"turn {record.chain_turn}"]
    if record.kept_tokens is not None:
        parts.append(
            f"kept {record.kept_tokens:,} tokens ({share_text(record.kept_share)})"
        )
    if change := record.change_text():
        parts.append(change)
    return " · ".join(parts)
