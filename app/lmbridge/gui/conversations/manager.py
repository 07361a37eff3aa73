"""Conversations: the chats the chat API stored, read and deleted through
the proxy's `ConversationStore` (there only while the proxy runs)."""

from __future__ import annotations

from lmbridge.core import errors
from lmbridge.gui.controller import ProxyController
from lmbridge.store.conversations import Chat, ChatSummary, ConversationStore


class ConversationsManager:
    """The Conversations page's one way to the stored chats."""

    def __init__(self, controller: ProxyController) -> None:
        self.controller = controller

    @property
    def available(self) -> bool:
        """False when LM Bridge's database could not be opened."""
        return self.controller.conversations is not None

    def store(self) -> ConversationStore:
        store = self.controller.conversations
        if store is None:
            raise errors.UpstreamUnavailable(
                "the proxy is stopped — start it on the Overview page to see the "
                "stored conversations"
            )
        return store

    async def list_chats(self) -> list[ChatSummary]:
        return await self.store().list_chats()

    async def get_chat(self, name: str) -> Chat:
        return await self.store().get_chat(name)

    async def delete_message(self, name: str, index: int) -> None:
        await self.store().delete_message(name, index)

    async def delete_chat(self, name: str) -> None:
        await self.store().delete_chat(name)
