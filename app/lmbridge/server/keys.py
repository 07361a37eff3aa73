"""The typed application keys every route reads its services from."""

from __future__ import annotations

from aiohttp import web

from lmbridge.server.pipeline import Pipeline
from lmbridge.server.services import Services
from lmbridge.upstreams.health import HealthProbes

SERVICES = web.AppKey("services", Services)
PIPELINE = web.AppKey("pipeline", Pipeline)
# The cached upstream probes behind GET /health.
HEALTH = web.AppKey("health", HealthProbes)
