"""Changes to the settings as key paths, and applying them to config.toml's text.

A change is a mapping of key paths to new values (`Changes`). A key path
names what changed, the way a user reads it:

    ("server", "port")                     -> 4681           a key of a table
    ("lmstudio", "load_ttl_seconds")       -> REMOVE         back to its default
    ("upstream", "local", "base_url")      -> "http://..."   a key of one entry
    ("route", "qwen*")                     -> {...}          a whole entry (new
                                                             or replaced)
    ("route", "qwen*")                     -> REMOVE         the entry removed
    ("route",)                             -> [{...}, ...]   the whole list

Entries of the arrays of tables are named by their identity key (an
upstream by `name`, a route by `model`), so a change to one entry never
touches the others, whatever other writers did to the list meanwhile.

`diff(base, wanted)` computes the changes between the Settings a writer
started from and the Settings it wants. `apply(document, changes, current)`
edits a tomlkit document in place: only the keys named change, the rest of
the file (comments, order, blank lines, quoting) stays as the user wrote
it; arrays of tables stay `[[upstream]]` / `[[route]]` blocks, and no empty
table is ever added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec
import tomlkit
from tomlkit.items import AoT, Array, Comment, InlineTable, Table
from tomlkit.toml_document import TOMLDocument

from lmbridge import config

KeyPath = tuple[str, ...]


class _Remove:
    """The value of a key path that is removed (a key back to its default)."""

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Final = _Remove()
Changes = Mapping[KeyPath, Any]

# The key naming an entry of each array of tables.
IDENTITY: dict[str, str] = {"upstream": "name", "route": "model"}


def key_name(path: KeyPath) -> str:
    """`path` as a user reads it: server.port, upstream[local].base_url."""
    if path and path[0] in IDENTITY and len(path) > 1:
        rest = "".join(f".{p}" for p in path[2:])
        return f"{path[0]}[{path[1]}]{rest}"
    return ".".join(path)


def _data(settings: config.Settings) -> dict[str, Any]:
    return msgspec.to_builtins(settings)  # type: ignore[no-any-return]


def _unique(items: list[dict[str, Any]], key: str) -> bool:
    names = [item.get(key) for item in items]
    return len(set(names)) == len(names) and all(isinstance(n, str) for n in names)


def _diff_list(
    name: str, old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> dict[KeyPath, Any]:
    key = IDENTITY[name]
    if not (_unique(old, key) and _unique(new, key)):
        return {(name,): new} if old != new else {}
    before = {item[key]: item for item in old}
    after = {item[key]: item for item in new}
    common_before = [k for k in before if k in after]
    common_after = [k for k in after if k in before]
    added = [k for k in after if k not in before]
    if common_before != common_after or list(after) != common_after + added:
        # Reordered, or an entry added before others: the order is the
        # meaning (the first matching route wins), so the list is replaced.
        return {(name,): new}
    changes: dict[KeyPath, Any] = {}
    for ident in before:
        if ident not in after:
            changes[(name, ident)] = REMOVE
    for ident, item in after.items():
        if ident not in before:
            changes[(name, ident)] = item
            continue
        was = before[ident]
        for field in [*was, *(f for f in item if f not in was)]:
            if was.get(field) != item.get(field):
                changes[(name, ident, field)] = item.get(field, REMOVE)
    return changes


def diff(base: config.Settings, wanted: config.Settings) -> dict[KeyPath, Any]:
    """The changes that turn `base` into `wanted` (empty when equal)."""
    old, new = _data(base), _data(wanted)
    changes: dict[KeyPath, Any] = {}
    for field in msgspec.structs.fields(config.Settings):
        name = field.encode_name
        was, now = old.get(name), new.get(name)
        if name in IDENTITY:
            changes.update(_diff_list(name, was or [], now or []))
        elif isinstance(was, dict) or isinstance(now, dict):
            was, now = was or {}, now or {}
            for key in [*was, *(k for k in now if k not in was)]:
                if was.get(key) != now.get(key):
                    changes[(name, key)] = now.get(key, REMOVE)
        elif was != now:
            changes[(name,)] = REMOVE if now is None else now
    return changes


# -- applying changes to a tomlkit document -------------------------------


def _set(container: Any, key: str, value: Any) -> None:
    if value is REMOVE or value is None:
        if key in container:
            del container[key]
    elif key not in container or container[key] != value:
        container[key] = value  # tomlkit keeps the key's comment and place


def _new_table(values: Mapping[str, Any]) -> Table:
    """A table of `values`, ending with a blank line like a user's would."""
    table = tomlkit.table()
    for key, value in values.items():
        if value is not None:
            table[key] = value
    table.add(tomlkit.nl())
    return table


def _blank_after(table: Any) -> None:
    """Make `table` end with a blank line (before what we add after it)."""
    if not table.as_string().endswith("\n\n"):
        table.add(tomlkit.nl())


def _append_table(aot: AoT, table: Any) -> None:
    """Append `table`; the blank line before it is the previous table's."""
    if len(aot):
        _blank_after(aot[-1])
    aot.append(table)
    table.trivia.indent = ""  # tomlkit adds a newline of its own otherwise


def _add_to_document(document: TOMLDocument, name: str, item: Any) -> None:
    """Add a table or array of tables at the end, after a blank line."""
    text = document.as_string()
    if text.strip() and not text.endswith("\n\n"):
        document.add(tomlkit.nl())
    document.add(name, item)


def _fill(table: Any, values: Mapping[str, Any]) -> None:
    """Make `table` hold exactly `values`, editing in place (comments stay)."""
    for key in [k for k in table if k not in values]:
        del table[key]
    for key, value in values.items():
        _set(table, key, value)


def _array(document: TOMLDocument, name: str) -> AoT | None:
    """The array of tables `name`, converted from an inline array if need be."""
    found = document.get(name)
    if found is None or isinstance(found, AoT):
        return found
    if not isinstance(found, Array | list):
        raise config.ConfigError(f"{name} must be a list of [[{name}]] tables")
    aot = tomlkit.aot()
    for item in found:
        _append_table(aot, _new_table(dict(item)))
    del document[name]
    _add_to_document(document, name, aot)
    return aot


def _find(aot: AoT | None, name: str, ident: str) -> int | None:
    if aot is None:
        return None
    key = IDENTITY[name]
    return next((i for i, t in enumerate(aot) if t.get(key) == ident), None)


def _append(document: TOMLDocument, name: str, values: Mapping[str, Any]) -> None:
    aot = _array(document, name)
    if aot is None:
        aot = tomlkit.aot()
        _append_table(aot, _new_table(values))
        _add_to_document(document, name, aot)
    else:
        _append_table(aot, _new_table(values))


def _replace_list(
    document: TOMLDocument, name: str, items: Iterable[Mapping[str, Any]]
) -> None:
    items = list(items)
    old = _array(document, name)
    key = IDENTITY[name]
    reusable = {t.get(key): t for t in old} if old is not None else {}
    tables: list[Any] = []
    for item in items:
        table = reusable.pop(item.get(key), None)
        if table is None:
            table = _new_table(item)
        else:
            _fill(table, item)
        tables.append(table)
    if old is not None:
        while len(old):
            del old[0]
        for table in tables:
            _append_table(old, table)
        if not tables:
            del document[name]
    elif tables:
        aot = tomlkit.aot()
        for table in tables:
            _append_table(aot, table)
        _add_to_document(document, name, aot)


def _apply_entry(
    document: TOMLDocument,
    path: KeyPath,
    value: Any,
    current: dict[str, Any],
) -> bool:
    name, ident = path[0], path[1]
    aot = _array(document, name)
    index = _find(aot, name, ident)
    if len(path) == 2:
        if isinstance(value, Mapping):
            value = {IDENTITY[name]: ident, **value}
        if value is REMOVE:
            if aot is not None and index is not None:
                del aot[index]
                if not len(aot):
                    del document[name]
        elif aot is not None and index is not None:
            _fill(aot[index], value)
        else:
            _append(document, name, value)
        return True
    if aot is not None and index is not None:
        _set(aot[index], path[2], value)
        return True
    # Not in the file: an entry the settings hold implicitly (the default
    # upstream) is written out with the change; one another writer removed
    # meanwhile stays removed.
    key = IDENTITY[name]
    implicit = next((e for e in current.get(name, []) if e.get(key) == ident), None)
    if implicit is None:
        return False
    entry = dict(implicit)
    if value is REMOVE:
        entry.pop(path[2], None)
    else:
        entry[path[2]] = value
    _append(document, name, entry)
    return True


def _apply_table_key(document: TOMLDocument, path: KeyPath, value: Any) -> None:
    table_name, key = path[0], path[1]
    table = document.get(table_name)
    if table is None:
        if value is REMOVE or value is None:
            return
        _add_to_document(document, table_name, _new_table({key: value}))
        return
    if not isinstance(table, Table | InlineTable | dict):
        raise config.ConfigError(f"{table_name} must be a table")
    _set(table, key, value)
    if not len(table) and not _has_comments(table):
        del document[table_name]


def _has_comments(table: Any) -> bool:
    body = getattr(getattr(table, "value", None), "body", [])
    return any(isinstance(item, Comment) for _, item in body)


def apply(
    document: TOMLDocument, changes: Changes, current: config.Settings
) -> list[KeyPath]:
    """Apply `changes` to `document` (config.toml as on disk now).

    `current` is what the document holds, parsed (it knows entries the file
    holds implicitly). Returns the key paths that could not be applied
    because their entry is gone from the file (another writer removed it).
    """
    skipped: list[KeyPath] = []
    current_data = _data(current)
    for path, value in changes.items():
        if not path:
            continue
        if path[0] in IDENTITY:
            if len(path) == 1:
                _replace_list(document, path[0], value)
            elif not _apply_entry(document, path, value, current_data):
                skipped.append(path)
        elif len(path) == 1:
            _set(document, path[0], value)
        else:
            _apply_table_key(document, path, value)
    return skipped
