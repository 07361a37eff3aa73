"""The settings' declarations: each TOML table of config.toml as a typed
struct, each key declared once with its type, default, bounds and doc.

`setting(...)` rides along in the key's `Annotated` type: msgspec checks
the bounds when the file is read (config.parse), and `config_fields` reads
the doc and the page hints back for docs/configuration.md
(`python -m lmbridge.config_docs`) and the Settings page. Adding a key is
one edit here; a new table is a `_Table` struct with a `title` and one
field of `config.Settings`. `config` re-exports every name below.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

DEFAULT_PORT = 4680
APP_NAME = "lmbridge"

UpstreamKind = Literal["lmstudio", "llamacpp", "openai", "anthropic", "azure-foundry"]
# The event loop `lmbridge serve` runs on (cli/eventloop.py).
EventLoop = Literal["auto", "uvloop", "asyncio"]
# The name of an upstream API: a codec registered in protocols/registry.py
# ("chat", "responses", "messages", or any registered since); config checks
# it against `registry.api_names()` when the file is read.
UpstreamApi = str

# Bounded values the tables share (checked when the file is read).
Seconds = Annotated[float, Meta(gt=0)]
Count = Annotated[int, Meta(ge=1)]
MIB = 1024**2


def setting(
    doc: str,
    *,
    label: str = "",
    unit: str = "",
    scale: int = 1,
    step: float = 0,
    unset: str = "",
    secret: bool = False,
    on_page: bool = True,
    choices: dict[str, str] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Meta:
    """One setting's declaration beside its type: `doc` (the docs and the
    Settings page's tool tip), `label` (the page's field; default: the key
    in words), bounds (`ge`/`gt`/`le`; on an optional type put them on the
    inner type: `Annotated[int, Meta(ge=1)] | None`), and how the page shows
    it: `unit` and `scale` (bytes shown as MB: `unit="MB", scale=MIB`),
    `step`, `unset` (what an empty or None value means, shown in the field),
    `secret` (never shown; the page has its own keyring row), `on_page`,
    and `choices` (a Literal's values in words, for the page's list; on a
    `str`, the values the page lists, the file may hold others)."""
    extra: dict[str, Any] = {
        key: value
        for key, value in (
            ("label", label),
            ("unit", unit),
            ("scale", scale if scale != 1 else 0),
            ("step", step),
            ("unset", unset),
            ("secret", secret),
            ("hidden", not on_page),
            ("choices", choices),
        )
        if value
    }
    bounds: dict[str, Any] = {
        key: value
        for key, value in (("ge", ge), ("gt", gt), ("le", le))
        if value is not None
    }
    meta: Meta = Meta(description=doc, extra=extra, **bounds)
    return meta


class _Table(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """A TOML table of settings; `title` heads its docs and Settings group."""

    title: ClassVar[str] = ""


class ServerSettings(_Table):
    """The `[server]` table: where the proxy listens and whom it lets in."""

    title: ClassVar[str] = "Server"

    host: Annotated[
        str,
        setting(
            "Address the proxy listens on. Any other than a loopback address"
            " needs an access token.",
            label="Listen on",
        ),
    ] = "127.0.0.1"
    port: Annotated[
        int,
        setting(
            "TCP port of the proxy (0: any free port). LM Studio itself uses 1234.",
            ge=0,
            le=65535,
        ),
    ] = DEFAULT_PORT
    port_fallback: Annotated[
        bool,
        setting(
            "Take the next free port when `port` is busy, instead of failing.",
            label="Take the next free port when it is taken",
        ),
    ] = False
    log_requests: Annotated[
        bool,
        setting(
            "Print one line per finished request on the terminal (`--log-requests`).",
            label="Print each finished request on the terminal",
        ),
    ] = False
    ping_interval: Annotated[
        float,
        setting(
            "Seconds of upstream silence after which a `ping` keeps a client's"
            " stream alive.",
            unit="s",
            gt=0,
        ),
    ] = 10.0
    max_body_mb: Annotated[
        int,
        setting(
            "Largest request body accepted.",
            label="Largest request body",
            unit="MiB",
            ge=1,
        ),
    ] = 32
    allowed_origins: Annotated[
        list[str],
        setting(
            'Web pages (origins such as "http://localhost:3000") allowed to call'
            " the proxy from a browser; every other Origin is refused with 403.",
            label="Allowed web origins",
            unset="none: every web page is refused",
        ),
    ] = msgspec.field(default_factory=list)
    access_token: Annotated[
        str,
        setting(
            "The token clients must send (Authorization: Bearer or x-api-key)"
            " when set; required when `host` is not a loopback address. Prefer"
            " `access_token_env`, or the Settings page, which keeps it in the"
            " keyring.",
            secret=True,
        ),
    ] = ""
    access_token_env: Annotated[
        str,
        setting(
            "Name of an environment variable holding the access token.",
            label="Access token from env var",
            unset="none",
        ),
    ] = ""
    client_header_timeout: Annotated[
        Seconds,
        setting(
            "Seconds a request head may take (from the connection's start, or"
            " from its first byte after an idle keep-alive).",
            unit="s",
        ),
    ] = 10.0
    client_body_min_rate: Annotated[
        Count,
        setting(
            "Lowest rate, in bytes per second, at which a body must arrive once"
            " `client_header_timeout` has passed.",
            unit="B/s",
        ),
    ] = 1024
    client_idle_timeout: Annotated[
        Seconds, setting("Seconds an idle keep-alive connection is kept.", unit="s")
    ] = 60.0
    max_connections: Annotated[
        Count,
        setting("Client connections open at once (more are closed as they come)."),
    ] = 256
    event_loop: Annotated[
        EventLoop,
        setting(
            "The event loop `lmbridge serve` runs on: uvloop where it is"
            " installed (auto; not on Windows), else Python's own asyncio. The"
            " desktop app runs on Qt's.",
            label="Event loop (headless)",
            choices={
                "auto": "uvloop where installed, else asyncio",
                "uvloop": "uvloop (libuv; fails to start without it)",
                "asyncio": "Python's own asyncio",
            },
        ),
    ] = "auto"

    def token(self) -> str:
        """The access token clients must present ("" for none)."""
        if self.access_token_env:
            return os.environ.get(self.access_token_env, "")
        return self.access_token


# Betas Claude on Azure AI Foundry is known to accept; a beta it does not
# know fails the whole request there.
FOUNDRY_BETAS = (
    "interleaved-thinking-2025-05-14",
    "fine-grained-tool-streaming-2025-05-14",
    "context-1m-2025-08-07",
)


class UpstreamSettings(_Table):
    """An `[[upstream]]` entry: a server that answers model requests."""

    title: ClassVar[str] = "Upstreams"

    name: Annotated[str, setting("The upstream's name, which routes refer to.")]
    kind: Annotated[
        UpstreamKind,
        setting(
            "What the server is: LM Studio (managed through its SDK), llama.cpp's"
            " server, any OpenAI-compatible server, Anthropic, or Azure AI Foundry."
        ),
    ] = "openai"
    base_url: Annotated[
        str,
        setting(
            "The server's address (`http://127.0.0.1:1234`); for azure-foundry"
            " it replaces `https://{resource}.<host>` (other clouds, gateways).",
            label="Base URL",
        ),
    ] = ""
    api: Annotated[
        UpstreamApi,
        setting(
            "API spoken for translated traffic; empty: the kind's default"
            " (lmstudio: responses, azure-foundry: responses, anthropic:"
            " messages, others: chat). An API registered since"
            " (protocols/registry.py) is named by its codec's name.",
            label="API",
            unset="the kind's default",
            choices={
                "chat": "OpenAI Chat Completions",
                "responses": "OpenAI Responses",
                "messages": "Anthropic Messages",
            },
        ),
    ] = ""
    api_key_env: Annotated[
        str | None,
        setting(
            "Environment variable holding the upstream's API key (else the"
            " keyring's, `lmbridge keys set NAME`).",
            label="Key from env var",
        ),
    ] = None
    max_tokens_limit: Annotated[
        Count | None,
        setting("Cap on max_tokens sent upstream (Claude Code asks for 128000)."),
    ] = None
    keep_billing_header: Annotated[
        bool,
        setting(
            "Send Claude Code's billing block (first system block,"
            ' "x-anthropic-billing-header: ...") to this upstream. It changes'
            " every turn, which costs a local server its prompt cache, so it is"
            " dropped for every upstream but Claude on Azure AI Foundry unless"
            " this is true."
        ),
    ] = False
    anthropic_betas: Annotated[
        list[str] | None,
        setting(
            "The `anthropic-beta` values forwarded to this upstream (others are"
            " removed, and the request's record says which). Unset: every value,"
            " but for azure-foundry, which refuses betas it does not know, only"
            ' the ones it is known to accept. ["*"] forwards every value.'
        ),
    ] = None
    connect_timeout: Annotated[
        Seconds | None,
        setting(
            "Seconds to connect; unset: 2 s on loopback, 10 s elsewhere.",
            label="Connect timeout (s)",
            unset="default",
        ),
    ] = None
    first_byte_timeout: Annotated[
        Seconds | None,
        setting(
            "Seconds to wait for the answer to begin (a long prompt on a slow"
            " local model, or a model loading, can take minutes); unset: no limit.",
            label="First byte timeout (s)",
            unset="default",
        ),
    ] = None
    idle_timeout: Annotated[
        Seconds | None,
        setting(
            "Seconds of silence allowed in the middle of a stream; unset: no limit.",
            label="Idle timeout (s)",
            unset="default",
        ),
    ] = None
    max_concurrent: Annotated[
        Count | None,
        setting("Requests sent to this upstream at once; more wait their turn."),
    ] = None
    resource: Annotated[
        str,
        setting(
            'azure-foundry: the resource name ("my-foundry" of'
            " my-foundry.services.ai.azure.com).",
            label="Azure resource",
        ),
    ] = ""
    project: Annotated[
        str,
        setting(
            "azure-foundry: the Foundry project; with api = responses it selects"
            " the project Responses route, without it the Azure OpenAI v1 route"
            " is used.",
            label="Foundry project",
        ),
    ] = ""
    api_version: Annotated[
        str, setting("azure-foundry: api-version of the project Responses route.")
    ] = "2025-11-15-preview"
    auth: Annotated[
        Literal["azure-cli", "browser", "api-key"],
        setting(
            "azure-foundry: how to sign in: the Azure CLI, a browser, or a key"
            " in the OS keyring.",
            label="Azure sign-in",
        ),
    ] = "azure-cli"
    scope: Annotated[
        str,
        setting(
            "azure-foundry: token scope; empty: https://ai.azure.com/.default, or"
            " https://cognitiveservices.azure.com/.default on *.openai.azure.com."
        ),
    ] = ""
    tenant: Annotated[
        str,
        setting(
            "azure-foundry: Entra tenant to take tokens from; empty: the"
            " account's default."
        ),
    ] = ""
    az_path: Annotated[
        str,
        setting(
            "azure-foundry: the az executable; empty: PATH, then the usual"
            " install places."
        ),
    ] = ""


class RouteSettings(_Table):
    """A `[[route]]` entry: which upstream serves a model name. The first
    route whose pattern matches wins; unmatched models go unchanged to the
    first upstream."""

    title: ClassVar[str] = "Routes"

    model: Annotated[
        str, setting("Glob (`*`, `?`) on the model name the client sends.")
    ]
    upstream: Annotated[str, setting("The upstream's name.")]
    target: Annotated[
        str | None, setting("The model name sent upstream; unset: the client's.")
    ] = None
    max_tokens_limit: Annotated[
        Count | None, setting("Cap on max_tokens for this route.")
    ] = None
    fallback: Annotated[
        list[str],
        setting(
            "Upstreams tried in order when this one is unreachable or answers"
            " 429 or 5xx before anything reached the client."
        ),
    ] = msgspec.field(default_factory=list)
    context_window: Annotated[
        Count | None,
        setting(
            "The model's context window in tokens, which `lmbridge integrate`"
            " writes into the tools' auto-compaction settings; unset: LM"
            " Studio's loaded context (or lmstudio.load_context_length), else"
            " nothing is written."
        ),
    ] = None

    def matches(self, model: str) -> bool:
        return fnmatch.fnmatchcase(model, self.model)


class LMStudioSettings(_Table):
    """The `[lmstudio]` table: model management through the lmstudio SDK."""

    title: ClassVar[str] = "LM Studio"

    manage: Annotated[
        bool,
        setting(
            'Manage the models of every `kind = "lmstudio"` upstream, each on'
            " its own server (list, load on demand, context checks). Off: only"
            " forward requests.",
            label="Manage LM Studio's models (load on demand, check context)",
        ),
    ] = True
    address: Annotated[
        str,
        setting(
            "host:port of the first lmstudio upstream's LM Studio;"
            " empty: its base_url.",
            label="LM Studio address",
            unset="the upstream's base URL",
        ),
    ] = ""
    min_context: Annotated[
        int,
        setting(
            "Loaded models below this context (tokens) are reloaded, reported or"
            " left alone (`context_policy`). Claude Code alone needs about 20K.",
            label="Minimum context",
            unit="tokens",
            step=1024,
            ge=0,
        ),
    ] = 32768
    context_policy: Annotated[
        Literal["auto", "warn", "off"],
        setting(
            "What happens to a loaded model below `min_context`: reload it with"
            " the minimum (auto), only warn (warn), or nothing (off).",
            label="Below the minimum",
            choices={
                "auto": "reload the model with the minimum",
                "warn": "only warn",
                "off": "do not check",
            },
        ),
    ] = "auto"
    load_context_length: Annotated[
        int,
        setting(
            "Context (tokens) that loads on demand use, instead of LM Studio's"
            " small JIT default.",
            label="Context for loads on demand",
            unit="tokens",
            step=1024,
            ge=1,
        ),
    ] = 32768
    load_ttl_seconds: Annotated[
        Count | None,
        setting(
            "Idle seconds after which LM Studio unloads a model LM Bridge loaded;"
            " unset: it stays loaded (LM Bridge decides when to unload).",
            label="Unload when idle for",
            unit="s",
            step=60,
            unset="stay loaded",
        ),
    ] = None
    load_gpu_offload: Annotated[
        Annotated[float, Meta(ge=0, le=1)] | Literal["max", "off"] | None,
        setting(
            "GPU offload of the load dialog and of loads on demand: a ratio 0.0"
            ' to 1.0, "max" or "off"; unset: LM Studio\'s own.',
            label="GPU offload",
            unset="LM Studio's default",
        ),
    ] = None
    load_flash_attention: Annotated[
        bool | None,
        setting(
            "Flash attention for loads; unset: LM Studio's own.",
            label="Flash attention",
            unset="LM Studio's default",
        ),
    ] = None
    load_kv_cache_type: Annotated[
        Literal["f32", "f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"] | None,
        setting(
            "K and V cache quantization for loads (quantized V needs flash"
            " attention); unset: LM Studio's own.",
            label="KV-cache type",
            unset="LM Studio's default",
        ),
    ] = None
    load_timeout: Annotated[
        Seconds, setting("Seconds a load may take before it fails.", unit="s")
    ] = 300.0
    load_on_demand: Annotated[
        bool,
        setting(
            "Load a model that a request names but LM Studio has not loaded.",
            label="Load a requested model that is not loaded",
        ),
    ] = True


class ChatSettings(_Table):
    """The `[chat]` table: defaults of the simple chat service (`/chat`)."""

    title: ClassVar[str] = "Chat API defaults"

    default_text_model: Annotated[
        str,
        setting(
            "Model for /chat/regular (and /chat without images or model_key);"
            " empty: the request must name one.",
            label="Text model",
        ),
    ] = ""
    default_vision_model: Annotated[
        str,
        setting(
            "Model for /chat/vision (and /chat with images but no model_key);"
            " empty: the request must name one.",
            label="Vision model",
        ),
    ] = ""
    max_image_bytes: Annotated[
        int,
        setting(
            "Largest decoded image accepted, in bytes.",
            label="Largest image",
            unit="MB",
            scale=MIB,
            ge=1,
        ),
    ] = 10 * MIB


class LoggingSettings(_Table):
    """The `[logging]` table: the log file (`lmbridge logs` prints its path)."""

    title: ClassVar[str] = "App"

    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        setting(
            "Lowest level written to the log file; the terminal keeps showing"
            " warnings only.",
            label="Log file level",
        ),
    ] = "INFO"


class UsageSettings(_Table):
    """The `[usage]` table: request history kept in the database (metadata only)."""

    title: ClassVar[str] = "Usage history"

    record: Annotated[
        bool,
        setting(
            "Keep each finished request's metadata (never bodies) for the Usage"
            " page and `lmbridge usage`; off: the request log is memory only.",
            label="Keep the request history",
        ),
    ] = True
    retention_days: Annotated[
        Count,
        setting(
            "Days of history kept; older entries are deleted.",
            label="Keep the history for",
            unit="days",
        ),
    ] = 30


class WebSearchSettings(_Table):
    """The `[web_search]` table: web search for models that cannot search
    (docs/web-search.md). Off until `provider` is set; the Brave and
    Tavily key lives in the OS keyring (`lmbridge keys set web-search`)
    or in the environment variable `api_key_env` names."""

    title: ClassVar[str] = "Web search"

    provider: Annotated[
        Literal["", "searxng", "brave", "tavily"],
        setting(
            "Who runs the searches that clients' web search tools ask for, when"
            " the model cannot search itself; empty: those tools are dropped.",
            label="Search provider",
            choices={
                "": "none (web search tools are dropped)",
                "searxng": "SearXNG (self-hosted, no key)",
                "brave": "Brave Search API",
                "tavily": "Tavily",
            },
        ),
    ] = ""
    url: Annotated[
        str,
        setting(
            "The provider's address: required for searxng (e.g."
            " http://127.0.0.1:8888); Brave's and Tavily's own API when empty.",
            label="Provider address",
        ),
    ] = ""
    api_key_env: Annotated[
        str,
        setting(
            "An environment variable holding the Brave or Tavily key (else the"
            " keyring's, set with `lmbridge keys set web-search`).",
            label="Key from environment variable",
        ),
    ] = ""
    max_searches: Annotated[
        int,
        setting(
            "Searches LM Bridge runs for one answer, at most (a client's own"
            " max_uses may lower it).",
            label="Searches per answer",
            ge=1,
            le=50,
        ),
    ] = 5
    max_results: Annotated[
        int,
        setting(
            "Results the model reads per search.",
            label="Results per search",
            ge=1,
            le=20,
        ),
    ] = 5
    timeout: Annotated[
        float,
        setting(
            "Seconds a search may take; then the model reads that it failed.",
            unit="s",
            gt=0,
            le=120,
        ),
    ] = 10.0


WEB_SEARCH_SECRET = "@web-search"
"""The keyring entry of the web search provider's key (no upstream name
has "@")."""
