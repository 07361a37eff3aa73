"""Azure AI Foundry (and Azure OpenAI) as an upstream.

The URL comes from the resource, the project and the API (Microsoft's
documented routes; `base_url` replaces the scheme and host, for sovereign
clouds, gateways and tests):

- `api = "responses"` with `project`: the project Responses route,
  `https://{resource}.services.ai.azure.com/api/projects/{project}/openai/`
  `responses?api-version={api_version}`; scope `https://ai.azure.com`;
- `api = "responses"` without `project`: Azure OpenAI v1,
  `https://{resource}.openai.azure.com/openai/v1/responses`; scope
  `https://cognitiveservices.azure.com`;
- `api = "chat"`: Azure OpenAI v1,
  `https://{resource}.openai.azure.com/openai/v1/chat/completions`; scope
  `https://cognitiveservices.azure.com`;
- `api = "messages"` (Claude):
  `https://{resource}.services.ai.azure.com/anthropic/v1/messages`; scope
  `https://ai.azure.com`; the API's version headers (`anthropic-version`)
  as the client sent them, else the codec's (`Wire.headers`).

Credentials: a bearer token from the Azure CLI or a browser sign-in
(`auth/`), or an API key from the keyring (`api-key` header; `x-api-key` on
the Claude route: an API whose own key header is not a bearer token gets
it too). Without a credential the request fails with a 401 that
says how to sign in, and Azure is not called. When Azure answers 401, the
token (or key) is renewed once and the request retried. Azure's error
answers are explained by `azure_errors.refine`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote

import aiohttp
import msgspec

from lmbridge import config
from lmbridge.auth import azure_cli
from lmbridge.auth.secrets import SECRETS, SecretStore
from lmbridge.auth.tokens import AccessToken, TokenProvider
from lmbridge.config import UpstreamSettings
from lmbridge.core import errors, ir
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.core.events import RequestRecord
from lmbridge.core.record import NoteKind
from lmbridge.core.redact import SECRETS as SCRUBBED
from lmbridge.core.urls import Url
from lmbridge.protocols.base import UpstreamCodec
from lmbridge.protocols.registry import upstream_codec
from lmbridge.upstreams import azure_errors
from lmbridge.upstreams.azure_errors import AzureContext, ContentFiltered
from lmbridge.upstreams.health import Health
from lmbridge.upstreams.http import DEFAULT_API, HttpUpstream, Refusal

if TYPE_CHECKING:
    from lmbridge.auth.browser import BrowserSignIn

log = logging.getLogger(__name__)

FOUNDRY_SCOPE = "https://ai.azure.com/.default"
OPENAI_SCOPE = "https://cognitiveservices.azure.com/.default"


class AzureRoute(NamedTuple):
    """Where one Azure upstream's requests go."""

    origin: str
    path: str
    scope: str
    project_route: bool


class _Served(NamedTuple):
    """Where Azure serves one API: host suffix, the prefix before the
    API's own path, and (for the API a Foundry project serves) that route."""

    host: str
    prefix: str
    project_route: str = ""


# Azure's own table (Microsoft's documented routes), by the codec's name.
AZURE_APIS: dict[str, _Served] = {
    "anthropic": _Served("services.ai.azure.com", "/anthropic"),
    "responses": _Served(
        "openai.azure.com",
        "/openai",
        "/api/projects/{project}/openai/responses?api-version={api_version}",
    ),
    "openai": _Served("openai.azure.com", "/openai"),
}


def azure_route(settings: UpstreamSettings) -> AzureRoute:
    """The route for `settings` (see the table in the module docstring)."""
    codec = upstream_codec(settings.api or DEFAULT_API["azure-foundry"])
    served = AZURE_APIS.get(codec.name)
    if served is None:
        raise errors.ConfigError(
            f"upstream {settings.name!r}: Azure does not serve the "
            f"{codec.name} API (azure-foundry upstreams: api = "
            f"{', '.join(AZURE_APIS)})"
        )
    host, path = served.host, served.prefix + codec.wire.path
    project = bool(served.project_route and settings.project)
    if project:
        host = "services.ai.azure.com"
        path = served.project_route.format(
            project=quote(settings.project, safe=""),
            api_version=quote(settings.api_version, safe=""),
        )
    origin = settings.base_url.rstrip("/") or f"https://{settings.resource}.{host}"
    default_scope = OPENAI_SCOPE if host == "openai.azure.com" else FOUNDRY_SCOPE
    return AzureRoute(origin, path, settings.scope or default_scope, project)


class _Model(msgspec.Struct):
    model: str = ""


_model_of = msgspec.json.Decoder(_Model)


def browser_sign_in(settings: UpstreamSettings) -> BrowserSignIn:
    """The browser sign-in for an azure-foundry upstream: the one place it is
    built (the upstream, `lmbridge azure login` and the app's Azure page)."""
    # azure-identity is imported only by those who use it.
    from lmbridge.auth.browser import BrowserSignIn

    scope = azure_route(settings).scope
    return BrowserSignIn(
        settings.name, scope, settings.tenant, config.data_dir() / "azure"
    )


class AzureFoundryUpstream(HttpUpstream):
    """An `azure-foundry` upstream: Azure URLs, Azure sign-in, Azure errors."""

    def __init__(
        self, settings: UpstreamSettings, *, secrets: SecretStore = SECRETS
    ) -> None:
        self.route = azure_route(settings)
        super().__init__(msgspec.structs.replace(settings, base_url=self.route.origin))
        self.auth = settings.auth
        self.scope = self.route.scope
        self.host = Url(self.route.origin).netloc
        self._secrets = secrets
        self._key: str | None = None
        self.cli: azure_cli.AzureCli | None = None
        self.browser: BrowserSignIn | None = None
        self.tokens: TokenProvider | None = None
        if self.auth == "azure-cli":
            self.cli = azure_cli.AzureCli(settings.az_path)
            self.tokens = self.cli.tokens(self.scope, settings.tenant)
        elif self.auth == "browser":
            self.browser = browser_sign_in(settings)
            self.tokens = self.browser.tokens

    # ------------------------------------------------------------ addressing

    def url(self, path: str) -> str:
        """The Azure URL for a codec's path (`/v1/messages`, ...)."""
        if path == self.codec.wire.path:
            return self.route.origin + self.route.path
        return self.route.origin + path

    async def load_credentials(self) -> None:
        """Nothing to read ahead: Azure signs in its own way (`credential`)."""

    def default_betas(self) -> list[str]:
        """Claude on Foundry refuses betas it does not know: only those
        known to pass."""
        return list(config.FOUNDRY_BETAS)

    @property
    def keeps_billing_header(self) -> bool:
        """Claude on Foundry is Anthropic's own platform, which reads
        Claude Code's billing block (`Wire.platform_block`)."""
        return (
            self.settings.keep_billing_header
            or self.codec.wire.platform_block is not None
        )

    def sign_in_hint(self) -> str:
        """How to sign in for this upstream, in words."""
        if self.auth == "azure-cli":
            return azure_cli.SIGN_IN
        if self.auth == "browser":
            return (
                "sign in from the LM Bridge tray (Azure ▸ Sign in), or run "
                f"`lmbridge azure login --upstream {self.name}`"
            )
        return f"store the resource's key with `lmbridge keys set {self.name}`"

    # ------------------------------------------------------------ credentials

    async def credential(self) -> AccessToken | str:
        """A token or key; `AuthenticationFailed` (saying how) if none."""
        if self.tokens is not None:
            try:
                return await self.tokens.token()
            except errors.AuthenticationFailed as exc:
                raise errors.AuthenticationFailed(
                    f"upstream {self.name!r}: {exc.message}"
                ) from None
        if self._key is None:
            self._key = await self._secrets.get(self.name)
        if self._key is None and self.settings.api_key_env:
            self._key = os.environ.get(self.settings.api_key_env) or None
        SCRUBBED.add(self._key)
        if self._key is None:
            status = self._secrets.status()
            where = "" if status.secure else f" ({status.reason})"
            raise errors.AuthenticationFailed(
                f"upstream {self.name!r} has no API key{where} — "
                f"{self.sign_in_hint()}, or enter it in the LM Bridge tray"
            )
        return self._key

    def headers_for(self, credential: AccessToken | str) -> dict[str, str]:
        """The headers that present `credential` on this route."""
        if isinstance(credential, AccessToken):
            return {"Authorization": f"Bearer {credential.token}"}
        own = self.codec.wire.key_headers(credential)
        if "Authorization" in own:  # Azure reads its keys from api-key
            return {"api-key": credential}
        return {**own, "api-key": credential}

    async def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate us to Azure (never logged)."""
        return self.headers_for(await self.credential())

    async def _renewed(
        self, used: AccessToken | str, record: RequestRecord | None
    ) -> AccessToken | str | None:
        """A different credential after Azure rejected `used`, or None."""
        if isinstance(used, AccessToken) and self.tokens is not None:
            fresh = await self.tokens.refresh(used)
            if record is not None:
                record.note(NoteKind.UPSTREAM, "azure: token refreshed after a 401")
            return fresh
        self._key = None
        key = await self.credential()
        return key if key != used else None

    # ------------------------------------------------------------ requests

    async def post(
        self,
        path: str,
        body: bytes,
        *,
        codec: UpstreamCodec,
        record: RequestRecord | None = None,
        headers: Mapping[str, str] | None = None,
        auth: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """POST with Azure credentials (`auth` is ignored: Azure's own are
        used, and renewed once on a 401)."""
        return await self._send(path, body, codec, record, headers)

    async def relay(
        self,
        path: str,
        body: bytes,
        *,
        codec: UpstreamCodec,
        record: RequestRecord | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse | Refusal:
        """A content-filter refusal is an answer: the refusal in the client's
        protocol (`codec` is the relayed protocol's), not an error."""
        try:
            return await self._send(path, body, codec, record, headers)
        except ContentFiltered as err:
            refusal = azure_errors.refusal_body(codec.name, body, err.message)
            if refusal is None:
                raise
            sse = refusal.lstrip().startswith((b"event:", b"data:"))
            kind = "text/event-stream" if sse else "application/json"
            return Refusal(err.message, refusal, kind)

    async def _send(
        self,
        path: str,
        body: bytes,
        codec: UpstreamCodec,
        record: RequestRecord | None,
        headers: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        used = await self.credential()
        defaults = self.codec.wire.headers
        for attempt in range(2):
            send = {**defaults, **(headers or {})}
            try:
                return await super().post(
                    path,
                    body,
                    codec=codec,
                    record=record,
                    headers=send,
                    auth=self.headers_for(used),
                )
            except errors.LMBridgeError as err:
                if err.upstream_body is None:
                    raise  # not an answer from Azure
                error = azure_errors.refine(err, self._context(body))
                retry = (
                    attempt == 0
                    and err.status == 401
                    and isinstance(error, errors.AuthenticationFailed)
                )
                renewed = await self._renewed(used, record) if retry else None
                if renewed is None:
                    raise error from None
                used = renewed
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _context(self, body: bytes) -> AzureContext:
        try:
            deployment = _model_of.decode(body).model
        except DECODE_ERRORS:
            deployment = ""
        return AzureContext(
            upstream=self.name,
            host=self.host,
            deployment=deployment,
            auth=self.auth,
            scope=self.scope,
            sign_in=self.sign_in_hint(),
            project_route=self.route.project_route,
        )

    async def open_batches(
        self, req: ir.Request, record: RequestRecord
    ) -> AsyncGenerator[list[ir.Event], None]:
        """Send `req` translated to this route's API; stream IR events.

        A content-filter refusal becomes refusal events.
        """
        codec = self.codec
        try:
            resp = await self._send(
                codec.wire.path, codec.encode_request(req), codec, record, None
            )
        except ContentFiltered as err:
            # A refusal is an answer: refusal events, not an error.
            record.note(NoteKind.UPSTREAM, "azure: refused by the content filter")
            return azure_errors.refusal_batches(req, err.message)
        return self._batches(resp, codec, req)

    # ------------------------------------------------------------ discovery

    async def list_models(self, max_age: float = 5.0) -> list[str]:
        """None: deployments are named by routes (listing them needs ARM)."""
        return []

    async def check(self) -> Health:
        """Health: the endpoint answers at all (no credentials sent), and
        whether a credential is at hand (no sign-in attempted)."""
        health = Health(
            name=self.name,
            kind=self.kind,
            url=str(Url(self.url(self.codec.wire.path))),
            reachable=False,
            auth=self.auth,
        )
        if self.tokens is not None:
            token = self.tokens.cached()
            health.signed_in = token is not None and token.fresh()
        else:
            health.signed_in = self._key is not None
        try:
            status, _body = await self.transport.get(self.route.origin + "/", {}, 2)
        except errors.LMBridgeError as err:
            health.error = err.message
            return health
        health.reachable, health.status = True, status
        return health

    async def close(self) -> None:
        if self.tokens is not None:
            await self.tokens.aclose()
        await super().close()
