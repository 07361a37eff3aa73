"""LM Studio's models as a Qt table: one row per downloaded model, with its
loaded context and a warning below the minimum."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt

from lmbridge.gui.formats import size_text, tokens_text
from lmbridge.gui.icons import WARNING_COLOR, icon
from lmbridge.gui.models.manager import ModelRow, ModelsManager
from lmbridge.gui.tablemodel import Column, Columns, ColumnsTableModel
from lmbridge.lmstudio import LoadedModel

KEY_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class ShownModel:
    """A row as the table shows it: the model, its load in progress, and
    its instances loaded with less context than the minimum."""

    row: ModelRow
    loading: float | None
    low: list[LoadedModel]
    min_context: int


def _loaded_context(shown: ShownModel) -> str:
    if shown.loading is not None:
        return f"loading {shown.loading:.0%}"
    if not shown.row.instances:
        return "not loaded"
    return ", ".join(tokens_text(m.context_length) for m in shown.row.instances)


def _model_tooltip(shown: ShownModel) -> str:
    d = shown.row.downloaded
    extra = f" · {d.params} · {d.architecture}" if d and d.params else ""
    return f"{shown.row.key}{extra}"


def _low_tooltip(shown: ShownModel) -> str | None:
    if not shown.low:
        return None
    return (
        f"Loaded with less context than the minimum "
        f"({shown.min_context:,}): long prompts (Claude Code's are "
        "~20K tokens) will not fit. Use “Fix context” to reload it."
    )


def _vision(shown: ShownModel) -> bool:
    d = shown.row.downloaded
    return d is not None and d.vision


def _tools(shown: ShownModel) -> bool:
    d = shown.row.downloaded
    return d is not None and d.trained_for_tool_use


COLUMNS: Columns[ShownModel] = Columns(
    Column("model", "Model", lambda s: s.row.name, tooltip=_model_tooltip),
    Column(
        "size",
        "Size",
        lambda s: size_text(s.row.downloaded.size_bytes) if s.row.downloaded else "—",
        numeric=True,
    ),
    Column(
        "format",
        "Format",
        lambda s: s.row.downloaded.format.upper() if s.row.downloaded else "—",
    ),
    Column(
        "max_context",
        "Max context",
        lambda s: tokens_text(s.row.max_context),
        numeric=True,
    ),
    Column(
        "loaded_context",
        "Loaded context",
        _loaded_context,
        tooltip=_low_tooltip,
        decoration=lambda s: icon("warning", WARNING_COLOR) if s.low else None,
        numeric=True,
    ),
    Column(
        "vision",
        "Vision",
        lambda s: "",
        tooltip=lambda s: "Accepts images" if _vision(s) else None,
        decoration=lambda s: icon("vision") if _vision(s) else None,
    ),
    Column(
        "tools",
        "Tools",
        lambda s: "",
        tooltip=lambda s: "Trained for tool use" if _tools(s) else None,
        decoration=lambda s: icon("tools") if _tools(s) else None,
    ),
)


class ModelTableModel(ColumnsTableModel):
    """One row per model; the loaded context carries a warning when low."""

    COLUMNS = COLUMNS

    def __init__(self, manager: ModelsManager, parent: QObject | None = None):
        super().__init__(parent)
        self.manager = manager
        self._rows: list[ModelRow] = manager.rows()
        manager.changed.connect(self._reset)
        manager.progressChanged.connect(self._on_progress)

    def _reset(self) -> None:
        self.beginResetModel()
        self._rows = self.manager.rows()
        self.endResetModel()

    def _on_progress(self, key: str, _fraction: float) -> None:
        column = self.column_position("loaded_context")
        for i, row in enumerate(self._rows):
            if row.key == key:
                self.dataChanged.emit(self.index(i, column), self.index(i, column))

    def model_row(self, index: int) -> ModelRow | None:
        """The model shown in row `index`."""
        return self._rows[index] if 0 <= index < len(self._rows) else None

    def row_at(self, row: int) -> ShownModel | None:
        model = self.model_row(row)
        if model is None:
            return None
        low = {m.identifier for m in self.manager.below_minimum()}
        return ShownModel(
            model,
            self.manager.progress.get(model.key),
            [m for m in model.instances if m.identifier in low],
            self.manager.min_context,
        )

    def row_total(self) -> int:
        return len(self._rows)

    def row_data(self, row: Any, column: Column[Any], role: int) -> Any:
        return row.row.key if role == KEY_ROLE else None
