"""Checking settings before they are saved: one message per key, for the user.

`problems(data, source)` takes config.toml's content (plain data, as parsed
from the text about to be written) and returns `{key: message}` for every
key that is wrong, keyed the way `settings_edit.key_name` writes them
(`server.port`, `upstream[local].base_url`), so a form can show each message
next to its field. Empty means the text is valid exactly as the proxy would
read it at start (`config.parse`), plus what only matters when saving:

- the proxy's port must not be a port an upstream on the same host uses
  (LM Studio's 1234, say): the proxy would answer in its place, or not
  start at all.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from lmbridge import config
from lmbridge.settings_edit import IDENTITY, key_name


class SettingsInvalid(config.ConfigError):
    """Nothing was saved: `problems` maps each wrong key to what is wrong."""

    def __init__(self, source: str, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        lines = [f"{key}: {msg}" if key else msg for key, msg in problems.items()]
        super().__init__(f"{source}: " + "; ".join(lines))


# config.ConfigError's messages start with the key: "route[2].upstream ...".
_KEY = re.compile(r"^(?P<table>[a-z_]+)(?:\[(?P<index>\d+)\])?(?:\.(?P<key>\w+))?")
_AT = re.compile(r" - at `\$(?P<where>[^`]*)`$")
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_UNKNOWN = re.compile(r"^unknown key `(?P<key>[^`]+)`$")
_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "array": "a list",
    "object": "a table",
    "null": "nothing",
}


def _plain(message: str) -> str:
    """msgspec's "Expected `int`, got `str`" the way a user reads it."""
    match = _EXPECTED.match(message)
    if not match:
        if (bound := config.plain_bound(message)) != message:
            return bound
        return message.replace("Object contains unknown field", "unknown key")
    wants = [_KINDS.get(w.strip(), w.strip()) for w in match["want"].split("|")]
    got = _KINDS.get(match["got"], match["got"])
    return f"must be {' or '.join(wants)}, not {got}"


def _entry_name(table: str, index: int, data: dict[str, Any]) -> str:
    entries = data.get(table)
    if isinstance(entries, list) and index < len(entries):
        entry = entries[index]
        ident = (
            entry.get(IDENTITY.get(table, ""), "") if isinstance(entry, dict) else ""
        )
        if isinstance(ident, str) and ident:
            return ident
    return str(index)


def _choices(kind: Any, key: str) -> list[Any]:
    """The values a Literal-typed field of struct `kind` allows."""
    try:
        field_type = next(f.type for f in msgspec.structs.fields(kind) if f.name == key)
    except (StopIteration, TypeError):
        return []
    found: list[Any] = []
    stack = [field_type]
    while stack:
        current = stack.pop(0)
        if typing.get_origin(current) is typing.Literal:
            found += [v for v in typing.get_args(current) if v != ""]
        else:
            stack += list(typing.get_args(current))
    return found


def _type_problem(
    table: str, value: Any, kind: Any, data: dict[str, Any], index: int | None
) -> tuple[str, str] | None:
    try:
        msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        match = _AT.search(str(exc))
        head = _plain(_AT.sub("", str(exc)))
        where = match.group("where").lstrip(".") if match else ""
        key = where.split(".")[0].split("[")[0]
        unknown = _UNKNOWN.match(head)
        if unknown and not key:
            key, head = unknown["key"], "not a setting LM Bridge knows (a typo?)"
        elif head.startswith("Invalid enum value") and key:
            choices = _choices(kind, key)
            if choices:
                head = f"must be one of {', '.join(map(str, choices))}"
        path: tuple[str, ...] = (table,)
        if index is not None:
            path += (_entry_name(table, index, data),)
        if key:
            path += (key,)
        return key_name(path), head
    return None


def _type_problems(data: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    fields = {f.encode_name: f.type for f in msgspec.structs.fields(config.Settings)}
    for name in data:
        if name not in fields:
            found[name] = "not a setting LM Bridge knows (a typo?)"
    for name, kind in fields.items():
        if name not in data:
            continue
        value = data[name]
        if name in IDENTITY and isinstance(value, list):
            item_type = kind.__args__[0] if hasattr(kind, "__args__") else Any
            for i, entry in enumerate(value):
                problem = _type_problem(name, entry, item_type, data, i)
                if problem:
                    found.setdefault(*problem)
            continue
        problem = _type_problem(name, value, kind, data, None)
        if problem:
            found.setdefault(*problem)
    return found


def _host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname, port


def _same_machine(bind: str, host: str) -> bool:
    if bind == host:
        return True
    local = config.is_loopback_host(host)
    try:
        wildcard = ipaddress.ip_address(bind.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    return local and (wildcard or config.is_loopback_host(bind))


def port_conflicts(settings: config.Settings) -> dict[str, str]:
    """`server.port` -> why, when an upstream on this host uses that port."""
    server = settings.server
    if server.port == 0:  # any free port
        return {}
    for up in settings.upstream:
        where = _host_port(up.base_url) if up.base_url else None
        if where and where[1] == server.port and _same_machine(server.host, where[0]):
            return {
                "server.port": f"{server.port} is the port of upstream {up.name!r} "
                f"({where[0]}:{where[1]}); LM Bridge would answer in its place. "
                f"Choose another port, such as {config.DEFAULT_PORT}."
            }
    return {}


def _semantic_problem(
    exc: config.ConfigError, source: str, data: dict[str, Any]
) -> tuple[str, str]:
    message = exc.message.removeprefix(f"{source}: ")
    match = _KEY.match(message)
    if not match or match.group("table") not in data:
        return "", message
    table, index, key = match.group("table", "index", "key")
    if index is not None:
        path: tuple[str, ...] = (table, _entry_name(table, int(index), data))
    else:
        path = (table,)
    if key:
        path += (key,)
    return key_name(path), message[match.end() :].strip() or message


def problems(data: dict[str, Any], source: str) -> dict[str, str]:
    """Every problem of `data` (config.toml's content), by key; {} if valid."""
    found = _type_problems(data)
    if found:
        return found
    try:
        settings = config.parse(
            config.dump(msgspec.convert(data, config.Settings)), source
        )
    except config.ConfigError as exc:
        key, message = _semantic_problem(exc, source, data)
        return {key: message}
    except msgspec.ValidationError as exc:
        return {"": str(exc)}
    return port_conflicts(settings)
