"""`lmbridge config`: the settings file from the command line, through the store.

    lmbridge config path                     where config.toml is
    lmbridge config get server.port          a value as TOML
    lmbridge config set server.port 4681     change one key (TOML value; a bare
                                             word is text)
    lmbridge config unset lmstudio.min_context
    lmbridge config backups                  the dated backups, newest first
    lmbridge config restore 1                put a backup back (1 = newest)

Keys are written as the Settings page and error messages name them:
`server.port`, `upstream[local].base_url`, `route[claude-*].target`. Every
change goes through `settings_store.SettingsStore`, like the app's: the
rest of the file, its comments and order stay, the change is checked (one
message per wrong key, nothing written otherwise) and the old file is kept
in backups/.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import tomlkit

from lmbridge import config
from lmbridge.settings_edit import IDENTITY
from lmbridge.settings_store import (
    REMOVE,
    KeyPath,
    SavedSettings,
    SettingsInvalid,
    SettingsStore,
    key_name,
)

_KEY = re.compile(r"^(?P<table>\w+)(?:\[(?P<entry>[^\]]+)\])?(?:\.(?P<field>\w+))?$")


def register(subparsers: Any) -> None:
    """Add `config` and its actions."""
    parser = subparsers.add_parser(
        "config",
        help="show or change settings in config.toml (comments kept, backed up)",
        description="Read or change LM Bridge's settings file; every change "
        "keeps the file's comments and a dated backup of the old file.",
    )
    actions = parser.add_subparsers(dest="config_action", required=True)
    actions.add_parser("path", help="print the settings file's path")
    get = actions.add_parser("get", help="print a setting")
    get.add_argument("key", help="e.g. server.port or upstream[local].base_url")
    put = actions.add_parser("set", help="change a setting")
    put.add_argument("key")
    put.add_argument("value", help='a TOML value (4681, true, ["a"]) or text')
    unset = actions.add_parser("unset", help="back to the default")
    unset.add_argument("key")
    actions.add_parser("backups", help="list the dated backups, newest first")
    restore = actions.add_parser("restore", help="put a backup back")
    restore.add_argument("number", type=int, help="its number in `backups` (1: newest)")
    parser.set_defaults(run=run)


def key_path(text: str) -> KeyPath:
    """`server.port` -> ("server", "port"); `route[a*].target` -> (...)."""
    match = _KEY.match(text.strip())
    if not match:
        raise ValueError(f"not a setting's name: {text!r} (e.g. server.port)")
    path: KeyPath = (match["table"],)
    if match["entry"]:
        path += (match["entry"],)
    if match["field"]:
        path += (match["field"],)
    return path


def toml_value(text: str) -> Any:
    """A TOML value (number, boolean, list, quoted string); else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _lookup(settings: config.Settings, path: KeyPath) -> Any:
    """The value at `path` (defaults included); KeyError if there is none."""
    node: Any = settings
    steps = list(path)
    if path[0] in IDENTITY and len(path) > 1:
        key = IDENTITY[path[0]]
        entries = getattr(settings, path[0])
        node = next((e for e in entries if getattr(e, key) == path[1]), None)
        steps = steps[2:]
    for step in steps:
        if node is None or not hasattr(node, "__struct_fields__"):
            raise KeyError(path)
        if step not in node.__struct_fields__:
            raise KeyError(path)
        node = getattr(node, step)
    if node is None and len(path) == 2 and path[0] in IDENTITY:
        raise KeyError(path)
    return msgspec.to_builtins(node)


def _report(saved: SavedSettings) -> None:
    for path in saved.skipped:
        entry = key_name(path[:2])
        print(
            f"lmbridge: there is no {entry}; set it whole, e.g. "
            f"lmbridge config set '{entry}' '{{ upstream = \"local\" }}'",
            file=sys.stderr,
        )
    if not saved.changed:
        print("no change")
        return
    print(f"saved {saved.path}: {', '.join(key_name(p) for p in saved.changed)}")
    if saved.backup is not None:
        print(f"the previous file is kept as {saved.backup}")


def run(args: argparse.Namespace, settings: config.Settings) -> int:
    path: Path = args.config or config.default_config_path()
    store = SettingsStore(path)
    action = args.config_action
    try:
        if action == "path":
            print(path)
            return 0
        if action == "backups":
            for n, backup in enumerate(store.backups(), 1):
                print(f"{n:3}  {backup.label}  {backup.path}")
            return 0
        if action == "restore":
            backups = store.backups()
            if not 1 <= args.number <= len(backups):
                print(f"lmbridge: no backup {args.number}", file=sys.stderr)
                return 1
            _report(store.restore(backups[args.number - 1]))
            return 0
        path_key = key_path(args.key)
        if action == "get":
            value = _lookup(store.settings, path_key)
            if isinstance(value, dict):
                print(tomlkit.dumps(value), end="")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                print(tomlkit.dumps({path_key[0]: value}), end="")
            elif value is not None:
                print(tomlkit.item(value).as_string())
            return 0
        value = REMOVE if action == "unset" else toml_value(args.value)
        saved = store.apply({path_key: value})
        _report(saved)
        return 1 if saved.skipped else 0
    except SettingsInvalid as exc:
        for key, message in exc.problems.items():
            print(f"lmbridge: {key or path}: {message}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"lmbridge: {exc}", file=sys.stderr)
        return 1
    except KeyError:
        print(f"lmbridge: no such setting: {args.key}", file=sys.stderr)
        return 1
    except (config.ConfigError, OSError) as exc:
        print(f"lmbridge: {exc}", file=sys.stderr)
        return 1
