"""Typed settings, loaded from TOML in the platform config directory.

Each setting is declared once, here: its key, type, default, bounds
(`msgspec.Meta(ge=..., le=...)`, checked when the file is read) and its
documentation (`setting(...)`). docs/configuration.md
(`python -m lmbridge.config_docs`) and the Settings page
(`gui/settings/generated.py`) are built from these declarations through
`config_fields`, so adding a setting to a table is one edit here. A new
table is a struct (with a `title`) and one field of `Settings`.

Precedence, lowest first: built-in defaults, the TOML file (`--config PATH`,
else `$LMBRIDGE_HOME/config.toml`, else the platform config dir),
`LMBRIDGE_*` environment variables (`ENV_OVERRIDES`), command-line flags.

The keys below are a contract that outside tools rely on: extend them,
never rename them. Unknown keys and bad values are reported with the key
and file, and the app does not start on a broken config.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import msgspec
import platformdirs

from lmbridge.config_tables import (
    APP_NAME,
    DEFAULT_PORT,
    FOUNDRY_BETAS,
    MIB,
    WEB_SEARCH_SECRET,
    ChatSettings,
    Count,
    LMStudioSettings,
    LoggingSettings,
    RouteSettings,
    Seconds,
    ServerSettings,
    UpstreamApi,
    UpstreamKind,
    UpstreamSettings,
    UsageSettings,
    WebSearchSettings,
    setting,
)
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.core.errors import ConfigError as ConfigError  # re-exported
from lmbridge.protocols import registry

# The declarations live in config_tables; `config` is where the app takes them.
__all__ = [
    "APP_NAME",
    "DEFAULT_PORT",
    "FOUNDRY_BETAS",
    "MIB",
    "WEB_SEARCH_SECRET",
    "ChatSettings",
    "Count",
    "LMStudioSettings",
    "LoggingSettings",
    "RouteSettings",
    "Seconds",
    "ServerSettings",
    "UpstreamApi",
    "UpstreamKind",
    "UpstreamSettings",
    "UsageSettings",
    "WebSearchSettings",
    "setting",
]


class Settings(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """Everything configurable: docs/configuration.md lists every key."""

    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    upstream: list[UpstreamSettings] = msgspec.field(default_factory=list)
    route: list[RouteSettings] = msgspec.field(default_factory=list)
    chat: ChatSettings = msgspec.field(default_factory=ChatSettings)
    lmstudio: LMStudioSettings = msgspec.field(default_factory=LMStudioSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)
    usage: UsageSettings = msgspec.field(default_factory=UsageSettings)
    web_search: WebSearchSettings = msgspec.field(default_factory=WebSearchSettings)

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


# Environment variables that override a key of the file: name -> (table, key).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "LMBRIDGE_HOST": ("server", "host"),
    "LMBRIDGE_PORT": ("server", "port"),
    "LMBRIDGE_LOG_REQUESTS": ("server", "log_requests"),
}


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
    _validate_web_search(settings.web_search, source)
    check_exposure(settings.server, source)


def _validate_web_search(search: WebSearchSettings, source: str) -> None:
    """What the declarations cannot say: searxng needs its address."""
    if search.provider == "searxng" and not search.url:
        raise ConfigError(
            f"{source}: web_search.url is required for searxng: the address"
            " of its instance, such as 'http://127.0.0.1:8888'"
        )
    if search.url and not search.url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{source}: web_search.url must start with http:// or https://,"
            f" got {search.url!r}"
        )


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
    for name, (table, key) in ENV_OVERRIDES.items():
        text = env.get(name)
        if not text:
            continue
        section = getattr(settings, table)
        current = getattr(section, key)
        if isinstance(current, bool):
            value: object = text.lower() in ("1", "true", "yes")
        elif isinstance(current, int):
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"{name}: not a whole number: {text!r}") from None
        else:
            value = text
        setattr(section, key, value)
    if not 0 <= settings.server.port <= 65535:
        raise ConfigError(f"LMBRIDGE_PORT: not a port number: {settings.server.port}")


def with_env(settings: Settings) -> Settings:
    """`settings` (what a file says) with the `LMBRIDGE_*` overrides applied,
    as `load` gives them: a copy, `settings` itself is left as it is. The
    app runs with these; writers edit the file's own values."""
    if not any(os.environ.get(name) for name in ENV_OVERRIDES):
        return settings
    tables = {table for table, _key in ENV_OVERRIDES.values()}
    copy = msgspec.structs.replace(
        settings,
        **{t: msgspec.structs.replace(getattr(settings, t)) for t in tables},
    )
    _env_overrides(copy)
    return copy


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


_BOUND = re.compile(r"^Expected `(?P<type>\w+)` (?P<op>>=|<=|>|<) (?P<limit>\S+)$")
_BOUND_WORDS = {">=": "at least", "<=": "at most", ">": "above", "<": "below"}


def plain_bound(message: str) -> str:
    """msgspec's "Expected `int` >= 1" as "must be at least 1" (other
    messages unchanged)."""
    match = _BOUND.match(message)
    if match is None:
        return message
    return f"must be {_BOUND_WORDS[match['op']]} {match['limit']}"


def _friendly(message: str) -> str:
    # msgspec says "... - at `$.server.port`"; say the key the way TOML does.
    head, sep, where = message.rpartition(" - at `")
    if not sep:
        return message
    key = where.rstrip("`").removeprefix("$").lstrip(".") or "(top level)"
    return f"{key}: {plain_bound(head)}"


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
