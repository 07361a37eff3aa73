"""The base of the app's table models: columns declared once, found by key.

A table model lists its columns as `Column` objects (after Picard's
`ui/itemviews/columns.py`): a key that code uses to find the column, the
title the header shows, and how to read the cell's text, sort value, tool
tip and icon from a row. Views and models ask `column_position("status")`,
never for column 4, so adding or reordering columns touches one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

Index = QModelIndex | QPersistentModelIndex
Row = TypeVar("Row")

# The value a sorting proxy sorts by (`QSortFilterProxyModel.setSortRole`).
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


@dataclass(frozen=True)
class Column(Generic[Row]):
    """One column: `key` for code, `title` for the header, `text` for cells;
    `sort` (default: the text), `tooltip` and `decoration` are optional, and
    `numeric` columns are right-aligned."""

    key: str
    title: str
    text: Callable[[Row], str]
    sort: Callable[[Row], Any] | None = None
    tooltip: Callable[[Row], str | None] | None = None
    decoration: Callable[[Row], Any] | None = None
    numeric: bool = False

    def sort_value(self, row: Row) -> Any:
        return self.sort(row) if self.sort is not None else self.text(row)


class Columns(Generic[Row]):
    """The ordered columns of a table, looked up by key."""

    def __init__(self, *columns: Column[Row]) -> None:
        self._columns = columns
        self._positions = {c.key: i for i, c in enumerate(columns)}
        if len(self._positions) != len(columns):
            raise ValueError("column keys must be unique")

    def __len__(self) -> int:
        return len(self._columns)

    def __iter__(self) -> Iterator[Column[Row]]:
        return iter(self._columns)

    def at(self, position: int) -> Column[Row] | None:
        """The column shown at `position`, None outside the table."""
        return self._columns[position] if 0 <= position < len(self._columns) else None

    def position(self, key: str) -> int:
        """Where the column `key` is shown; KeyError for an unknown key."""
        return self._positions[key]

    def keys(self) -> list[str]:
        return [c.key for c in self._columns]

    def titles(self) -> list[str]:
        return [c.title for c in self._columns]


class ColumnsTableModel(QAbstractTableModel):
    """A flat table whose columns are `COLUMNS`; subclasses give
    `row_total()` and `row_at()`, and `row_data()` for roles of their own."""

    COLUMNS: Columns[Any] = Columns()

    def row_total(self) -> int:
        raise NotImplementedError

    def row_at(self, row: int) -> Any:
        """The row object at `row`, None outside the table."""
        raise NotImplementedError

    def row_data(self, row: Any, column: Column[Any], role: int) -> Any:
        """Roles the columns do not answer (None: nothing)."""
        return None

    @classmethod
    def column_position(cls, key: str) -> int:
        return cls.COLUMNS.position(key)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self.row_total()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.row_at(index.row()) if index.isValid() else None
        column = self.COLUMNS.at(index.column())
        if row is None or column is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == SORT_ROLE:
            return column.sort_value(row)
        if role == Qt.ItemDataRole.ToolTipRole and column.tooltip is not None:
            tip = column.tooltip(row)
            if tip is not None:
                return tip
        if role == Qt.ItemDataRole.DecorationRole and column.decoration is not None:
            return column.decoration(row)
        if role == Qt.ItemDataRole.TextAlignmentRole and column.numeric:
            return RIGHT
        return self.row_data(row, column, role)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        column = self.COLUMNS.at(section)
        if (
            orientation is Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and column is not None
        ):
            return column.title
        return None
