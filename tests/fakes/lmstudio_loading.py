"""Loaded instances and the model-loading channels of the fake LM Studio.

`loadModel` (the SDK's `load_new_instance`): `resolved`, `progress`...,
`success`; `getOrLoad` (the SDK's `model()`): `alreadyLoaded`, or
`startLoading`, `loadProgress`..., `loadSuccess`. A `cancel` from the client
stops either. `FakeLMStudio` mixes `LoadingChannels` in; the state and
switches it reads are documented there.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fakes.lmstudio_data import DEFAULT_CONTEXT_LENGTH, RpcFailure, not_found

_Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class FakeInstance:
    """One loaded model instance."""

    identifier: str
    info: dict[str, Any]
    context_length: int
    gpu_ratio: float | str | None = None
    ttl_ms: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
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


class LoadingChannels:
    """The `loadModel` and `getOrLoad` channels, over the fake's state."""

    loaded: dict[str, FakeInstance]
    load_delay: float
    load_steps: int
    fail_loads: dict[str, str]
    context_limit: int | None
    load_requests: list[str]
    load_params: list[dict[str, Any]]
    load_configs: list[dict[str, Any]]
    cancelled_loads: list[str]

    def _find_downloaded(self, model_key: str) -> dict[str, Any]:
        raise NotImplementedError

    def _find_loaded(self, specifier: dict[str, Any], namespace: str) -> FakeInstance:
        raise NotImplementedError

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
            raise not_found(model_key)
        self.load_requests.append(model_key)
        self.load_params.append(params)
        self.load_configs.append(_load_config_fields(params.get("loadConfigStack")))
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
            raise not_found(wanted)
        self.load_requests.append(wanted)
        self.load_params.append(params)
        self.load_configs.append(_load_config_fields(params.get("loadConfigStack")))
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
        config = _load_config_fields(params.get("loadConfigStack"))
        prefix = f"{namespace}.load"
        context = int(config.get(f"{prefix}.contextLength", DEFAULT_CONTEXT_LENGTH))
        if self.context_limit is not None:
            context = min(context, self.context_limit)
        instance = FakeInstance(
            identifier,
            info,
            context,
            gpu_ratio=config.get(f"{prefix}.llama.acceleration.offloadRatio"),
            ttl_ms=ttl_ms,
            config=config,
        )
        self.loaded[identifier] = instance
        return instance


def _load_config_fields(stack: dict[str, Any] | None) -> dict[str, Any]:
    """Flatten a `loadConfigStack` into `{key: value}` (later layers lose)."""
    merged: dict[str, Any] = {}
    for layer in reversed((stack or {}).get("layers") or []):
        for kv in (layer.get("config") or {}).get("fields") or []:
            merged[kv["key"]] = kv.get("value")
    return merged
