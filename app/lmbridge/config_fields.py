"""The settings' declarations as data: what docs/configuration.md and the
Settings page are built from.

`tables()` walks `config.Settings` (msgspec's own type introspection, so
bounds come out as msgspec checks them) and returns, per TOML table, each
key's type, default, bounds, doc and page hints (`config_tables.setting`).
Nothing here is used when the config file is read, so loading stays as
fast as msgspec's decode.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi

from lmbridge import config

Kind = Literal["bool", "int", "float", "str", "choice", "list", "mixed"]


@dataclass(frozen=True)
class Declared:
    """One key of a table, as declared in config_tables."""

    table: str
    key: str
    kind: Kind
    optional: bool  # None (the key left out) is a value of its own
    default: Any
    doc: str
    label: str
    choices: tuple[Any, ...] = ()  # kind "choice" (and "mixed": the words)
    choice_labels: tuple[tuple[str, str], ...] = ()  # value -> words, for the page
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    unit: str = ""
    scale: int = 1
    step: float = 0
    unset: str = ""  # what None or "" means
    secret: bool = False
    on_page: bool = True
    type_text: str = ""  # as the docs show it: "int, 0 to 65535"

    @property
    def name(self) -> str:
        """The key as `lmbridge config get` takes it: "server.port"."""
        return f"{self.table}.{self.key}"

    @property
    def lowest(self) -> float | None:
        """The smallest allowed value (`gt` as its next whole number for an int)."""
        if self.ge is not None:
            return self.ge
        if self.gt is not None:
            return self.gt + 1 if self.kind == "int" else self.gt
        return None


@dataclass(frozen=True)
class Table:
    """A TOML table: `[server]`, or a list of tables such as `[[upstream]]`."""

    name: str
    title: str
    doc: str
    is_list: bool
    keys: tuple[Declared, ...]

    @property
    def heading(self) -> str:
        return f"[[{self.name}]]" if self.is_list else f"[{self.name}]"


def _words(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _unwrap(info: mi.Type) -> tuple[mi.Type, dict[str, Any], str]:
    """(the type, its page hints, its doc) of a field's type info."""
    extra: dict[str, Any] = {}
    doc = ""
    while isinstance(info, mi.Metadata):
        extra = {**(info.extra or {}), **extra}
        doc = doc or str((info.extra_json_schema or {}).get("description", ""))
        info = info.type
    return info, extra, doc


def _describe(info: mi.Type) -> tuple[Kind, bool, tuple[Any, ...], mi.Type | None]:
    """(kind, optional, choices, the numeric type carrying bounds)."""
    members = list(info.types) if isinstance(info, mi.UnionType) else [info]
    optional = any(isinstance(m, mi.NoneType) for m in members)
    members = [m for m in members if not isinstance(m, mi.NoneType)]
    members = [_unwrap(m)[0] for m in members]
    choices: tuple[Any, ...] = ()
    for m in members:
        if isinstance(m, mi.LiteralType):
            choices += tuple(v for v in m.values if v != "")
    numbers = [m for m in members if isinstance(m, (mi.IntType, mi.FloatType))]
    number = numbers[0] if numbers else None
    if len(members) == 1 or all(isinstance(m, mi.LiteralType) for m in members):
        only = members[0]
        if isinstance(only, mi.LiteralType):
            return "choice", optional, choices, None
        simple: dict[type, Kind] = {
            mi.BoolType: "bool",
            mi.IntType: "int",
            mi.FloatType: "float",
            mi.StrType: "str",
            mi.ListType: "list",
        }
        for info_type, kind in simple.items():
            if isinstance(only, info_type):
                return kind, optional, choices, number
    if all(isinstance(m, (mi.LiteralType, mi.StrType)) for m in members):
        return "choice", optional, choices, None
    return "mixed", optional, choices, number


def _type_text(
    kind: Kind, optional: bool, choices: tuple[Any, ...], number: Any
) -> str:
    names = {
        "bool": "true or false",
        "int": "whole number",
        "float": "number",
        "str": "text",
        "list": "list of text",
    }
    if kind == "choice":
        text = " \\| ".join(f'`"{c}"`' for c in choices)
    elif kind == "mixed":
        parts = ["number"] if number is not None else []
        text = " \\| ".join([*parts, *(f'`"{c}"`' for c in choices)])
    else:
        text = names[kind]
    if number is not None:
        bounds = [
            f"{word} {value:g}"
            for word, value in (
                ("at least", number.ge),
                ("above", number.gt),
                ("at most", number.le),
            )
            if value is not None
        ]
        if bounds:
            text += ", " + " and ".join(bounds)
    return text + (" (optional)" if optional else "")


def _literals(hint: Any) -> tuple[Any, ...]:
    """The Literal values of a type hint, in their declared order (msgspec's
    introspection sorts them)."""
    if typing.get_origin(hint) is Literal:
        return tuple(v for v in typing.get_args(hint) if v != "")
    found: tuple[Any, ...] = ()
    for arg in typing.get_args(hint):
        found += _literals(arg)
    return found


def _declared(table: str, field: mi.Field, hint: Any) -> Declared:
    info, extra, doc = _unwrap(field.type)
    kind, optional, choices, number = _describe(info)
    choices = _literals(hint) or choices
    if kind == "str" and extra.get("choices"):
        # Text the page offers as a list (`api`: the registered APIs'
        # setting names); the file may hold others, checked elsewhere.
        kind, choices = "choice", tuple(extra["choices"])
    type_text = _type_text(kind, optional, choices, number)
    default: Any = field.default
    if field.default_factory is not msgspec.NODEFAULT:
        default = field.default_factory()
    elif field.required:
        default = msgspec.NODEFAULT
    return Declared(
        table=table,
        key=field.encode_name,
        kind=kind,
        optional=optional,
        default=default,
        doc=doc,
        label=str(extra.get("label") or _words(field.encode_name)),
        choices=choices,
        choice_labels=tuple((extra.get("choices") or {}).items()),
        ge=getattr(number, "ge", None),
        gt=getattr(number, "gt", None),
        le=getattr(number, "le", None),
        unit=str(extra.get("unit", "")),
        scale=int(extra.get("scale") or 1),
        step=float(extra.get("step") or 0),
        unset=str(extra.get("unset", "")),
        secret=bool(extra.get("secret")),
        on_page=not extra.get("hidden"),
        type_text=type_text,
    )


@functools.cache
def tables(settings: type[msgspec.Struct] = config.Settings) -> tuple[Table, ...]:
    """Every table of config.toml, in `config.Settings`' order (`settings`:
    another root struct, such as a test's own)."""
    root = mi.type_info(settings)
    assert isinstance(root, mi.StructType)
    found = []
    for field in root.fields:
        info = field.type
        is_list = isinstance(info, mi.ListType)
        struct = info.item_type if isinstance(info, mi.ListType) else info
        if not isinstance(struct, mi.StructType):
            continue
        cls = struct.cls
        hints = typing.get_type_hints(cls, include_extras=True)
        found.append(
            Table(
                name=field.encode_name,
                title=str(getattr(cls, "title", "") or _words(field.encode_name)),
                doc=" ".join((cls.__doc__ or "").split()),
                is_list=is_list,
                keys=tuple(
                    _declared(field.encode_name, f, hints[f.name])
                    for f in struct.fields
                ),
            )
        )
    return tuple(found)


def table(name: str) -> Table:
    """The table named `name` ("server"); KeyError if there is none."""
    for found in tables():
        if found.name == name:
            return found
    raise KeyError(name)
