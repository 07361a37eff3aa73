"""Conversations kept on the server: named chats and their messages.

A chat has a unique name, a model and optional sampling settings; its
messages are rows ordered by position. The shape of `Chat` is also the shape
of an exported chat file (`lmbridge chats export`), and `import_chat` takes
such a file back.

Names are data, never paths or SQL: any name that passes `validate_name` is
stored and found exactly as given.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from lmbridge.core import errors
from lmbridge.core.errors import DECODE_ERRORS
from lmbridge.store.db import Database, now_iso

MAX_NAME_LENGTH = 200
MAX_MODEL_LENGTH = 500

MessageRole = Literal["system", "user", "assistant"]


class StoredMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One message of a chat.

    `incomplete` marks an assistant reply that broke off (client gone or
    upstream failure); `error` then says why.
    """

    role: MessageRole
    content: str
    incomplete: bool = False
    error: str | None = None


class ChatSummary(msgspec.Struct):
    """A chat as listed by `GET /chats`."""

    id: int
    name: str
    model: str


class Chat(msgspec.Struct, kw_only=True):
    """A whole chat; also the JSON file format of import and export."""

    name: str
    model: str
    messages: list[StoredMessage] = msgspec.field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    created_at: str = ""
    updated_at: str = ""
    id: int = 0


class ChatFile(msgspec.Struct, kw_only=True):
    """A chat file to import: a `Chat`, whose name may come from the file name."""

    model: str
    name: str = ""
    messages: list[StoredMessage] = msgspec.field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    created_at: str = ""
    updated_at: str = ""

    def to_chat(self, fallback_name: str) -> Chat:
        return Chat(
            name=self.name or fallback_name,
            model=self.model,
            messages=self.messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )


def decode_chat_file(data: bytes, fallback_name: str) -> Chat:
    """A chat from JSON file text; InvalidRequest naming the bad field."""
    try:
        return msgspec.json.decode(data, type=ChatFile).to_chat(fallback_name)
    except msgspec.ValidationError as exc:
        raise errors.InvalidRequest(_where(str(exc))) from None
    except DECODE_ERRORS as exc:
        raise errors.InvalidRequest(f"not valid JSON: {exc}") from None


def encode_chat_file(chat: Chat) -> bytes:
    """`chat` as an indented JSON file that `decode_chat_file` reads back."""
    return msgspec.json.format(msgspec.json.encode(chat), indent=2) + b"\n"


def _where(message: str) -> str:
    head, sep, where = message.rpartition(" - at `")
    if not sep:
        return message
    return f"{where.rstrip('`').removeprefix('$').lstrip('.') or 'file'}: {head}"


def validate_name(name: str) -> str:
    """`name` if it can name a chat; InvalidRequest saying why not otherwise."""
    if not name or not name.strip():
        raise errors.InvalidRequest("name is required", param="name")
    if len(name) > MAX_NAME_LENGTH:
        raise errors.InvalidRequest(
            f"name is longer than {MAX_NAME_LENGTH} characters", param="name"
        )
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise errors.InvalidRequest(
                f"name contains the control character U+{ord(char):04X}",
                param="name",
            )
    return name


def validate_settings(
    model: str, temperature: float | None, max_tokens: int | None
) -> None:
    """Raise InvalidRequest for a model or sampling setting a chat cannot have."""
    if not model.strip():
        raise errors.InvalidRequest("model is required", param="model")
    if len(model) > MAX_MODEL_LENGTH:
        raise errors.InvalidRequest(
            f"model is longer than {MAX_MODEL_LENGTH} characters", param="model"
        )
    if temperature is not None and not 0 <= temperature <= 2:
        raise errors.InvalidRequest(
            "temperature must be between 0 and 2", param="temperature"
        )
    if max_tokens is not None and max_tokens < 1:
        raise errors.InvalidRequest(
            "max_tokens must be a positive integer", param="max_tokens"
        )


def _no_chat(name: str) -> errors.NotFound:
    return errors.NotFound(f"there is no chat named {name!r}", param="name")


_CHAT_COLUMNS = "id, name, model, temperature, max_tokens, created_at, updated_at"


def _chat_row(conn: sqlite3.Connection, name: str) -> tuple[Any, ...]:
    row = conn.execute(
        f"SELECT {_CHAT_COLUMNS} FROM chats WHERE name = ?", (name,)
    ).fetchone()
    if row is None:
        raise _no_chat(name)
    return tuple(row)


def _load(conn: sqlite3.Connection, name: str) -> Chat:
    chat_id, name, model, temperature, max_tokens, created, updated = _chat_row(
        conn, name
    )
    rows = conn.execute(
        "SELECT role, content, incomplete, error FROM chat_messages"
        " WHERE chat_id = ? ORDER BY position",
        (chat_id,),
    ).fetchall()
    return Chat(
        id=int(chat_id),
        name=str(name),
        model=str(model),
        temperature=temperature,
        max_tokens=max_tokens,
        created_at=str(created),
        updated_at=str(updated),
        messages=[
            StoredMessage(
                role=role, content=content, incomplete=bool(incomplete), error=error
            )
            for role, content, incomplete, error in rows
        ],
    )


def _insert_messages(
    conn: sqlite3.Connection, chat_id: int, messages: Sequence[StoredMessage]
) -> None:
    (last,) = conn.execute(
        "SELECT COALESCE(MAX(position), -1) FROM chat_messages WHERE chat_id = ?",
        (chat_id,),
    ).fetchone()
    now = now_iso()
    conn.executemany(
        "INSERT INTO chat_messages"
        " (chat_id, position, role, content, incomplete, error, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (chat_id, last + 1 + i, m.role, m.content, int(m.incomplete), m.error, now)
            for i, m in enumerate(messages)
        ],
    )


class ConversationStore:
    """Chats in the shared database; every method is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_chats(self) -> list[ChatSummary]:
        """Every chat, most recently updated first."""
        rows = await self.db.fetchall(
            "SELECT id, name, model FROM chats ORDER BY updated_at DESC, id DESC"
        )
        return [ChatSummary(int(i), str(n), str(m)) for i, n, m in rows]

    async def get_chat(self, name: str) -> Chat:
        """The chat called `name` with its messages; NotFound if none."""
        return await self.db.read(lambda conn: _load(conn, name))

    async def create_chat(
        self,
        name: str,
        model: str,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Chat:
        """A new empty chat; Conflict if the name is taken."""
        return await self.import_chat(
            Chat(name=name, model=model, temperature=temperature, max_tokens=max_tokens)
        )

    async def import_chat(self, chat: Chat, *, replace: bool = False) -> Chat:
        """Store `chat` with its messages under its name, as one step.

        Conflict if the name is taken, unless `replace` (which swaps the old
        chat out in the same transaction). Timestamps missing from `chat`
        are set to now.
        """
        validate_name(chat.name)
        validate_settings(chat.model, chat.temperature, chat.max_tokens)

        def work(conn: sqlite3.Connection) -> Chat:
            if replace:
                conn.execute("DELETE FROM chats WHERE name = ?", (chat.name,))
            now = now_iso()
            try:
                cur = conn.execute(
                    "INSERT INTO chats (name, model, temperature, max_tokens,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        chat.name,
                        chat.model,
                        chat.temperature,
                        chat.max_tokens,
                        chat.created_at or now,
                        chat.updated_at or chat.created_at or now,
                    ),
                )
            except sqlite3.IntegrityError:
                raise errors.Conflict(
                    f"a chat named {chat.name!r} already exists", param="name"
                ) from None
            _insert_messages(conn, cur.lastrowid or 0, chat.messages)
            return _load(conn, chat.name)

        return await self.db.transaction(work)

    async def delete_chat(self, name: str) -> None:
        """Remove the chat and its messages; NotFound if none."""

        def work(conn: sqlite3.Connection) -> None:
            if not conn.execute("DELETE FROM chats WHERE name = ?", (name,)).rowcount:
                raise _no_chat(name)

        await self.db.transaction(work)

    async def delete_message(self, name: str, index: int) -> StoredMessage:
        """Remove the message at `index` (from 0) and return it.

        NotFound if there is no such chat or no message at that index.
        """

        def work(conn: sqlite3.Connection) -> StoredMessage:
            chat_id = _chat_row(conn, name)[0]
            row = conn.execute(
                "SELECT id, role, content, incomplete, error FROM chat_messages"
                " WHERE chat_id = ? ORDER BY position LIMIT 1 OFFSET ?",
                (chat_id, index),
            ).fetchone()
            if row is None:
                (count,) = conn.execute(
                    "SELECT COUNT(*) FROM chat_messages WHERE chat_id = ?", (chat_id,)
                ).fetchone()
                raise errors.NotFound(
                    f"chat {name!r} has no message at index {index} (it has {count})",
                    param="index",
                )
            message_id, role, content, incomplete, error = row
            conn.execute("DELETE FROM chat_messages WHERE id = ?", (message_id,))
            conn.execute(
                "UPDATE chats SET updated_at = ? WHERE id = ?", (now_iso(), chat_id)
            )
            return StoredMessage(
                role=role, content=content, incomplete=bool(incomplete), error=error
            )

        if index < 0:
            raise errors.InvalidRequest("index must be 0 or more", param="index")
        return await self.db.transaction(work)

    async def append_messages(
        self, chat_id: int, messages: Sequence[StoredMessage]
    ) -> None:
        """Add `messages` at the end of chat `chat_id` in one transaction.

        The chat is named by id, so a reply never lands in a different chat
        that took the name of one deleted meanwhile. NotFound if it is gone.
        """

        def work(conn: sqlite3.Connection) -> None:
            updated = conn.execute(
                "UPDATE chats SET updated_at = ? WHERE id = ?", (now_iso(), chat_id)
            ).rowcount
            if not updated:
                raise errors.NotFound(
                    "the chat was deleted while its reply was being written"
                )
            _insert_messages(conn, chat_id, messages)

        await self.db.transaction(work)
