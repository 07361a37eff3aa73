"""Conversations: the stored chats as the page shows them, kept current.

`ConversationsManager` owns the list of chats and the open chat, read from
the app's `ConversationStore` (there whenever LM Bridge's database could be
opened, proxy running or not). The store announces every committed change
(`CHATS_CHANGED`, whoever wrote: the `/store` API of another client, this
page, the CLI in this process); the controller turns it into
`chatsChanged` and the manager re-reads the list, and the open chat when it
was the one that changed, at most every `RELOAD_MS`. Views redraw on
`listed` and `opened`; they never read the store.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from lmbridge.core import errors
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.tasks import Tasks
from lmbridge.store.conversations import Chat, ChatSummary, ConversationStore

LISTING = "Listing the conversations"
RELOAD_MS = 150


class ConversationsManager(QObject):
    """The stored chats and the open one; delete a chat or one message."""

    listed = Signal()  # `chats` (and `loaded`) changed
    opened = Signal()  # `chat` changed: another chat, new messages, or None

    def __init__(
        self, controller: ProxyController, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.tasks = Tasks("conversations")
        self.chats: list[ChatSummary] = []
        self.chat: Chat | None = None
        self.loaded = False  # the list was read at least once
        self._open_name: str | None = None
        self._changed: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RELOAD_MS)
        self._timer.timeout.connect(self._reload)
        controller.chatsChanged.connect(self._on_changed)
        controller.phaseChanged.connect(self.refresh)

    @property
    def available(self) -> bool:
        """False when LM Bridge's database could not be opened."""
        return self.controller.conversations is not None

    @property
    def store_url(self) -> str:
        """The base URL chat front ends use for the store API."""
        return self.controller.url + "/store"

    def _store(self) -> ConversationStore:
        store = self.controller.conversations
        if store is None:
            raise errors.UpstreamUnavailable(
                "LM Bridge's database could not be opened (the log says why)"
            )
        return store

    # -- reading ----------------------------------------------------------------

    def refresh(self) -> None:
        """Read the list again (and the open chat): now, latest wins."""
        if self._open_name is not None:
            self._changed.add(self._open_name)
        self._reload()

    def _on_changed(self, name: str) -> None:
        self._changed.add(name)
        if not self._timer.isActive():
            self._timer.start()

    def _reload(self) -> None:
        if not self.available:
            self.chats, self.loaded = [], False
            self._set_chat(None)
            self.listed.emit()
            return
        changed, self._changed = self._changed, set()
        self.tasks.cancel(LISTING)
        self.tasks.start(self._read(changed), what=LISTING)

    async def _read(self, changed: set[str]) -> None:
        store = self._store()
        self.chats = await store.list_chats()
        self.loaded = True
        self.listed.emit()
        name = self._open_name
        if name is None or name not in changed:
            return
        if name in {c.name for c in self.chats}:
            self._set_chat(await store.get_chat(name))
        else:
            self._set_chat(None)

    def open(self, name: str | None) -> None:
        """Open chat `name` (None: close it); `opened` tells when it is read."""
        self._open_name = name
        if name is None:
            self._set_chat(None)
            return
        self.tasks.start(self._open(name), what=f"Opening chat {name}")

    async def _open(self, name: str) -> None:
        chat = await self._store().get_chat(name)
        if self._open_name == name:
            self._set_chat(chat)

    def _set_chat(self, chat: Chat | None) -> None:
        self.chat = chat
        if chat is None:
            self._open_name = None
        self.opened.emit()

    # -- changing ---------------------------------------------------------------

    def delete_chat(self, name: str) -> None:
        self.tasks.start(self._delete_chat(name), what="Deleting the chat")

    async def _delete_chat(self, name: str) -> None:
        await self._store().delete_chat(name)
        message.info(f"Deleted chat {name}")

    def delete_message(self, name: str, index: int) -> None:
        """Delete message `index` (from 0) of chat `name`."""
        self.tasks.start(self._delete_message(name, index), what="Deleting the message")

    async def _delete_message(self, name: str, index: int) -> None:
        await self._store().delete_message(name, index)
        message.info(f"Deleted message {index + 1} of chat {name}")
