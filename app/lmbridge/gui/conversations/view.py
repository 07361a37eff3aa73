"""Conversations: the chats stored by the chat API, their messages, and
delete (a whole chat, or one message with the × beside it)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QModelIndex, Qt, QUrl
from PySide6.QtGui import QPalette, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListView,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from lmbridge.gui.controller import ProxyController
from lmbridge.gui.conversations.manager import ConversationsManager
from lmbridge.gui.conversations.model import ChatListModel
from lmbridge.gui.widgets import ConfirmBar, button, hint_label, title_label
from lmbridge.store.conversations import Chat

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
    """The Conversations page: live, it redraws on its manager's signals."""

    def __init__(self, controller: ProxyController, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.chats = ConversationsManager(controller, self)
        self.tasks = self.chats.tasks
        self.model = ChatListModel(self)
        self.list = QListView()
        self.list.setModel(self.model)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setAlternatingRowColors(True)
        self.list.setSpacing(2)
        self.viewer = QTextBrowser()
        self.viewer.setOpenLinks(False)
        self.viewer.anchorClicked.connect(self._on_link)
        self.status = hint_label()
        self.delete_button = button("Delete", "trash", "Delete the selected chat")
        self.delete_button.clicked.connect(self.confirm_delete)
        self.confirm = ConfirmBar()
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
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
        self.chats.listed.connect(self._show_list)
        self.chats.opened.connect(self._show_open)
        self._show_list()
        self._show_open()
        self.chats.refresh()

    @property
    def chat(self) -> Chat | None:
        """The open chat."""
        return self.chats.chat

    def refresh(self) -> None:
        """Read the chats again (the page is live; this is for a page shown
        after changes made by another process)."""
        self.chats.refresh()

    def showEvent(self, event: QShowEvent) -> None:
        # Another process (`lmbridge chats import`) may have written meanwhile.
        if self.chats.loaded:
            self.chats.refresh()
        super().showEvent(event)

    def _show_list(self) -> None:
        chats = self.chats.chats
        current = self.chats.chat.name if self.chats.chat else None
        self.model.set_chats(chats)
        if self.chats.chat is None:
            self.show_chat(None)
        if not self.chats.available:
            text = (
                "The stored conversations are unavailable: LM Bridge's database"
                " could not be opened (the log says why)."
            )
        elif not self.chats.loaded:
            text = "Reading the stored chats…"
        elif chats:
            text = f"{len(chats)} stored chat(s)"
        else:
            url = self.chats.store_url
            text = (
                "No stored chats yet. Chat front ends keep them here through the "
                f"store API at {url}: POST /store/chat creates a chat, PUT "
                "/store/chat adds a message and streams the reply."
            )
        self.status.setText(text)
        if current is not None:
            self.select(current)

    def select(self, name: str) -> None:
        for row, chat in enumerate(self.model.chats):
            if chat.name == name:
                index = self.model.index(row)
                if self.list.currentIndex() != index:
                    self.list.setCurrentIndex(index)
                return

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        name = current.data(Qt.ItemDataRole.UserRole) if current.isValid() else None
        if isinstance(name, str) and (
            self.chats.chat is None or self.chats.chat.name != name
        ):
            self.chats.open(name)

    def _show_open(self) -> None:
        self.show_chat(self.chats.chat)

    def show_chat(self, chat: Chat | None) -> None:
        self.delete_button.setEnabled(chat is not None)
        if chat is None:
            muted = self.palette().color(QPalette.ColorRole.PlaceholderText).name()
            hint = "Select a chat to read it." if self.chats.chats else ""
            self.viewer.setHtml(f'<p style="color:{muted}">{hint}</p>' if hint else "")
            return
        self.viewer.setHtml(chat_html(chat, self.palette()))

    def confirm_delete(self) -> None:
        chat = self.chat
        if chat is None:
            return
        self.confirm.ask(
            f"Delete chat “{chat.name}” and its {len(chat.messages)} message(s)?",
            "Delete",
            lambda: self.chats.delete_chat(chat.name),
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
            lambda: self.chats.delete_message(chat.name, index),
        )
