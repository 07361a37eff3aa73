"""The fake LM Studio's `repository` namespace: search, download options, downloads.

Frames as lmstudio==1.5.0 speaks them (`async_api._AsyncSessionRepository`,
`json_api.ModelDownloadEndpoint`):

- rpc `searchModels` `{"opts": {"searchTerm"?, "limit"?}}` ->
  `{"results": [{"name", "identifier": {"type", "identifier"}, ...}]}`;
- rpc `getModelDownloadOptions` `{"modelSearchResultIdentifier": {...}}` ->
  `{"results": [{"name", "sizeBytes", "fitEstimation", ...}]}`;
- channel `downloadModel` `{"downloadIdentifier"}` -> `downloadProgress`...,
  `startFinalizing`, `success` `{"defaultIdentifier"}`, then `channelClose`;
  a `{"type": "cancel"}` from the client stops it (then `channelClose`).

Switches: `download_delay` (seconds, spread over `download_steps` progress
frames), `fail_downloads` (download identifier -> reason: `channelError`),
`search_failure` (a reason: every search answers `rpcError`, as when LM Studio
is offline), `odd_options` (options also hold an unknown `fitEstimation` and
an entry the SDK cannot parse). Counters: `search_requests` (the `opts`),
`download_requests` and `cancelled_downloads` (download identifiers).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Awaitable, Callable
from typing import Any

from fakes.lmstudio_data import DEFAULT_CATALOG, ODD_OPTIONS, RpcFailure

Send = Callable[[dict[str, Any]], Awaitable[None]]


class FakeRepository:
    """LM Studio's model catalog, and downloads that land on the fake's disk."""

    def __init__(self, add_downloaded: Callable[[dict[str, Any]], None]) -> None:
        self.catalog: list[dict[str, Any]] = copy.deepcopy(DEFAULT_CATALOG)
        self._add_downloaded = add_downloaded
        # Switches.
        self.download_delay = 0.0
        self.download_steps = 4
        self.fail_downloads: dict[str, str] = {}
        self.search_failure: str | None = None
        self.odd_options = False
        # Counters.
        self.search_requests: list[dict[str, Any]] = []
        self.download_requests: list[str] = []
        self.cancelled_downloads: list[str] = []

    def rpc(self, endpoint: str, parameter: Any) -> Any:
        """Answer one `repository` rpc; raises RpcFailure for unknown ones."""
        if endpoint == "searchModels":
            opts = (parameter or {}).get("opts") or {}
            self.search_requests.append(opts)
            if self.search_failure:
                raise RpcFailure("Failed to search models", cause=self.search_failure)
            term = str(opts.get("searchTerm") or "").lower()
            found = [
                {k: v for k, v in entry.items() if k not in ("options", "model")}
                for entry in self.catalog
                if all(word in entry["name"].lower() for word in term.split())
            ]
            return {"results": found[: opts.get("limit") or 25]}
        if endpoint == "getModelDownloadOptions":
            wanted = (parameter or {}).get("modelSearchResultIdentifier")
            entry = next((e for e in self.catalog if e["identifier"] == wanted), None)
            if entry is None:
                raise RpcFailure(f"No search result {wanted}")
            options = copy.deepcopy(entry["options"])
            if self.odd_options:
                options += copy.deepcopy(ODD_OPTIONS)
            return {"results": options}
        raise RpcFailure(f"Unknown endpoint repository.{endpoint}")

    async def download(
        self, params: dict[str, Any], send: Send, cancel: asyncio.Event
    ) -> None:
        """The `downloadModel` channel: progress..., finalizing, success."""
        identifier = str(params.get("downloadIdentifier"))
        entry, option = self._find_option(identifier)
        self.download_requests.append(identifier)
        total = int(option["sizeBytes"])
        steps = max(1, self.download_steps)
        delay = self.download_delay / steps
        speed = total / self.download_delay if self.download_delay else float(total)
        for step in range(1, steps + 1):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cancel.wait(), delay)
            if cancel.is_set():
                self.cancelled_downloads.append(identifier)
                return
            if identifier in self.fail_downloads and step > steps // 2:
                raise RpcFailure(
                    "Failed to download model", cause=self.fail_downloads[identifier]
                )
            update = {
                "downloadedBytes": total * step // steps,
                "totalBytes": total,
                "speedBytesPerSecond": speed,
            }
            await send({"type": "downloadProgress", "update": update})
        await send({"type": "startFinalizing"})
        model = copy.deepcopy(entry["model"])
        self._add_downloaded(model)
        await send({"type": "success", "defaultIdentifier": model["modelKey"]})

    def _find_option(self, identifier: str) -> tuple[dict[str, Any], dict[str, Any]]:
        for entry in self.catalog:
            for option in entry["options"]:
                if option["downloadIdentifier"] == identifier:
                    return entry, option
        raise RpcFailure(f"No download {identifier!r}")
