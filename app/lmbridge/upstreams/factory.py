"""One upstream client per configured upstream, by kind."""

from __future__ import annotations

from lmbridge.config import UpstreamSettings
from lmbridge.upstreams.http import HttpUpstream
from lmbridge.upstreams.llamacpp import LlamaCppUpstream
from lmbridge.upstreams.lmstudio import LMStudioUpstream


def make_upstream(settings: UpstreamSettings) -> HttpUpstream:
    """The client for `settings`: Azure's, LM Studio's, llama.cpp's own, else HTTP."""
    if settings.kind == "azure-foundry":
        from lmbridge.upstreams.azure import AzureFoundryUpstream

        return AzureFoundryUpstream(settings)
    if settings.kind == "lmstudio":
        return LMStudioUpstream(settings)
    if settings.kind == "llamacpp":
        return LlamaCppUpstream(settings)
    return HttpUpstream(settings)
