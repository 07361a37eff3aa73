"""The conversation store API, mounted under `/store`.

For chat front ends that keep their history on the server: give them
`http://127.0.0.1:PORT/store` as their base URL. Routes (relative to it):

    GET    /chats          the chats: id, name, model
    GET    /chat?name=N    one chat with its messages
    POST   /chat           create an empty chat
    PUT    /chat           append a user message; stream the reply as SSE
    DELETE /chat?name=N    delete a chat
    DELETE /chat/message   delete one message by index

Reply policy: the user message and the assistant's reply are committed
together, in one transaction, when the reply completes — and before the
client is sent `data: [DONE]`, so a client that saw [DONE] finds the reply
stored. If the reply breaks off after it began (the client disconnects, the
upstream fails mid-stream, or LM Bridge is stopped), the user message is
kept and the partial reply is stored marked `"incomplete": true` with an
`"error"` saying why. A
request that fails before the reply begins (unknown chat, upstream down)
changes nothing. If the process dies mid-reply, nothing of that exchange is
stored. PUTs to one chat are served one at a time, in arrival order. Replies
go through the one pipeline (routing with fallback, LM Studio preparation,
the request record); `StoreExchange` stores them.

A database that cannot be used (locked by another program, damaged,
read-only, on a full disk) answers 503 in the store's envelope within 2 s,
with a message naming the file and the fix (`store/dbstate.py`); reads
still work while another program holds the write lock. A PUT checks that
the reply could be stored before it asks the model; if storing it fails
anyway, the stream ends with an error event saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator

from aiohttp import web

from lmbridge.core import errors, ir
from lmbridge.protocols import jsonutil
from lmbridge.protocols.envelope import Envelope
from lmbridge.protocols.store_api import (
    STORE,
    DeleteMessageBody,
    NameBody,
    parse_create,
    parse_put,
)
from lmbridge.server.exchange import CLIENT_GONE, Exchange
from lmbridge.server.keys import PIPELINE, SERVICES
from lmbridge.server.simple import json_body, query_param
from lmbridge.store.conversations import (
    Chat,
    ChatSummary,
    ConversationStore,
    StoredMessage,
    validate_name,
    validate_settings,
)

log = logging.getLogger(__name__)

BASE_PATH = "/store"
STOPPED = "LM Bridge stopped mid-reply"


class ChatsAnswer(Envelope, kw_only=True):
    chats: list[ChatSummary]


class ChatAnswer(Envelope, kw_only=True):
    chat: Chat


class RemovedAnswer(Envelope, kw_only=True):
    removed_message: StoredMessage


class ChatLocks:
    """One lock per chat name, alive only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            yield


class StoreService:
    """The conversation store and the per-chat locks the routes share."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.locks = ChatLocks()
        # Set when the server begins to stop: replies cut short then say so.
        self.stopping = False


STORE_API = web.AppKey("store_api", StoreService)


def setup(app: web.Application) -> None:
    """Add the store routes (the database is the app's, see server/services)."""
    service = app[STORE_API] = StoreService(app[SERVICES].conversations)

    async def stopping(app: web.Application) -> None:
        service.stopping = True

    app.on_shutdown.append(stopping)
    add = app.router
    add.add_get(f"{BASE_PATH}/chats", list_chats)
    add.add_get(f"{BASE_PATH}/chat", get_chat)
    add.add_post(f"{BASE_PATH}/chat", create_chat)
    add.add_put(f"{BASE_PATH}/chat", put_chat)
    add.add_delete(f"{BASE_PATH}/chat", delete_chat)
    add.add_delete(f"{BASE_PATH}/chat/message", delete_message)


def _service(request: web.Request) -> StoreService:
    return request.app[STORE_API]


# --------------------------------------------------------------- routes


async def list_chats(request: web.Request) -> web.Response:
    """Every stored chat (id, name, model), most recently updated first."""
    chats = await _service(request).store.list_chats()
    return json_body(ChatsAnswer(status="success", chats=chats))


async def get_chat(request: web.Request) -> web.Response:
    """One chat (?name=N) with its model, settings, messages and timestamps."""
    name = validate_name(query_param(request, "name"))
    chat = await _service(request).store.get_chat(name)
    return json_body(ChatAnswer(status="success", chat=chat))


async def create_chat(request: web.Request) -> web.Response:
    """Create an empty chat {name, model, temperature?, max_tokens?}."""
    body = parse_create(await request.read())
    validate_name(body.name)
    validate_settings(body.model, body.temperature, body.max_tokens)
    chat = await _service(request).store.create_chat(
        body.name, body.model, body.temperature, body.max_tokens
    )
    message = f"chat {chat.name!r} created"
    return json_body(ChatAnswer(status="success", message=message, chat=chat), 201)


async def delete_chat(request: web.Request) -> web.Response:
    """Delete a chat (?name=N, or {name} in the body) and its messages."""
    if "name" in request.query or not request.can_read_body:
        name = query_param(request, "name")
    else:
        name = jsonutil.decode_as(await request.read(), NameBody).name
    validate_name(name)
    await _service(request).store.delete_chat(name)
    return json_body(Envelope(status="success", message=f"chat {name!r} deleted"))


async def delete_message(request: web.Request) -> web.Response:
    """Delete one message of a chat {name, index}; answers the removed one."""
    body = jsonutil.decode_as(await request.read(), DeleteMessageBody)
    validate_name(body.name)
    removed = await _service(request).store.delete_message(body.name, body.index)
    return json_body(RemovedAnswer(status="success", removed_message=removed))


async def put_chat(request: web.Request) -> web.StreamResponse:
    """Append a user message {name, message} and stream the reply as SSE."""
    body = parse_put(await request.read())
    validate_name(body.name)
    service = _service(request)
    user = StoredMessage(role="user", content=body.message.content)
    async with service.locks.hold(body.name):
        chat = await service.store.get_chat(body.name)
        # No model call whose reply could not be kept.
        await service.store.db.check_writable()
        exchange = StoreExchange(service, chat, user)
        return await request.app[PIPELINE].serve_parsed(
            request, STORE, chat_request(chat, user), exchange=exchange
        )


def chat_request(chat: Chat, user: StoredMessage) -> ir.Request:
    """The model request continuing `chat` with `user`.

    Messages with no text (a reply that broke off before its first token)
    are left out; partial replies are kept, as the user saw them.
    """
    system: list[ir.Text] = []
    messages: list[ir.Message] = []
    for m in [*chat.messages, user]:
        if not m.content:
            continue
        if m.role == "system":
            system.append(ir.Text(m.content))
        else:
            messages.append(ir.Message(ir.Role(m.role), (ir.Text(m.content),)))
    return ir.Request(
        model=chat.model,
        messages=tuple(messages),
        system=tuple(system),
        temperature=chat.temperature,
        max_tokens=chat.max_tokens,
        stream=True,
    )


class StoreExchange(Exchange):
    """Commits the user message with the reply, complete or not."""

    def __init__(self, service: StoreService, chat: Chat, user: StoredMessage):
        self.service = service
        self.chat = chat
        self.user = user

    async def finished(
        self, req: ir.Request, answer: ir.Response, failure: str | None
    ) -> None:
        if failure == CLIENT_GONE and self.service.stopping:
            failure = STOPPED
        text = "".join(p.text for p in answer.parts if isinstance(p, ir.Text))
        reply = StoredMessage(
            role="assistant",
            content=text,
            incomplete=failure is not None,
            error=failure,
        )
        try:
            await self.service.store.append_messages(self.chat.id, [self.user, reply])
        except errors.LMBridgeError as err:
            if failure is not None:
                log.warning(
                    "chat %r: partial reply not stored: %s", self.chat.name, err
                )
                return
            raise
