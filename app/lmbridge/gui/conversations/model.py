"""The stored chats as a Qt list model."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

from lmbridge.store.conversations import ChatSummary

Index = QModelIndex | QPersistentModelIndex


class ChatListModel(QAbstractListModel):
    """Stored chats, most recently updated first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.chats: list[ChatSummary] = []

    def set_chats(self, chats: list[ChatSummary]) -> None:
        self.beginResetModel()
        self.chats = chats
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.chats)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.chats):
            return None
        chat = self.chats[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{chat.name}\n{chat.model}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{chat.name} — model {chat.model}"
        if role == Qt.ItemDataRole.UserRole:
            return chat.name
        return None
