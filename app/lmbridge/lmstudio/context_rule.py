"""The minimum-context rule, in one place.

A loaded language model should have at least the configured minimum
context, capped at the model's own maximum. `ensure_context` (service.py)
reloads by this rule; the GUI warns by it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .structs import ContextPolicy, LoadedModel, ModelKind


def context_target(model: LoadedModel, minimum: int) -> int:
    """The context `model` should have: `minimum`, capped at its maximum."""
    if model.max_context_length:
        return min(minimum, model.max_context_length)
    return minimum


def below_minimum(
    loaded: Iterable[LoadedModel], minimum: int, policy: ContextPolicy
) -> list[LoadedModel]:
    """Loaded language models whose context is below their target.

    None when the policy is OFF (LM Bridge does not look).
    """
    if policy is ContextPolicy.OFF:
        return []
    return [
        m
        for m in loaded
        if m.kind is ModelKind.LLM and m.context_length < context_target(m, minimum)
    ]
