"""The request history's columns, derived from the record's fields.

`request_history` has one column per field of `core.record.RequestSummary`
(its `id` is the row id) plus `client_name`, the user agent's product, kept
for grouping in SQL. A row is written from a record and read back into a
`RequestSummary` by column name, so a new field needs no edit here: only
its migration step (`store/migrations.py`), which
`tests/test_request_record.py` checks is there.

Values are stored as SQLite has them: numbers as numbers, booleans as 0/1,
enums as their value, strings capped (`caps`), and anything structured
(the notes) as JSON.
"""

from __future__ import annotations

import enum
import operator
import typing
from collections.abc import Callable
from typing import Any

import msgspec

from lmbridge.core.record import Note, RequestSummary
from lmbridge.store.usage_types import client_name

TEXT_CAP = 300
ERROR_CAP = 500
NOTES_CAP = 10
NOTE_CAP = 200

ROW_ID = "id"
"""The field that is the row id (assigned by SQLite, never inserted)."""

DERIVED: dict[str, Callable[[RequestSummary], Any]] = {
    "client_name": lambda record: client_name(record.client),
}
"""Columns computed from the record for SQL's sake, not read back."""

_SCALARS = (
    msgspec.inspect.IntType,
    msgspec.inspect.FloatType,
    msgspec.inspect.BoolType,
    msgspec.inspect.StrType,
    msgspec.inspect.NoneType,
    msgspec.inspect.EnumType,
)


def _is_json(info: msgspec.inspect.Type) -> bool:
    """Whether a field of this type is stored as JSON text."""
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_is_json(t) for t in info.types)
    return not isinstance(info, _SCALARS)


def _needs_care(info: msgspec.inspect.Type) -> bool:
    """Whether values of this (scalar) type are not stored as they are:
    text (capped) and enums. Numbers, booleans (SQLite's 0/1) and None are."""
    return isinstance(info, msgspec.inspect.StrType | msgspec.inspect.EnumType)


def _fields(struct: type[RequestSummary]) -> tuple[msgspec.inspect.Field, ...]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return info.fields


def _kinds(info: msgspec.inspect.Type) -> tuple[msgspec.inspect.Type, ...]:
    if isinstance(info, msgspec.inspect.UnionType):
        return info.types
    return (info,)


def _is_text(info: msgspec.inspect.Type) -> bool:
    """Whether values of this type are text to SQLite as they are: str, an
    enum of str values (a str subclass), or None."""
    if isinstance(info, msgspec.inspect.EnumType):
        return issubclass(info.cls, str)
    return isinstance(info, msgspec.inspect.StrType | msgspec.inspect.NoneType)


def _getter(positions: list[int]) -> Callable[[list[Any]], tuple[Any, ...]]:
    """The values at `positions` of a row, as a tuple (however many)."""
    if not positions:
        return lambda _values: ()
    if len(positions) == 1:
        return lambda values: (values[positions[0]],)
    return operator.itemgetter(*positions)


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _notes_json(notes: tuple[Note, ...]) -> str:
    return _json_text(_capped_notes(notes)) if notes else "[]"


def _stored(value: Any, limit: int = TEXT_CAP) -> Any:
    """A scalar as SQLite keeps it: booleans as 0/1, enums as their value,
    text capped at `limit`."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return _cap(value, limit)
    return value


class RecordColumns:
    """How the fields of a record struct map to columns of a table.

    A row is built once per finished request, on the event loop (the
    recorder's flush), so what each field needs (JSON, an enum's value, a
    cap) is worked out here once, from its type, not per value.
    """

    def __init__(self, struct: type[RequestSummary] = RequestSummary) -> None:
        self.struct = struct
        fields = [f for f in _fields(struct) if f.name != ROW_ID]
        self.fields = tuple(f.name for f in fields)
        self.json = frozenset(f.name for f in fields if _is_json(f.type))
        self.names = (*self.fields, *DERIVED)
        self.caps: dict[str, int] = {"error": ERROR_CAP}
        # Worked out once from the field types: `row` runs per request.
        self._values = operator.attrgetter(*self.fields)
        self._encoded: list[tuple[int, Callable[[Any], Any]]] = []
        # Text fields (str, str-valued enums, None): capped (position, cap),
        # and read together so one C-level pass finds whether any is long.
        self._texts: list[tuple[int, int]] = []
        # Other scalars that are not stored as they are (`_stored`).
        self._scalars: list[tuple[int, int]] = []  # (position, text cap)
        for i, f in enumerate(fields):
            cap = self.caps.get(f.name, TEXT_CAP)
            if f.name in self.json:
                encode = _notes_json if f.name == "notes" else _json_text
                self._encoded.append((i, encode))
            elif all(_is_text(k) for k in _kinds(f.type)):
                self._texts.append((i, cap))
            elif any(_needs_care(k) for k in _kinds(f.type)):
                self._scalars.append((i, cap))
        self._shortest_cap = min((cap for _i, cap in self._texts), default=0)
        self._text_values = _getter([i for i, _cap in self._texts])
        self.columns = ", ".join(self.names)
        self.select = f"{ROW_ID}, " + ", ".join(self.fields)
        hints = typing.get_type_hints(struct)
        self._decoders = {
            f.name: msgspec.json.Decoder(hints[f.name])
            for f in fields
            if f.name in self.json
        }

    def insert_sql(self, table: str, rows: int = 1) -> str:
        """INSERT of `rows` rows (parameters in `row()`'s order, row after
        row)."""
        marks = "(" + ", ".join("?" * len(self.names)) + ")"
        return f"INSERT INTO {table} ({self.columns}) VALUES " + ", ".join(
            [marks] * rows
        )

    def row(self, record: RequestSummary) -> tuple[Any, ...]:
        """The parameters of `insert_sql` for `record`."""
        values = list(self._values(record))
        for i, encode in self._encoded:
            values[i] = encode(values[i])
        # SQLite stores str and its enums as text: only a long one is changed.
        if max(map(len, filter(None, self._text_values(values))), default=0) > (
            self._shortest_cap
        ):
            for i, limit in self._texts:
                if values[i] is not None and len(values[i]) > limit:
                    values[i] = _cap(str(values[i]), limit)
        for i, limit in self._scalars:
            value = values[i]
            if type(value) is str:  # most of them, short: kept as they are
                if len(value) > limit:
                    values[i] = _cap(value, limit)
            elif value is not None:
                values[i] = _stored(value, limit)
        values += [derive(record) for derive in DERIVED.values()]
        return tuple(values)

    def read(self, row: tuple[Any, ...]) -> RequestSummary:
        """The record of a `SELECT {select}` row, read by column name."""
        values = dict(zip((ROW_ID, *self.fields), row, strict=True))
        for name, decoder in self._decoders.items():
            values[name] = decoder.decode(values[name])
        return msgspec.convert(values, self.struct, strict=False)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _capped_notes(notes: tuple[Note, ...]) -> list[Note]:
    return [Note(n.kind, _cap(n.text, NOTE_CAP)) for n in notes[:NOTES_CAP]]


HISTORY = RecordColumns()
"""The columns of `request_history`."""
