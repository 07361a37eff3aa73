"""Downloading models: search LM Studio's catalog, pick a file, watch it come.

`DownloadsManager` calls `LMStudioService.downloads` (search, download
options with LM Studio's verdict on whether each fits this machine,
download, cancel) and keeps what the Models page shows: the last results,
the options of the chosen result, and the downloads under way with their
progress and speed (from the bus, through the controller). A finished
download refreshes the model list.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import QObject, Signal

from lmbridge.core.errors import LMBridgeError
from lmbridge.gui import message
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.formats import size_text
from lmbridge.gui.models.manager import ModelsManager
from lmbridge.gui.tasks import Tasks
from lmbridge.lmstudio import (
    CatalogModel,
    DownloadOption,
    DownloadProgress,
    DownloadState,
)

SEARCHING = "Searching LM Studio's catalog"


def speed_text(bytes_per_second: float) -> str:
    """12.3 MB/s, 850 KB/s (`size_text` per second)."""
    return f"{size_text(bytes_per_second)}/s"


def progress_text(step: DownloadProgress) -> str:
    """One line for a download under way."""
    if step.state is DownloadState.FINALIZING:
        return f"{step.key} — finishing…"
    done = size_text(step.downloaded_bytes)
    total = f" of {size_text(step.total_bytes)}" if step.total_bytes else ""
    speed = (
        f" · {speed_text(step.speed_bytes_per_second)}"
        if step.speed_bytes_per_second
        else ""
    )
    return f"{step.key} — {done}{total} ({step.fraction:.0%}){speed}"


class DownloadsManager(QObject):
    """Catalog search, download options and downloads with progress."""

    resultsChanged = Signal()
    optionsChanged = Signal()
    progressChanged = Signal()

    def __init__(
        self,
        controller: ProxyController,
        models: ModelsManager,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.models = models
        self.tasks = Tasks("downloads")
        self.results: list[CatalogModel] = []
        self.chosen: CatalogModel | None = None
        self.options: list[DownloadOption] = []
        self.active: dict[str, DownloadProgress] = {}
        self._downloads: dict[str, asyncio.Task[Any]] = {}
        self._cancelled: set[str] = set()
        controller.downloadProgress.connect(self._on_progress)

    @property
    def usable(self) -> bool:
        return self.controller.lmstudio is not None

    def search(self, query: str) -> asyncio.Task[None]:
        self.tasks.cancel(SEARCHING)
        return self.tasks.start(self._search(query), what=SEARCHING)

    async def _search(self, query: str) -> None:
        svc = self.models.service()
        self.results = await svc.downloads.search(query, limit=20)
        self.chosen, self.options = None, []
        self.resultsChanged.emit()
        self.optionsChanged.emit()
        if not self.results:
            message.info(f"LM Studio's catalog has nothing for “{query}”")

    def choose(self, model: CatalogModel) -> asyncio.Task[None]:
        """Fetch the download options of one search result."""
        return self.tasks.start(
            self._choose(model), what=f"Reading the files of {model.name}"
        )

    async def _choose(self, model: CatalogModel) -> None:
        self.chosen = model
        self.options = []
        self.optionsChanged.emit()
        options = await self.models.service().downloads.download_options(model)
        if self.chosen is model:
            self.options = options
            self.optionsChanged.emit()

    def download(self, option: DownloadOption) -> asyncio.Task[None]:
        task = self.tasks.start(
            self._download(option), what=f"Downloading {option.key}"
        )
        self._downloads[option.key] = task
        return task

    async def _download(self, option: DownloadOption) -> None:
        self._cancelled.discard(option.key)
        try:
            result = await self.models.service().downloads.download(option)
        except LMBridgeError:
            if option.key in self._cancelled:
                return  # the user cancelled it; the progress step said so
            raise
        finally:
            self._downloads.pop(option.key, None)
        message.info(f"Downloaded {option.name}: load it as {result.model_key}")
        self.models.refresh()

    def cancel(self, key: str) -> None:
        self._cancelled.add(key)
        svc = self.controller.lmstudio
        if svc is None or not svc.downloads.cancel_download(key):
            task = self._downloads.get(key)
            if task is not None:
                task.cancel()

    def _on_progress(self, step: DownloadProgress) -> None:
        if step.finished:
            self.active.pop(step.key, None)
            if step.state is DownloadState.CANCELLED:
                message.info(f"Download of {step.key} cancelled")
        else:
            self.active[step.key] = step
        self.progressChanged.emit()
