"""Searching LM Studio's model catalog and downloading, with progress and cancel.

`ModelDownloads` is what `LMStudioService.downloads` is: search (LM Studio
searches its catalog and Hugging Face), the download options of a result with
LM Studio's verdict on whether each fits this machine, and downloads. Each
download is one task per option key, owned here (a second caller waits for the
same download); its progress goes out on the bus as `TOPIC_DOWNLOAD_PROGRESS`
(`DownloadProgress`), ending with one DONE, CANCELLED or FAILED step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import lmstudio
import msgspec

from lmbridge.core.errors import InvalidRequest, LMBridgeError, NotFound
from lmbridge.core.events import EventBus

from . import sdk_repository
from .errors import Operation, download_cancelled
from .flights import Flights
from .sdk_repository import MAX_SEARCH_LIMIT
from .structs import (
    TOPIC_DOWNLOAD_PROGRESS,
    CatalogModel,
    DownloadedModels,
    DownloadOption,
    DownloadProgress,
    DownloadResult,
    DownloadState,
    FitEstimate,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class Caller(Protocol):
    """`ModelCatalog._call`: run one SDK call, converting its errors."""

    def __call__(
        self,
        fn: Callable[[lmstudio.AsyncClient], Awaitable[T]],
        *,
        model: str | None = ...,
        during: Operation = ...,
    ) -> Awaitable[T]: ...


class ModelDownloads:
    """Search, download options, downloads with progress, and cancel."""

    def __init__(
        self,
        bus: EventBus,
        call: Caller,
        list_downloaded: Callable[[], Awaitable[DownloadedModels]],
    ) -> None:
        self._bus = bus
        self._call = call
        self._list_downloaded = list_downloaded
        self._flights: Flights[DownloadResult] = Flights("download", download_cancelled)
        self._progress: dict[str, DownloadProgress] = {}

    @property
    def active(self) -> tuple[DownloadProgress, ...]:
        """The latest progress of every download under way. No I/O."""
        return tuple(self._progress.values())

    async def aclose(self) -> None:
        """Cancel every download under way (in LM Studio too)."""
        await self._flights.cancel_all()

    async def search(self, query: str, limit: int = 10) -> list[CatalogModel]:
        """Models LM Studio finds for `query` (at most `limit`, 1 ... 25)."""
        if not query.strip():
            raise InvalidRequest("Name something to search for", param="query")
        limit = max(1, min(limit, MAX_SEARCH_LIMIT))
        return await self._call(
            lambda c: sdk_repository.search(c, query.strip(), limit),
            model=query,
            during=Operation.SEARCH,
        )

    async def download_options(self, model: CatalogModel) -> list[DownloadOption]:
        """The files offered for `model`, each with LM Studio's fit verdict."""
        return await self._call(
            lambda c: sdk_repository.download_options(c, model),
            model=model.name,
            during=Operation.SEARCH,
        )

    async def resolve(self, key: str) -> DownloadOption:
        """The download option a key names: `<model>` or `<model>@<quantization>`.

        A bare model name picks LM Studio's recommended option (else the
        first that fits, else the first). Raises NotFound naming what is known.
        """
        name, _, quant = key.partition("@")
        found = await self.search(name)
        model = next((m for m in found if m.name.lower() == name.lower()), None)
        if model is None:
            known = ", ".join(m.name for m in found[:5]) or "nothing"
            raise NotFound(
                f"LM Studio's catalog has no model {name!r} (found: {known})",
                param="model",
            )
        options = await self.download_options(model)
        if quant:
            chosen = next(
                (
                    o
                    for o in options
                    if quant.lower() in ((o.quantization or "").lower(), o.name.lower())
                ),
                None,
            )
        else:
            chosen = pick_download(options)
        if chosen is None:
            offered = ", ".join(o.key for o in options) or "no files"
            raise NotFound(
                f"LM Studio offers no download {key!r} (offered: {offered})",
                param="model",
            )
        return chosen

    async def download(self, option: DownloadOption) -> DownloadResult:
        """Download `option`; progress goes out on `TOPIC_DOWNLOAD_PROGRESS`.

        Returns the model key to load it by. A download of this key already
        under way is joined, not started again. Raises UpstreamUnavailable
        when cancelled, UpstreamError when LM Studio cannot download it.
        """
        return await self._flights.join(option.key, lambda: self._download(option))

    def cancel_download(self, key: str) -> bool:
        """Cancel the download of `key` (in LM Studio too); False if none runs."""
        return self._flights.cancel(key)

    # -- internals ---------------------------------------------------------

    async def _download(self, option: DownloadOption) -> DownloadResult:
        key = option.key

        def progress(done: int, total: int, speed: float) -> None:
            self._publish(
                key,
                DownloadState.DOWNLOADING,
                fraction=done / total if total > 0 else 0.0,
                downloaded_bytes=done,
                total_bytes=total,
                speed_bytes_per_second=speed,
            )

        def finalize() -> None:
            self._publish(key, DownloadState.FINALIZING, fraction=1.0)

        total = option.size_bytes
        self._publish(key, DownloadState.DOWNLOADING, total_bytes=total)
        try:
            model_key = await self._call(
                lambda c: sdk_repository.download(
                    c,
                    option.download_identifier,
                    on_progress=progress,
                    on_finalize=finalize,
                ),
                model=key,
                during=Operation.DOWNLOAD,
            )
        except asyncio.CancelledError:
            self._publish(key, DownloadState.CANCELLED)
            self._progress.pop(key, None)
            raise
        except LMBridgeError as exc:
            self._publish(key, DownloadState.FAILED, error=exc.message)
            self._progress.pop(key, None)
            raise
        model = None
        try:
            listed = await self._list_downloaded()
            model = next((m for m in listed.models if m.key == model_key), None)
        except LMBridgeError as exc:
            log.info("could not list the downloaded models: %s", exc)
        self._publish(key, DownloadState.DONE, fraction=1.0, model_key=model_key)
        self._progress.pop(key, None)
        log.info("downloaded %s as %s", key, model_key)
        return DownloadResult(key=key, model_key=model_key, model=model)

    def _publish(
        self,
        key: str,
        state: DownloadState,
        *,
        fraction: float | None = None,
        downloaded_bytes: int | None = None,
        total_bytes: int | None = None,
        speed_bytes_per_second: float = 0.0,
        model_key: str | None = None,
        error: str | None = None,
    ) -> None:
        was = self._progress.get(key) or DownloadProgress(key=key, state=state)
        step = msgspec.structs.replace(
            was,
            state=state,
            fraction=was.fraction if fraction is None else fraction,
            downloaded_bytes=(
                was.downloaded_bytes if downloaded_bytes is None else downloaded_bytes
            ),
            total_bytes=was.total_bytes if total_bytes is None else total_bytes,
            speed_bytes_per_second=speed_bytes_per_second,
            model_key=model_key,
            error=error,
        )
        if state is DownloadState.DONE and step.total_bytes:
            step = msgspec.structs.replace(step, downloaded_bytes=step.total_bytes)
        self._progress[key] = step
        self._bus.publish(TOPIC_DOWNLOAD_PROGRESS, step)


def pick_download(options: list[DownloadOption]) -> DownloadOption | None:
    """The option to download when none is named.

    LM Studio's recommendation, else the first that fits this machine, else
    the first; None when there are no options.
    """
    for option in options:
        if option.recommended:
            return option
    fits = [o for o in options if o.fit is not FitEstimate.WILL_NOT_FIT]
    candidates = fits or options
    return candidates[0] if candidates else None
