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


def _fields(struct: type[RequestSummary]) -> tuple[msgspec.inspect.Field, ...]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    return info.fields


class RecordColumns:
    """How the fields of a record struct map to columns of a table."""

    def __init__(self, struct: type[RequestSummary] = RequestSummary) -> None:
        self.struct = struct
        fields = [f for f in _fields(struct) if f.name != ROW_ID]
        self.fields = tuple(f.name for f in fields)
        self.json = frozenset(f.name for f in fields if _is_json(f.type))
        self.names = (*self.fields, *DERIVED)
        self.caps: dict[str, int] = {"error": ERROR_CAP}
        self.columns = ", ".join(self.names)
        self.select = f"{ROW_ID}, " + ", ".join(self.fields)
        hints = typing.get_type_hints(struct)
        self._decoders = {
            f.name: msgspec.json.Decoder(hints[f.name])
            for f in fields
            if f.name in self.json
        }

    def insert_sql(self, table: str) -> str:
        """INSERT of one row (parameters in `row()`'s order)."""
        marks = ", ".join("?" * len(self.names))
        return f"INSERT INTO {table} ({self.columns}) VALUES ({marks})"

    def row(self, record: RequestSummary) -> tuple[Any, ...]:
        """The parameters of `insert_sql` for `record`."""
        values = [self._value(name, getattr(record, name)) for name in self.fields]
        values += [derive(record) for derive in DERIVED.values()]
        return tuple(values)

    def _value(self, name: str, value: Any) -> Any:
        if name == "notes":
            value = _capped_notes(value)
        if name in self.json:
            return msgspec.json.encode(value).decode()
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, str):
            return _cap(value, self.caps.get(name, TEXT_CAP))
        return value

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
