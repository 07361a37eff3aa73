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
- A minimal OpenAI-compatible REST surface (`/v1/models`,
  `/v1/chat/completions`), kept apart at the end of the module.

Fault switches (plain attributes, flip them in a test):

- `malformed_entry`: `listDownloadedModels` also returns a model whose
  `format` the SDK does not know (the SDK raises on the whole list).
- `load_delay`: seconds a `loadModel` takes (progress is spread over it).
- `fail_loads`: model key -> reason; loading that key answers `channelError`.
- `restart(down_for)`: drop every socket, refuse connections for a moment,
  then listen again on the same port (loaded models are gone, as after a real
  LM Studio restart).

Counters: `load_requests` (model keys, one per `loadModel` channel),
`cancelled_loads`, `unload_requests`, `ws_connections`, `chat_requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

SDK_VERSION = "1.5.0"

NOT_FOUND_CODE = "generic.noModelMatchingQuery"

DEFAULT_DOWNLOADED: list[dict[str, Any]] = [
    {
        "type": "llm",
        "modelKey": "qwen/qwen3-coder-30b",
        "format": "gguf",
        "displayName": "Qwen3 Coder 30B",
        "path": "lmstudio-community/Qwen3-Coder-30B-A3B-Instruct-GGUF/"
        "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf",
        "sizeBytes": 18556686752,
        "paramsString": "30B-A3B",
        "architecture": "qwen3moe",
        "vision": False,
        "trainedForToolUse": True,
        "maxContextLength": 262144,
    },
    {
        "type": "llm",
        "modelKey": "google/gemma-3-4b",
        "format": "gguf",
        "displayName": "Gemma 3 4B",
        "path": "lmstudio-community/gemma-3-4b-it-GGUF/gemma-3-4b-it-Q4_K_M.gguf",
        "sizeBytes": 3341081472,
        "paramsString": "4B",
        "architecture": "gemma3",
        "vision": True,
        "trainedForToolUse": False,
        "maxContextLength": 131072,
    },
    {
        "type": "embedding",
        "modelKey": "text-embedding-nomic-embed-text-v1.5",
        "format": "gguf",
        "displayName": "Nomic Embed Text v1.5",
        "path": "nomic-ai/nomic-embed-text-v1.5-GGUF/nomic-embed-text-v1.5.Q4_K_M.gguf",
        "sizeBytes": 84106624,
        "paramsString": None,
        "architecture": "nomic-bert",
        "maxContextLength": 2048,
    },
]

MALFORMED_ENTRY: dict[str, Any] = {
    "type": "llm",
    "modelKey": "acme/future-format-7b",
    "format": "future-format",
    "displayName": "Future Format 7B",
    "path": "acme/future-format-7b/model.ff",
    "sizeBytes": 7000000000,
    "paramsString": "7B",
    "architecture": "acme",
    "vision": False,
    "trainedForToolUse": False,
    "maxContextLength": 32768,
}

DEFAULT_CONTEXT_LENGTH = 4096  # what LM Studio loads with when not told

_Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class FakeInstance:
    """One loaded model instance."""

    identifier: str
    info: dict[str, Any]
    context_length: int
    gpu_ratio: float | str | None = None
    ttl_ms: int | None = None
    reference: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def model_key(self) -> str:
        return str(self.info["modelKey"])

    @property
    def kind(self) -> str:
        return str(self.info["type"])

    def to_wire(self) -> dict[str, Any]:
        """The instance info frame (`LlmInstanceInfo` / embedding variant)."""
        return {
            **self.info,
            "identifier": self.identifier,
            "instanceReference": self.reference,
            "contextLength": self.context_length,
        }


class RpcFailure(Exception):
    """Raised inside a handler to answer with `rpcError` / `channelError`."""

    def __init__(self, title: str, *, code: str | None = None, cause: str = "") -> None:
        super().__init__(title)
        self.error: dict[str, Any] = {"title": title}
        if cause:
            self.error["cause"] = cause
        if code is not None:
            self.error["displayData"] = {"code": code}


def _not_found(what: str) -> RpcFailure:
    return RpcFailure(
        f"No model found that fits the query: {what}", code=NOT_FOUND_CODE
    )


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


class FakeLMStudio:
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
        # Counters.
        self.load_requests: list[str] = []
        self.load_params: list[dict[str, Any]] = []
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
        app.router.add_get("/v1/models", self._openai_models)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
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
                fields: list[dict[str, Any]] = [
                    {"key": f"{prefix}.contextLength", "value": instance.context_length}
                ]
                if instance.gpu_ratio is not None:
                    fields.append(
                        {
                            "key": f"{prefix}.llama.acceleration.offloadRatio",
                            "value": instance.gpu_ratio,
                        }
                    )
                return {"fields": fields}
            if endpoint == "unloadModel":
                identifier = parameter["identifier"]
                self.unload_requests.append(identifier)
                instance = self.loaded.get(identifier)
                if instance is None or instance.kind != namespace:
                    raise _not_found(identifier)
                del self.loaded[identifier]
                return None
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

    async def _load_model(
        self,
        namespace: str,
        params: dict[str, Any],
        send: _Send,
        cancel: asyncio.Event,
    ) -> None:
        """`loadModel`: resolved, progress..., success (or channelError)."""
        model_key = params["modelKey"]
        info = self._find_downloaded(model_key)
        if info["type"] != namespace:
            raise _not_found(model_key)
        self.load_requests.append(model_key)
        self.load_params.append(params)
        await send({"type": "resolved", "info": info})
        if not await self._progress(model_key, send, cancel, "progress"):
            return
        instance = self._new_instance(
            namespace, info, params.get("identifier"), params, params.get("ttlMs")
        )
        await send({"type": "success", "info": instance.to_wire()})

    async def _get_or_load(
        self,
        namespace: str,
        params: dict[str, Any],
        send: _Send,
        cancel: asyncio.Event,
    ) -> None:
        """`getOrLoad` (the SDK's `client.llm.model(key)`): alreadyLoaded, or load."""
        wanted = params["identifier"]
        with contextlib.suppress(RpcFailure):
            query = {"type": "query", "query": {"identifier": wanted}}
            found = self._find_loaded(query, namespace)
            await send({"type": "alreadyLoaded", "info": found.to_wire()})
            return
        info = self._find_downloaded(wanted)
        if info["type"] != namespace:
            raise _not_found(wanted)
        self.load_requests.append(wanted)
        self.load_params.append(params)
        await send({"type": "startLoading", "identifier": wanted, "info": info})
        if not await self._progress(wanted, send, cancel, "loadProgress"):
            return
        instance = self._new_instance(
            namespace, info, None, params, params.get("loadTtlMs")
        )
        await send({"type": "loadSuccess", "info": instance.to_wire()})

    async def _progress(
        self, model_key: str, send: _Send, cancel: asyncio.Event, kind: str
    ) -> bool:
        """Spread `load_delay` over progress frames; False if cancelled."""
        steps = max(1, self.load_steps)
        for step in range(1, steps + 1):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cancel.wait(), self.load_delay / steps)
            if cancel.is_set():
                self.cancelled_loads.append(model_key)
                return False
            if step < steps:
                await send({"type": kind, "progress": step / steps})
        if model_key in self.fail_loads:
            raise RpcFailure("Failed to load model", cause=self.fail_loads[model_key])
        return True

    def _new_instance(
        self,
        namespace: str,
        info: dict[str, Any],
        identifier: str | None,
        params: dict[str, Any],
        ttl_ms: int | None,
    ) -> FakeInstance:
        model_key = str(info["modelKey"])
        if identifier and identifier in self.loaded:
            raise RpcFailure(f"Identifier {identifier!r} is already in use")
        if not identifier:
            identifier, n = model_key, 2
            while identifier in self.loaded:
                identifier, n = f"{model_key}:{n}", n + 1
        config = _load_config_fields(params.get("loadConfigStack") or {})
        prefix = f"{namespace}.load"
        instance = FakeInstance(
            identifier,
            info,
            int(config.get(f"{prefix}.contextLength", DEFAULT_CONTEXT_LENGTH)),
            gpu_ratio=config.get(f"{prefix}.llama.acceleration.offloadRatio"),
            ttl_ms=ttl_ms,
        )
        self.loaded[identifier] = instance
        return instance

    # -- OpenAI-compatible REST (kept deliberately small) -------------------

    async def _openai_models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m["modelKey"], "object": "model", "owned_by": "organization_owner"}
            for m in self.downloaded
        ]
        return web.json_response({"object": "list", "data": data})

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.chat_requests.append(body)
        model = str(body.get("model", ""))
        reply = "Hello from fake LM Studio"
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": 10,
                        "completion_tokens": 5,
                        "total_tokens": 15,
                    },
                }
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n".encode()

        await response.write(chunk({"role": "assistant", "content": ""}, None))
        for piece in ("Hello", " from", " fake", " LM Studio"):
            await response.write(chunk({"content": piece}, None))
        await response.write(chunk({}, "stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _load_config_fields(stack: dict[str, Any]) -> dict[str, Any]:
    """Flatten a `loadConfigStack` into `{key: value}` (later layers lose)."""
    merged: dict[str, Any] = {}
    for layer in reversed(stack.get("layers") or []):
        for kv in (layer.get("config") or {}).get("fields") or []:
            merged[kv["key"]] = kv.get("value")
    return merged
