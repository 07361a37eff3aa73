"""Bounds on the numbers a front door accepts, as msgspec annotations.

A value msgspec decodes is any size Python int (`2**70`), which an upstream
then rejects or overflows on (llama.cpp keeps token counts in 32 bits). The
wire structs bound every integer so that such a body is a 400 naming the
field before anything is sent.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

TokenCount = Annotated[int, msgspec.Meta(ge=1, le=INT32_MAX)]
"""A token limit (`max_tokens`, `budget_tokens`): at least 1, 32-bit."""

ChatTokenCount = Annotated[int, msgspec.Meta(ge=-1, le=INT32_MAX)]
"""A Chat `max_tokens`: also -1, "no limit" to LM Studio and its clients
(0 is refused by the codec)."""

Count = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
"""A small non-negative count (`top_k`, `top_logprobs`)."""

TopK = Annotated[int, msgspec.Meta(ge=-1, le=INT32_MAX)]
"""`top_k` of the OpenAI-compatible servers: 0 or -1 (vLLM) turn it off."""

Seed = Annotated[int, msgspec.Meta(ge=-(2**63), le=INT64_MAX)]
"""A sampling seed: any 64-bit integer."""

Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]
"""A probability or Anthropic temperature, 0 to 1."""

OpenAITemperature = Annotated[float, msgspec.Meta(ge=0, le=2)]
"""An OpenAI temperature, 0 to 2."""
