"""A fake Azure AI Foundry: a real aiohttp server on 127.0.0.1:0.

It serves Microsoft's routes, checks credentials like Azure does, and
answers from the `Script` of the fake OpenAI upstream it extends (the wire
formats are in fakes/wire_formats.py):

- `POST /api/projects/{project}/openai/responses?api-version=...` (Foundry
  project Responses; audience https://ai.azure.com);
- `POST /anthropic/v1/messages` (Claude; audience https://ai.azure.com;
  needs `anthropic-version`);
- `POST /openai/v1/chat/completions`, `POST /openai/v1/responses` (Azure
  OpenAI v1; audience https://cognitiveservices.azure.com).

A bearer token must be one the fake `az` issued (`fake-az|{audience}|{n}`)
for the route's audience and not revoked; an `api-key` / `x-api-key` must
equal `api_key`. Faults queued in `faults` answer the next requests with
Azure's real error bodies. Every attempt, rejected or not, is in `attempts`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fakes.openai_upstream import FakeOpenAIUpstream

FOUNDRY_AUDIENCE = "https://ai.azure.com"
OPENAI_AUDIENCE = "https://cognitiveservices.azure.com"
API_VERSION = "2025-11-15-preview"

BAD_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make "
    "sure to provide a valid key for an active subscription and use a correct "
    "regional API endpoint for your resource."
)
BAD_TOKEN = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "({audience}), or have expired."
)
NO_ROLE = (
    "The principal `5f3c2b1a-0000-4000-8000-000000000000` lacks the required data "
    "action `Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/"
    "completions/action` to perform `POST /openai/deployments/{deployment-id}/"
    "chat/completions` operation."
)
NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the "
    "deployment within the last 5 minutes, please wait a moment and try again."
)
RATE_LIMITED = (
    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
    "version 2025-11-15-preview have exceeded token rate limit of your current "
    "AIServices S0 pricing tier. Please retry after {seconds} seconds. Please "
    "contact Azure support service if you would like to further increase the "
    "default rate limit."
)
FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's "
    "content management policy. Please modify your prompt and retry. To learn "
    "more about our content filtering policies please read our documentation: "
    "https://go.microsoft.com/fwlink/?linkid=2198766"
)


@dataclass
class Attempt:
    """One request as it arrived, before any check."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def token_serial(self) -> int | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer fake-az|"):
            return None
        return int(auth.rsplit("|", 1)[1])

    @property
    def audience(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        parts = auth.removeprefix("Bearer ").split("|")
        return parts[1] if len(parts) == 3 else None


def _error(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def fault_response(fault: str) -> web.Response:
    """Azure's answer for a named fault."""
    if fault == "401-key":
        return _error(401, {"error": {"code": "401", "message": BAD_KEY}})
    if fault == "401-token":
        message = BAD_TOKEN.format(audience=FOUNDRY_AUDIENCE)
        return _error(401, {"statusCode": 401, "message": message})
    if fault == "401-role":
        return _error(401, {"error": {"code": "PermissionDenied", "message": NO_ROLE}})
    if fault == "404-deployment":
        body: dict[str, Any] = {
            "error": {"code": "DeploymentNotFound", "message": NO_DEPLOYMENT}
        }
        return _error(404, body)
    if fault.startswith("429"):
        # "429" / "429-ms" / "429-text": which hint Azure gives.
        seconds = {"429": 7, "429-ms": 3, "429-text": 12}[fault]
        body = {
            "error": {"code": "429", "message": RATE_LIMITED.format(seconds=seconds)}
        }
        headers = {"429": {"Retry-After": "7"}, "429-ms": {"retry-after-ms": "2500"}}
        return _error(429, body, **headers.get(fault, {}))
    if fault == "content-filter":
        result = {
            "hate": {"filtered": False, "severity": "safe"},
            "jailbreak": {"filtered": False, "detected": False},
            "self_harm": {"filtered": False, "severity": "safe"},
            "sexual": {"filtered": False, "severity": "safe"},
            "violence": {"filtered": True, "severity": "medium"},
        }
        body = {
            "error": {
                "message": FILTERED,
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": result,
                },
            }
        }
        return _error(400, body)
    raise ValueError(f"unknown fault {fault!r}")


class FakeFoundry(FakeOpenAIUpstream):
    """Azure's routes and credential checks in front of the fake upstream."""

    def __init__(self, project: str = "proj", api_version: str = API_VERSION) -> None:
        super().__init__()
        self.project = project
        self.api_version = api_version
        self.api_key: str | None = None
        self.revoked: set[int] = set()
        self.reject_tokens = False
        self.deployments: set[str] | None = None
        self.faults: list[str] = []
        self.attempts: list[Attempt] = []
        add = self.app.router.add_post
        add(f"/api/projects/{project}/openai/responses", self._project_responses)
        add("/anthropic/v1/messages", self._claude)
        add("/openai/v1/chat/completions", self._v1_chat)
        add("/openai/v1/responses", self._v1_responses)

    def revoke_issued(self) -> None:
        """Revoke every token issued so far (serials seen in attempts)."""
        self.revoked.update(a.token_serial for a in self.attempts if a.token_serial)

    async def _project_responses(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("api-version") != self.api_version:
            body = {
                "error": {
                    "code": "BadRequest",
                    "message": f"API version not supported: "
                    f"{request.query.get('api-version')!r}",
                }
            }
            return _error(400, body)
        return await self._guarded(request, FOUNDRY_AUDIENCE, self._responses)

    async def _claude(self, request: web.Request) -> web.StreamResponse:
        if "anthropic-version" not in request.headers:
            body = {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "anthropic-version: header is required",
                },
            }
            return _error(400, body)
        return await self._guarded(request, FOUNDRY_AUDIENCE, self._messages)

    async def _v1_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, OPENAI_AUDIENCE, self._chat)

    async def _v1_responses(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, OPENAI_AUDIENCE, self._responses)

    async def _guarded(
        self, request: web.Request, audience: str, handler: Any
    ) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        self.attempts.append(
            Attempt(request.path, dict(request.query), dict(request.headers), body)
        )
        if (refused := self._check_credential(request, audience)) is not None:
            return refused
        if self.faults:
            return fault_response(self.faults.pop(0))
        if self.deployments is not None and body.get("model") not in self.deployments:
            return fault_response("404-deployment")
        response: web.StreamResponse = await handler(request)
        return response

    def _check_credential(
        self, request: web.Request, audience: str
    ) -> web.Response | None:
        key = request.headers.get("api-key") or request.headers.get("x-api-key")
        if key is not None:
            if self.api_key is None or key != self.api_key:
                return fault_response("401-key")
            return None
        auth = request.headers.get("Authorization", "")
        parts = auth.removeprefix("Bearer ").split("|")
        valid = (
            auth.startswith("Bearer fake-az|")
            and len(parts) == 3
            and parts[1] == audience
            and int(parts[2]) not in self.revoked
            and not self.reject_tokens
        )
        if valid:
            return None
        message = BAD_TOKEN.format(audience=audience)
        return _error(401, {"statusCode": 401, "message": message})
