"""A fake LM Studio that the real `lmstudio` Python SDK talks to.

Verified with lmstudio==1.5.0 (see `SDK_VERSION`; a test fails if the
installed SDK differs, because the websocket frames below were read from that
version's source: `json_api.py`, `async_api.py`, `_ws_impl.py`).

One aiohttp server on 127.0.0.1 stands in for the whole LM Studio process:

- `GET /lmstudio-greeting` -> `{"lmstudio": true}` (the SDK's host probe).
- `ws://host/<namespace>` for every namespace the SDK opens (`llm`,
  `embedding`, `system`, `files`, `repository`). The first frame is the
  authentication packet, answered with `{"success": true}`. After that:
  `rpcCall` -> `rpcResult` / `rpcError` (`listDownloadedModels`,
  `listLoaded`, `getModelInfo`, `getLoadConfig`, `unloadModel`);
  `channelCreate` `loadModel` -> `channelSend` (`resolved`, `progress`...,
  `success`) -> `channelClose`, or `channelError`; `getOrLoad` the same with
  `alreadyLoaded` / `startLoading`, `loadProgress`..., `loadSuccess`; a
  `channelSend` of `{"type": "cancel"}` stops a load in progress.
- The `repository` namespace (search, download options, downloads):
  `fake.repository`, in `lmstudio_repository.py`.
- A minimal OpenAI-compatible REST surface (`/v1/models`,
  `/v1/chat/completions`), in `lmstudio_rest.py`.

Fault switches (plain attributes, flip them in a test):

- `malformed_entry`: `listDownloadedModels` also returns a model whose
  `format` the SDK does not know (the SDK raises on the whole list).
- `load_delay`: seconds a `loadModel` takes (progress is spread over it).
- `fail_loads`: model key -> reason; loading that key answers `channelError`.
- `context_limit`: the most context LM Studio gives a load (as when the
  asked context does not fit in memory); None: what was asked.
- `restart(down_for)`: drop every socket, refuse connections for a moment,
  then listen again on the same port (loaded models are gone, as after a real
  LM Studio restart).

Counters: `load_requests` (model keys, one per `loadModel` channel),
`load_params` (their creation parameters), `load_configs` (their load config
flattened to LM Studio's wire names, e.g. `llm.load.contextLength`),
`cancelled_loads`, `unload_requests`, `ws_connections`, `chat_requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from fakes.lmstudio_data import (
    DEFAULT_CONTEXT_LENGTH,
    DEFAULT_DOWNLOADED,
    MALFORMED_ENTRY,
    NOT_FOUND_CODE,
    RpcFailure,
)
from fakes.lmstudio_data import not_found as _not_found
from fakes.lmstudio_loading import FakeInstance, LoadingChannels
from fakes.lmstudio_repository import FakeRepository
from fakes.lmstudio_rest import add_openai_routes

__all__ = [
    "DEFAULT_CONTEXT_LENGTH",
    "DEFAULT_DOWNLOADED",
    "MALFORMED_ENTRY",
    "NOT_FOUND_CODE",
    "SDK_VERSION",
    "FakeInstance",
    "FakeLMStudio",
    "RpcFailure",
]

SDK_VERSION = "1.5.0"

_Send = Callable[[dict[str, Any]], Awaitable[None]]


class _Session:
    """One authenticated websocket (one SDK namespace)."""

    def __init__(self, namespace: str, request: web.Request) -> None:
        self.namespace = namespace
        self.ws = web.WebSocketResponse(autoping=True)
        self.transport = request.transport
        self.lock = asyncio.Lock()
        self.channels: dict[int, asyncio.Event] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, message: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        async with self.lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(message))


class FakeLMStudio(LoadingChannels):
    """An in-memory LM Studio speaking the SDK's websocket protocol."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.downloaded: list[dict[str, Any]] = copy.deepcopy(DEFAULT_DOWNLOADED)
        self.loaded: dict[str, FakeInstance] = {}
        # Switches.
        self.malformed_entry = False
        self.load_delay = 0.0
        self.load_steps = 4
        self.fail_loads: dict[str, str] = {}
        self.context_limit: int | None = None
        self.repository = FakeRepository(self.downloaded.append)
        # Counters.
        self.load_requests: list[str] = []
        self.load_params: list[dict[str, Any]] = []
        self.load_configs: list[dict[str, Any]] = []
        self.cancelled_loads: list[str] = []
        self.unload_requests: list[str] = []
        self.ws_connections = 0
        self.chat_requests: list[dict[str, Any]] = []
        self._sessions: set[_Session] = set()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def address(self) -> str:
        """`host:port`, the form LM Bridge's settings and the SDK use."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://{self.address}"

    @property
    def load_count(self) -> int:
        return len(self.load_requests)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/lmstudio-greeting", self._greeting)
        add_openai_routes(app, self)
        app.router.add_get("/{namespace:[a-zA-Z]+}", self._websocket)
        return app

    async def start(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.make_app(), shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen(port)

    async def _listen(self, port: int) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, port, reuse_address=True)
        await self._site.start()
        self.port = self._site.port

    async def drop_connections(self) -> None:
        """Cut every websocket without a close frame, as a crash would."""
        sessions = list(self._sessions)
        self._sessions.clear()
        for session in sessions:
            for task in session.tasks:
                task.cancel()
            if session.transport is not None:
                session.transport.abort()
        await asyncio.sleep(0)

    async def restart(self, down_for: float = 0.3) -> None:
        """Stop listening, drop every socket, wait, then listen on the same port."""
        assert self._site is not None
        await self._site.stop()
        await self.drop_connections()
        self.loaded.clear()
        await asyncio.sleep(down_for)
        await self._listen(self.port)

    async def stop(self) -> None:
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- state helpers -----------------------------------------------------

    def preload(
        self,
        model_key: str,
        context_length: int = DEFAULT_CONTEXT_LENGTH,
        identifier: str | None = None,
        gpu_ratio: float | None = None,
    ) -> FakeInstance:
        """Put a model in the loaded list as if loaded from LM Studio's UI."""
        info = self._find_downloaded(model_key)
        instance = FakeInstance(
            identifier or model_key, info, context_length, gpu_ratio=gpu_ratio
        )
        self.loaded[instance.identifier] = instance
        return instance

    def _find_downloaded(self, model_key: str) -> dict[str, Any]:
        for entry in self.downloaded:
            if entry["modelKey"] == model_key:
                return entry
        raise _not_found(model_key)

    def _find_loaded(self, specifier: dict[str, Any], namespace: str) -> FakeInstance:
        if specifier.get("type") == "instanceReference":
            for instance in self.loaded.values():
                if instance.reference == specifier.get("instanceReference"):
                    return instance
            raise _not_found(str(specifier.get("instanceReference")))
        query = specifier.get("query") or {}
        wanted = query.get("identifier")
        candidates = [i for i in self.loaded.values() if i.kind == namespace]
        for instance in candidates:
            if instance.identifier == wanted:
                return instance
        for instance in candidates:
            if instance.model_key == wanted:
                return instance
        raise _not_found(str(wanted))

    # -- HTTP: greeting ----------------------------------------------------

    async def _greeting(self, request: web.Request) -> web.Response:
        return web.json_response({"lmstudio": True})

    # -- websocket protocol ------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        session = _Session(namespace, request)
        ws = session.ws
        await ws.prepare(request)
        self.ws_connections += 1
        self._sessions.add(session)
        try:
            auth = await ws.receive()
            if auth.type != WSMsgType.TEXT:
                return ws
            packet = json.loads(auth.data)
            if packet.get("authVersion") != 1 or "clientIdentifier" not in packet:
                await session.send({"success": False, "error": {"title": "Bad auth"}})
                return ws
            await session.send({"success": True})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._dispatch(session, json.loads(msg.data))
        finally:
            self._sessions.discard(session)
            for task in list(session.tasks):
                task.cancel()
        return ws

    async def _dispatch(self, session: _Session, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "rpcCall":
            call_id = message["callId"]
            try:
                result = self._rpc(
                    session.namespace, message["endpoint"], message.get("parameter")
                )
            except RpcFailure as exc:
                reply = {"type": "rpcError", "callId": call_id, "error": exc.error}
            else:
                reply = {"type": "rpcResult", "callId": call_id}
                if result is not None:
                    reply["result"] = result
            await session.send(reply)
        elif kind == "channelCreate":
            channel_id = message["channelId"]
            cancel = asyncio.Event()
            session.channels[channel_id] = cancel
            task = asyncio.create_task(
                self._channel(session, message, channel_id, cancel)
            )
            session.tasks.add(task)
            task.add_done_callback(session.tasks.discard)
        elif kind == "channelSend":
            inner = message.get("message") or {}
            cancel_event = session.channels.get(message.get("channelId", -1))
            if inner.get("type") == "cancel" and cancel_event is not None:
                cancel_event.set()

    def _rpc(self, namespace: str, endpoint: str, parameter: Any) -> Any:
        if namespace == "system" and endpoint == "listDownloadedModels":
            models = copy.deepcopy(self.downloaded)
            if self.malformed_entry:
                models.insert(1, copy.deepcopy(MALFORMED_ENTRY))
            return models
        if namespace in ("llm", "embedding"):
            if endpoint == "listLoaded":
                return [
                    i.to_wire() for i in self.loaded.values() if i.kind == namespace
                ]
            if endpoint == "getModelInfo":
                try:
                    return self._find_loaded(
                        parameter["specifier"], namespace
                    ).to_wire()
                except RpcFailure:
                    if parameter.get("throwIfNotFound"):
                        raise
                    return None
            if endpoint == "getLoadConfig":
                instance = self._find_loaded(parameter["specifier"], namespace)
                prefix = f"{namespace}.load"
                fields = dict(instance.config)
                fields[f"{prefix}.contextLength"] = instance.context_length
                if instance.gpu_ratio is not None:
                    ratio_key = f"{prefix}.llama.acceleration.offloadRatio"
                    fields[ratio_key] = instance.gpu_ratio
                return {"fields": [{"key": k, "value": v} for k, v in fields.items()]}
            if endpoint == "unloadModel":
                identifier = parameter["identifier"]
                self.unload_requests.append(identifier)
                unloading = self.loaded.get(identifier)
                if unloading is None or unloading.kind != namespace:
                    raise _not_found(identifier)
                del self.loaded[identifier]
                return None
        if namespace == "repository":
            return self.repository.rpc(endpoint, parameter)
        raise RpcFailure(f"Unknown endpoint {namespace}.{endpoint}")

    async def _channel(
        self,
        session: _Session,
        message: dict[str, Any],
        channel_id: int,
        cancel: asyncio.Event,
    ) -> None:
        endpoint = message.get("endpoint")
        params = message.get("creationParameter") or {}

        async def send(contents: dict[str, Any]) -> None:
            await session.send(
                {"type": "channelSend", "channelId": channel_id, "message": contents}
            )

        try:
            if endpoint == "loadModel":
                await self._load_model(session.namespace, params, send, cancel)
            elif endpoint == "getOrLoad":
                await self._get_or_load(session.namespace, params, send, cancel)
            elif endpoint == "downloadModel" and session.namespace == "repository":
                await self.repository.download(params, send, cancel)
            else:
                raise RpcFailure(f"Unknown channel endpoint {endpoint}")
        except RpcFailure as exc:
            await session.send(
                {"type": "channelError", "channelId": channel_id, "error": exc.error}
            )
        else:
            await session.send({"type": "channelClose", "channelId": channel_id})
        finally:
            session.channels.pop(channel_id, None)
