"""One upstream client per configured upstream, by kind."""

from __future__ import annotations

from lmbridge.config import UpstreamSettings
from lmbridge.upstreams.http import HttpUpstream


def make_upstream(settings: UpstreamSettings) -> HttpUpstream:
    """The client for `settings`: Azure's own for `azure-foundry`, else HTTP."""
    if settings.kind == "azure-foundry":
        from lmbridge.upstreams.azure import AzureFoundryUpstream

        return AzureFoundryUpstream(settings)
    return HttpUpstream(settings)
