"""Protocols by name: a new protocol is one module plus one line here."""

from __future__ import annotations

import importlib
from typing import cast

from lmbridge.protocols.base import FrontDoor, UpstreamCodec

# name -> (module, attribute) of the codec object serving both directions.
_CODECS = {
    "chat": ("lmbridge.protocols.openai_chat", "OPENAI_CHAT"),
    "openai": ("lmbridge.protocols.openai_chat", "OPENAI_CHAT"),
    "messages": ("lmbridge.protocols.anthropic", "ANTHROPIC"),
    "anthropic": ("lmbridge.protocols.anthropic", "ANTHROPIC"),
    "responses": ("lmbridge.protocols.openai_responses", "RESPONSES"),
}


def _load(name: str) -> object:
    module, attr = _CODECS[name]
    return getattr(importlib.import_module(module), attr)


def upstream_codec(api: str) -> UpstreamCodec:
    """The codec for an upstream API: "chat", "messages" or "responses"."""
    return cast(UpstreamCodec, _load(api))


def front_door(name: str) -> FrontDoor:
    """The codec for an inbound protocol: "openai", "anthropic", "responses"."""
    return cast(FrontDoor, _load(name))
