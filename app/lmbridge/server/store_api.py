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
stored. PUTs to one chat are served one at a time, in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, AsyncIterator

import msgspec
from aiohttp import web

from lmbridge import config
from lmbridge.core import errors, ir
from lmbridge.protocols.openai_chat.encode import STOP_REASONS
from lmbridge.server.chat_common import (
    Envelope,
    ModelCall,
    enveloped,
    json_body,
    query_param,
    read_body,
)
from lmbridge.server.state import STATE
from lmbridge.store.conversations import (
    Chat,
    ChatSummary,
    ConversationStore,
    StoredMessage,
    validate_name,
    validate_settings,
)
from lmbridge.store.db import Database

log = logging.getLogger(__name__)

BASE_PATH = "/store"
PROTOCOL = "store-api"
CLIENT_GONE = "the client went away"
STOPPED = "LM Bridge stopped mid-reply"

# --------------------------------------------------------------- wire shapes


class CreateChatBody(msgspec.Struct, kw_only=True):
    name: str
    model: str
    temperature: float | None = None
    max_tokens: int | None = None


class IncomingMessage(msgspec.Struct):
    role: str
    content: str


class PutChatBody(msgspec.Struct):
    name: str
    message: IncomingMessage


class DeleteMessageBody(msgspec.Struct):
    name: str
    index: int


class NameBody(msgspec.Struct):
    name: str


class ChatsAnswer(Envelope, kw_only=True):
    chats: list[ChatSummary]


class ChatAnswer(Envelope, kw_only=True):
    chat: Chat


class RemovedAnswer(Envelope, kw_only=True):
    removed_message: StoredMessage


class _Delta(msgspec.Struct, omit_defaults=True):
    content: str | None = None
    reasoning_content: str | None = None


class _Choice(msgspec.Struct):
    index: int
    delta: _Delta
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    """One SSE event of a reply, in Chat Completions chunk shape."""

    id: str
    object: str
    created: int
    model: str
    choices: list[_Choice]


# --------------------------------------------------------------- the service


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
    """Open the shared database with the app (as `state.db`); add the routes."""
    state = app[STATE]
    db = Database.in_dir(config.data_dir())
    state.db = db
    service = app[STORE_API] = StoreService(ConversationStore(db))

    async def database(app: web.Application) -> AsyncIterator[None]:
        # A database that cannot open fails the chat APIs (each answer says
        # why), not the whole proxy.
        try:
            await db.open()
        except errors.LMBridgeError as err:
            log.error("conversation store unavailable: %s", err.message)
        yield
        await db.close()

    async def stopping(app: web.Application) -> None:
        service.stopping = True

    app.cleanup_ctx.append(database)
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


@enveloped
async def list_chats(request: web.Request) -> web.Response:
    """Every stored chat (id, name, model), most recently updated first."""
    chats = await _service(request).store.list_chats()
    return json_body(ChatsAnswer(status="success", chats=chats))


@enveloped
async def get_chat(request: web.Request) -> web.Response:
    """One chat (?name=N) with its model, settings, messages and timestamps."""
    name = validate_name(query_param(request, "name"))
    chat = await _service(request).store.get_chat(name)
    return json_body(ChatAnswer(status="success", chat=chat))


@enveloped
async def create_chat(request: web.Request) -> web.Response:
    """Create an empty chat {name, model, temperature?, max_tokens?}."""
    body = await read_body(request, CreateChatBody)
    validate_name(body.name)
    validate_settings(body.model, body.temperature, body.max_tokens)
    chat = await _service(request).store.create_chat(
        body.name, body.model, body.temperature, body.max_tokens
    )
    message = f"chat {chat.name!r} created"
    return json_body(ChatAnswer(status="success", message=message, chat=chat), 201)


@enveloped
async def delete_chat(request: web.Request) -> web.Response:
    """Delete a chat (?name=N, or {name} in the body) and its messages."""
    if "name" in request.query or not request.can_read_body:
        name = query_param(request, "name")
    else:
        name = (await read_body(request, NameBody)).name
    validate_name(name)
    await _service(request).store.delete_chat(name)
    return json_body(Envelope(status="success", message=f"chat {name!r} deleted"))


@enveloped
async def delete_message(request: web.Request) -> web.Response:
    """Delete one message of a chat {name, index}; answers the removed one."""
    body = await read_body(request, DeleteMessageBody)
    validate_name(body.name)
    removed = await _service(request).store.delete_message(body.name, body.index)
    return json_body(RemovedAnswer(status="success", removed_message=removed))


@enveloped
async def put_chat(request: web.Request) -> web.StreamResponse:
    """Append a user message {name, message} and stream the reply as SSE."""
    body = await read_body(request, PutChatBody)
    validate_name(body.name)
    if body.message.role != "user":
        raise errors.InvalidRequest(
            f"message.role must be 'user', not {body.message.role!r}",
            param="message.role",
        )
    if not body.message.content.strip():
        raise errors.InvalidRequest("message.content is empty", param="message.content")
    service = _service(request)
    user = StoredMessage(role="user", content=body.message.content)
    async with service.locks.hold(body.name):
        chat = await service.store.get_chat(body.name)
        return await _Reply(request, service, chat, user).run()


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


class _Reply:
    """Streams one reply to the client and stores the exchange."""

    def __init__(
        self,
        request: web.Request,
        service: StoreService,
        chat: Chat,
        user: StoredMessage,
    ) -> None:
        self.request = request
        self.service = service
        self.chat = chat
        self.user = user
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.text: list[str] = []

    async def run(self) -> web.StreamResponse:
        state = self.request.app[STATE]
        async with ModelCall(state, self.request, PROTOCOL) as call:
            resolved = call.resolve(self.chat.model)
            # Failures up to here are plain error answers and store nothing.
            stream = await call.open(chat_request(self.chat, self.user), resolved)
            out = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            try:
                await out.prepare(self.request)
                failure, finish = await self._relay(call, stream, out)
            except asyncio.CancelledError:
                # The client's connection dropped, or the server is stopping.
                stopping = self.service.stopping
                await self._save_interrupted(STOPPED if stopping else CLIENT_GONE)
                raise
            except ConnectionResetError:
                call.record.client_gone = True
                call.record.error = CLIENT_GONE
                await self._save_interrupted(CLIENT_GONE)
                return out
            try:
                await self._save(failure)
            except errors.LMBridgeError as err:
                failure = failure or err.message
            try:
                await self._finish(call, out, failure, finish)
            except ConnectionResetError:
                call.record.client_gone = True
            return out

    async def _finish(
        self,
        call: ModelCall,
        out: web.StreamResponse,
        failure: str | None,
        finish: ir.Finish | None,
    ) -> None:
        """The last event (finish reason or error), then [DONE]."""
        if failure is not None:
            call.record.error = failure
            await self._send(call, out, Envelope(status="error", message=failure))
        else:
            reason = STOP_REASONS[finish.stop_reason] if finish else "stop"
            await self._send(call, out, self._chunk(_Delta(), reason))
        await out.write(call.sent(b"data: [DONE]\n\n"))
        await out.write_eof()

    async def _relay(
        self,
        call: ModelCall,
        stream: AsyncGenerator[ir.Event, None],
        out: web.StreamResponse,
    ) -> tuple[str | None, ir.Finish | None]:
        """Send the reply's deltas; the failure that ended it, if any."""
        finish: ir.Finish | None = None
        async with contextlib.aclosing(stream):
            async for event in stream:
                call.observe(event)
                if isinstance(event, ir.TextDelta):
                    self.text.append(event.text)
                    await self._send(call, out, self._chunk(_Delta(event.text)))
                elif isinstance(event, ir.ThinkingDelta):
                    delta = _Delta(reasoning_content=event.text)
                    await self._send(call, out, self._chunk(delta))
                elif isinstance(event, ir.Finish):
                    finish = event
                elif isinstance(event, ir.StreamError):
                    return event.message, finish
        if finish is None:
            return "the upstream ended its answer early", None
        return None, finish

    def _chunk(self, delta: _Delta, finish_reason: str | None = None) -> _Chunk:
        return _Chunk(
            id=self.id,
            object="chat.completion.chunk",
            created=self.created,
            model=self.chat.model,
            choices=[_Choice(0, delta, finish_reason)],
        )

    async def _send(
        self, call: ModelCall, out: web.StreamResponse, payload: msgspec.Struct
    ) -> None:
        data = b"data: " + msgspec.json.encode(payload) + b"\n\n"
        await out.write(call.sent(data))

    async def _save_interrupted(self, reason: str) -> None:
        try:
            await self._save(reason)
        except errors.LMBridgeError as err:
            log.warning("chat %r: partial reply not stored: %s", self.chat.name, err)

    async def _save(self, failure: str | None) -> None:
        """Commit the user message with the reply, complete or not."""
        reply = StoredMessage(
            role="assistant",
            content="".join(self.text),
            incomplete=failure is not None,
            error=failure,
        )
        await self.service.store.append_messages(self.chat.id, [self.user, reply])
