"""Conversations: the chats stored by the chat API, their messages, and
delete (a whole chat, or one message with the × beside it)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QModelIndex, Qt, QUrl
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListView,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.conversations.manager import ConversationsManager
from lmbridge.gui.conversations.model import ChatListModel
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import ConfirmBar, button, hint_label, title_label
from lmbridge.store.conversations import Chat

LISTING = "Listing the conversations"
DELETE_LINK = "delete-message:"


def chat_html(chat: Chat, palette: QPalette) -> str:
    """The messages of `chat` as simple HTML, in the palette's colours."""
    muted = palette.color(QPalette.ColorRole.PlaceholderText).name()
    accent = palette.color(QPalette.ColorRole.Highlight).name()
    parts = [
        f"<h3>{escape(chat.name)}</h3>",
        f'<p style="color:{muted}">model {escape(chat.model)} · '
        f"{len(chat.messages)} message(s) · updated {escape(chat.updated_at)}</p>",
    ]
    if not chat.messages:
        parts.append(f'<p style="color:{muted}">No messages yet.</p>')
    for i, m in enumerate(chat.messages):
        colour = accent if m.role == "assistant" else muted
        note = ""
        if m.incomplete:
            why = escape(m.error or "")
            note = f' <span style="color:{muted}">(incomplete: {why})</span>'
        text = escape(m.content).replace("\n", "<br>")
        delete = (
            f' <a href="{DELETE_LINK}{i}" style="color:{muted};'
            f' text-decoration:none" title="Delete this message">×</a>'
        )
        parts.append(
            f'<p><b style="color:{colour}">{escape(m.role)}</b>{note}{delete}'
            f"<br>{text}</p>"
        )
    return "\n".join(parts)


class ConversationsPanel(QWidget):
    """The Conversations page."""

    def __init__(self, controller: ProxyController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.chats = ConversationsManager(controller)
        self.tasks = Tasks("conversations")
        self.model = ChatListModel(self)
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setAlternatingRowColors(True)
        self.list.setSpacing(2)
        self.viewer = QTextBrowser()
        self.viewer.setOpenLinks(False)
        self.viewer.anchorClicked.connect(self._on_link)
        self.chat: Chat | None = None
        self.status = hint_label()
        self.refresh_button = button("Refresh", "refresh")
        self.delete_button = button("Delete", "trash", "Delete the selected chat")
        self.refresh_button.clicked.connect(self.refresh)
        self.delete_button.clicked.connect(self.confirm_delete)
        self.confirm = ConfirmBar()
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.refresh_button)
        top.addWidget(self.delete_button)
        splitter = QSplitter()
        splitter.addWidget(self.list)
        splitter.addWidget(self.viewer)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(title_label("Conversations"))
        layout.addLayout(top)
        layout.addWidget(self.confirm)
        layout.addWidget(splitter, 1)
        self.list.selectionModel().currentChanged.connect(self._on_current)
        controller.phaseChanged.connect(self.refresh)
        controller.requestFinished.connect(self._on_request)
        self.refresh()

    def _on_request(self, record: object) -> None:
        if getattr(record, "path", "").startswith("/chat"):
            self.refresh()

    def refresh(self) -> None:
        if not self.chats.available:
            self.model.set_chats([])
            self.show_chat(None)
            self.status.setText(
                "The stored conversations are unavailable: LM Bridge's database"
                " could not be opened (the log says why)."
            )
            self.delete_button.setEnabled(False)
            return
        if not self.tasks.running(LISTING):
            self.tasks.start(self._refresh(), what=LISTING)

    async def _refresh(self) -> None:
        chats = await self.chats.list_chats()
        current = self.chat.name if self.chat else None
        self.model.set_chats(chats)
        self.status.setText(
            f"{len(chats)} stored chat(s)"
            if chats
            else "No stored chats. The chat API (POST /chats, /chat) keeps them here."
        )
        names = [c.name for c in chats]
        if current in names:
            self.select(current)
        else:
            self.show_chat(None)

    def select(self, name: str) -> None:
        for row, chat in enumerate(self.model.chats):
            if chat.name == name:
                self.list.setCurrentIndex(self.model.index(row))
                return

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        name = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None
        if isinstance(name, str):
            self.tasks.start(self._open(name), what=f"Opening chat {name}")

    async def _open(self, name: str) -> None:
        self.show_chat(await self.chats.get_chat(name))

    def show_chat(self, chat: Chat | None) -> None:
        self.chat = chat
        self.delete_button.setEnabled(chat is not None)
        if chat is None:
            self.viewer.setHtml("")
            return
        self.viewer.setHtml(chat_html(chat, self.palette()))

    def confirm_delete(self) -> None:
        chat = self.chat
        if chat is None:
            return
        self.confirm.ask(
            f"Delete chat “{chat.name}” and its {len(chat.messages)} message(s)?",
            "Delete",
            lambda: self.tasks.start(self._delete(chat.name), what="Deleting the chat"),
        )

    def _on_link(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith(DELETE_LINK) and text[len(DELETE_LINK) :].isdigit():
            self.confirm_delete_message(int(text[len(DELETE_LINK) :]))

    def confirm_delete_message(self, index: int) -> None:
        """Ask, then delete message `index` (from 0) of the open chat."""
        chat = self.chat
        if chat is None or not 0 <= index < len(chat.messages):
            return
        m = chat.messages[index]
        preview = m.content.strip().replace("\n", " ")[:60]
        self.confirm.ask(
            f"Delete message {index + 1} ({m.role}: “{preview}”) from “{chat.name}”?",
            "Delete message",
            lambda: self.tasks.start(
                self._delete_message(chat.name, index), what="Deleting the message"
            ),
        )

    async def _delete_message(self, name: str, index: int) -> None:
        await self.chats.delete_message(name, index)
        message.info(f"Deleted message {index + 1} of chat {name}")
        await self._open(name)

    async def _delete(self, name: str) -> None:
        await self.chats.delete_chat(name)
        message.info(f"Deleted chat {name}")
        self.show_chat(None)
        await self._refresh()
