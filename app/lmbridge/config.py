"""Typed settings, loaded from TOML in the platform config directory.

Precedence, lowest first: built-in defaults, the TOML file (`--config PATH`,
else `$LMBRIDGE_HOME/config.toml`, else the platform config dir),
`LMBRIDGE_*` environment variables, command-line flags.

The keys below are a contract that outside tools rely on: extend them,
never rename them. Unknown keys and bad values are reported with the key
and file, and the app does not start on a broken config.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
from pathlib import Path
from typing import Literal

import msgspec
import platformdirs

from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.core.errors import ConfigError as ConfigError  # re-exported
from lmbridge.protocols import registry

DEFAULT_PORT = 4680
APP_NAME = "lmbridge"

UpstreamKind = Literal["lmstudio", "llamacpp", "openai", "anthropic", "azure-foundry"]
# The name of an upstream API: a codec in protocols/registry.py ("chat",
# "messages", "responses", or any registered since), checked by _validate.
UpstreamApi = str


class ServerSettings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # Take the next free port when `port` is busy, instead of failing.
    port_fallback: bool = False
    log_requests: bool = False
    # Seconds of upstream silence after which a `ping` keeps a stream alive.
    ping_interval: float = 10.0
    # Largest request body accepted, in MiB.
    max_body_mb: int = 32
    # Web pages (origins such as "http://localhost:3000") allowed to call the
    # proxy from a browser; every other Origin is refused with 403.
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    # Clients must send this token (Authorization: Bearer or x-api-key) when
    # set; required when host is not a loopback address. Prefer
    # access_token_env, which names an environment variable holding it.
    access_token: str = ""
    access_token_env: str = ""
    # Slow or idle clients (README "Security"): seconds a request head may
    # take (from the connection's start, or from its first byte after an
    # idle keep-alive); the lowest rate, in bytes per second, at which a
    # body must arrive once client_header_timeout has passed; seconds an
    # idle keep-alive connection is kept; and the most client connections
    # open at once (more are closed as they come).
    client_header_timeout: float = 10.0
    client_body_min_rate: int = 1024
    client_idle_timeout: float = 60.0
    max_connections: int = 256

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


class UpstreamSettings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    name: str
    kind: UpstreamKind = "openai"
    base_url: str = ""
    # API of the upstream (protocols/registry.py `api_names`: chat,
    # responses, messages); empty means the kind's default.
    api: UpstreamApi = ""
    api_key_env: str | None = None
    # Cap on max_tokens sent upstream (Claude Code asks for 128000).
    max_tokens_limit: int | None = None
    # Send Claude Code's billing block (first system block,
    # "x-anthropic-billing-header: ...") to this upstream. It changes every
    # turn, which costs a local server its prompt cache, so it is dropped
    # for every upstream but Claude on Azure AI Foundry unless this is true.
    keep_billing_header: bool = False
    # The `anthropic-beta` values forwarded to this upstream (others are
    # removed, and the request's record says which). Unset: every value,
    # but for azure-foundry, which refuses betas it does not know, only
    # FOUNDRY_BETAS. ["*"] forwards every value.
    anthropic_betas: list[str] | None = None
    # Seconds to connect; None means 2 s on loopback, 10 s elsewhere.
    connect_timeout: float | None = None
    # Seconds to wait for the first byte (a long prompt on a slow local model
    # can take minutes) and between chunks; None waits indefinitely.
    first_byte_timeout: float | None = None
    idle_timeout: float | None = None
    # Requests sent to this upstream at once; more wait their turn (queue).
    max_concurrent: int | None = None
    # kind = "azure-foundry" only (README "Azure AI Foundry"):
    # the resource name ("my-foundry" of my-foundry.services.ai.azure.com).
    resource: str = ""
    # The Foundry project; with api = "responses" it selects the project
    # Responses route, without it the Azure OpenAI v1 route is used.
    project: str = ""
    # api-version of the project Responses route.
    api_version: str = "2025-11-15-preview"
    # How to sign in: the Azure CLI, a browser, or a key in the OS keyring.
    auth: Literal["azure-cli", "browser", "api-key"] = "azure-cli"
    # Token scope; empty means https://ai.azure.com/.default, or
    # https://cognitiveservices.azure.com/.default on *.openai.azure.com.
    scope: str = ""
    # Entra tenant to take tokens from; empty means the account's default.
    tenant: str = ""
    # The az executable; empty means PATH, then the usual install places.
    az_path: str = ""


class RouteSettings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    model: str
    upstream: str
    target: str | None = None
    max_tokens_limit: int | None = None
    # Upstreams tried in order when this one is unreachable or answers 429 or
    # 5xx before anything reached the client.
    fallback: list[str] = msgspec.field(default_factory=list)
    # The model's context window in tokens, which `lmbridge integrate` writes
    # into the tools' auto-compaction settings; unset: LM Studio's loaded
    # context (or lmstudio.load_context_length), else nothing is written.
    context_window: int | None = None

    def matches(self, model: str) -> bool:
        return fnmatch.fnmatchcase(model, self.model)


class LMStudioSettings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """The `[lmstudio]` table: model management through the lmstudio SDK."""

    # Manage models of every `kind = "lmstudio"` upstream, each on its own
    # server (list, load on demand, context checks). Off: only forward.
    manage: bool = True
    # host:port of the first lmstudio upstream's LM Studio; empty: its base_url.
    address: str = ""
    # Loaded models below this context are reloaded ("auto"), reported
    # ("warn") or left alone ("off"). Claude Code alone needs about 20K.
    min_context: int = 32768
    context_policy: Literal["auto", "warn", "off"] = "auto"
    # Loads on demand use this context (not LM Studio's small JIT default)
    # and this idle TTL in seconds (none: LM Bridge decides when to unload).
    load_context_length: int = 32768
    load_ttl_seconds: int | None = None
    # Defaults of the load dialog and of loads on demand; unset: LM Studio's
    # own. GPU offload: a ratio 0.0 to 1.0, "max" or "off"; KV-cache type:
    # f32, f16, q8_0, q5_1, q5_0, q4_1, q4_0 or iq4_nl (quantized V needs
    # flash attention).
    load_gpu_offload: float | Literal["max", "off"] | None = None
    load_flash_attention: bool | None = None
    load_kv_cache_type: (
        Literal["f32", "f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl"] | None
    ) = None
    load_timeout: float = 300.0
    # Load a model that a request names but LM Studio has not loaded.
    load_on_demand: bool = True


class ChatSettings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """The `[chat]` table: defaults of the simple chat service (README "Chat APIs")."""

    # Model for /chat/regular (and /chat without images or model_key).
    default_text_model: str = ""
    # Model for /chat/vision (and /chat with images but no model_key).
    default_vision_model: str = ""
    # Largest decoded image accepted, in bytes.
    max_image_bytes: int = 10 * 1024 * 1024


class LoggingSettings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """The `[logging]` table: the log file (`lmbridge logs` prints its path)."""

    # Lowest level written to the log file; stderr keeps showing warnings.
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"


class UsageSettings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """The `[usage]` table: request history kept in the database (metadata only)."""

    # Keep each finished request's metadata (never bodies) for the Usage page
    # and `lmbridge usage`; off: the request log is memory only.
    record: bool = True
    # Days of history kept; older entries are deleted.
    retention_days: int = 30


class Settings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """Everything configurable; see README "Configuration"."""

    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    upstream: list[UpstreamSettings] = msgspec.field(default_factory=list)
    route: list[RouteSettings] = msgspec.field(default_factory=list)
    chat: ChatSettings = msgspec.field(default_factory=ChatSettings)
    lmstudio: LMStudioSettings = msgspec.field(default_factory=LMStudioSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    usage: UsageSettings = msgspec.field(default_factory=UsageSettings)

    def __post_init__(self) -> None:
        if not self.upstream:
            self.upstream = [
                UpstreamSettings(
                    name="local", kind="lmstudio", base_url="http://127.0.0.1:1234"
                )
            ]

    def upstream_named(self, name: str) -> UpstreamSettings | None:
        for up in self.upstream:
            if up.name == name:
                return up
        return None


def home_dir() -> Path | None:
    home = os.environ.get("LMBRIDGE_HOME")
    return Path(home) if home else None


def config_dir() -> Path:
    home = home_dir()
    return home if home else Path(platformdirs.user_config_dir(APP_NAME))


def data_dir() -> Path:
    home = home_dir()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP_NAME))


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def _validate(settings: Settings, source: str) -> None:
    names: set[str] = set()
    for i, up in enumerate(settings.upstream):
        if up.name in names:
            raise ConfigError(f"{source}: upstream[{i}].name {up.name!r} is used twice")
        names.add(up.name)
        if up.api and up.api not in registry.api_names():
            raise ConfigError(
                f"{source}: upstream[{i}].api must be one of "
                f"{', '.join(registry.api_names())}, not {up.api!r}"
            )
        if up.kind != "azure-foundry" and not up.base_url:
            raise ConfigError(f"{source}: upstream[{i}].base_url is required")
        if up.base_url and not up.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{source}: upstream[{i}].base_url must start with http:// or "
                f"https://, got {up.base_url!r}"
            )
        if up.kind == "azure-foundry" and not (up.resource or up.base_url):
            raise ConfigError(
                f"{source}: upstream[{i}] (azure-foundry) needs resource, the "
                "name of the Foundry resource (or base_url for another cloud)"
            )
        if up.resource and not re.fullmatch(r"[A-Za-z0-9][\w-]{0,62}", up.resource):
            raise ConfigError(
                f"{source}: upstream[{i}].resource is the resource's name, such "
                f"as 'my-foundry', not {up.resource!r}; a full URL goes in base_url"
            )
        if up.scope and not up.scope.startswith("https://"):
            raise ConfigError(
                f"{source}: upstream[{i}].scope must be an https:// scope such as "
                f"'https://ai.azure.com/.default', got {up.scope!r}"
            )
    for i, route in enumerate(settings.route):
        if route.upstream not in names:
            raise ConfigError(
                f"{source}: route[{i}].upstream {route.upstream!r} names no "
                f"upstream (known: {', '.join(sorted(names))})"
            )
        for name in route.fallback:
            if name not in names:
                raise ConfigError(
                    f"{source}: route[{i}].fallback names no upstream {name!r}"
                )
        if route.context_window is not None and route.context_window < 1:
            raise ConfigError(
                f"{source}: route[{i}].context_window must be a number of tokens"
            )
    if settings.usage.retention_days < 1:
        raise ConfigError(f"{source}: usage.retention_days must be at least 1")
    if not 0 <= settings.server.port <= 65535:
        raise ConfigError(f"{source}: server.port must be 0-65535")
    server = settings.server
    for key, value in (
        ("client_header_timeout", server.client_header_timeout),
        ("client_idle_timeout", server.client_idle_timeout),
        ("client_body_min_rate", server.client_body_min_rate),
        ("max_connections", server.max_connections),
    ):
        if value <= 0:
            raise ConfigError(f"{source}: server.{key} must be above 0")
    check_exposure(settings.server, source)


def is_loopback_host(host: str) -> bool:
    """Whether binding `host` keeps the proxy on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Off loopback, the access token is all that stands between the network and
# the user's models and keys: a guessable one is refused.
MIN_EXPOSED_TOKEN = 16


def check_exposure(server: ServerSettings, source: str) -> None:
    """Refuse binding a non-loopback address without a token of at least
    `MIN_EXPOSED_TOKEN` characters and no spaces."""
    if is_loopback_host(server.host):
        return
    token = server.token()
    if token and (len(token) < MIN_EXPOSED_TOKEN or any(c.isspace() for c in token)):
        raise ConfigError(
            f"{source}: server.host {server.host!r} is reachable from other"
            f" machines, so the access token must be at least {MIN_EXPOSED_TOKEN}"
            " characters without spaces (for instance the output of"
            " `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
        )
    if token:
        return
    raise ConfigError(
        f"{source}: server.host {server.host!r} is reachable from other machines;"
        " set server.access_token_env (or server.access_token) so only your"
        " clients can use the proxy, or bind 127.0.0.1"
    )


def _env_overrides(settings: Settings) -> None:
    env = os.environ
    if host := env.get("LMBRIDGE_HOST"):
        settings.server.host = host
    if port := env.get("LMBRIDGE_PORT"):
        try:
            settings.server.port = int(port)
        except ValueError:
            raise ConfigError(f"LMBRIDGE_PORT: not a port number: {port!r}") from None
    if env.get("LMBRIDGE_LOG_REQUESTS", "").lower() in ("1", "true", "yes"):
        settings.server.log_requests = True


def parse(text: bytes | str, source: str = "<config>") -> Settings:
    """Parse and validate TOML text; errors name the key and `source`."""
    try:
        settings = msgspec.toml.decode(text, type=Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_friendly(str(exc))}") from None
    except DECODE_ERRORS as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    _validate(settings, source)
    return settings


def _friendly(message: str) -> str:
    # msgspec says "... - at `$.server.port`"; say the key the way TOML does.
    head, sep, where = message.rpartition(" - at `")
    if not sep:
        return message
    key = where.rstrip("`").removeprefix("$").lstrip(".") or "(top level)"
    return f"{key}: {head}"


def load(path: Path | None = None) -> Settings:
    """Load settings from `path` (or the default file if it exists) plus env."""
    explicit = path is not None
    path = path or default_config_path()
    if path.exists():
        settings = parse(path.read_bytes(), str(path))
    elif explicit:
        raise ConfigError(f"{path}: no such config file")
    else:
        settings = Settings()
    _env_overrides(settings)
    check_exposure(settings.server, str(path) if path.exists() else "LMBRIDGE_HOST")
    return settings


def dump(settings: Settings) -> bytes:
    """TOML text of `settings` (never holds secrets: keys live in the keyring).

    Only what differs from the defaults, with no empty tables, and lists of
    tables as `[[upstream]]` / `[[route]]` blocks. Saves go through
    settings_store, which edits the user's file instead of replacing it.
    """
    import tomlkit  # only the writers need it

    data = msgspec.to_builtins(settings)
    return tomlkit.dumps({k: v for k, v in data.items() if v not in ({}, [])}).encode()


def url_credentials_secret(upstream: str) -> str:
    """The keyring entry holding the `user:password` that a save took out of
    upstream `upstream`'s base_url (settings_store); no upstream name has "@"."""
    return f"{upstream}@base_url"
