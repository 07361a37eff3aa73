"""First-run setup's one way to services: LM Studio's models, writing the
settings and the tools' files, and the test requests.

`SetupManager` owns what the wizard's pages show that is not a plain
choice: the downloaded models and why there are none (listing, a failure,
none downloaded), what the settings and the tools' files hold now (a re-run
starts from there), which files setup wrote and their backups, and one
test result per configured tool. Pages call it and redraw on its signals.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import msgspec
from PySide6.QtCore import QObject, Signal

from lmbridge import config, integrations
from lmbridge.apiclient import ProxyClient
from lmbridge.core.errors import LMBridgeError
from lmbridge.gui.controller import ProxyController
from lmbridge.gui.formats import duration
from lmbridge.gui.setup.plan import (
    SetupChoice,
    ToolPlan,
    current_choice,
    planned_changes,
    planned_settings,
    tool_name,
)
from lmbridge.gui.setup.sources import DownloadedModels
from lmbridge.integrations import IntegrationError, ModelChoice
from lmbridge.lmstudio import ConnectionState, DownloadedModel, ModelKind

CONNECT_WAIT = 10.0  # seconds a test waits for LM Studio's link


@dataclass(frozen=True)
class WrittenFile:
    """A file setup wrote, and the copy of what it held before."""

    what: str  # "LM Bridge's settings", "Claude Code", ...
    path: Path
    backup: Path | None  # None: a new file, or nothing changed
    changed: bool = True


@dataclass(frozen=True)
class SettingsChange:
    """Setup's change to config.toml: key paths, and the text before/after."""

    changes: dict[tuple[str, ...], object]
    old_text: str
    new_text: str


@dataclass(frozen=True)
class ToolTest:
    """The outcome of one tool's test request."""

    tool: str
    name: str
    ok: bool
    summary: str  # one line: "Claude Code works through LM Bridge: 200 in 1.2 s"
    detail: str = ""  # the answer, or the error's text


class SetupManager(QObject):
    """What the setup pages show beyond the user's choices; see the module."""

    modelsChanged = Signal()

    def __init__(
        self,
        controller: ProxyController,
        models: DownloadedModels,
        home: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.models = models
        self.home = home
        self.downloaded: tuple[DownloadedModel, ...] = tuple(models.downloaded)
        self.listing = False
        self.listed = bool(self.downloaded)
        self.list_error = ""
        self.written: list[WrittenFile] = []
        models.changed.connect(self._on_models_changed)

    # -- LM Studio's models ------------------------------------------------

    def language_models(self) -> list[DownloadedModel]:
        return [m for m in self.downloaded if m.kind is ModelKind.LLM]

    def _on_models_changed(self) -> None:
        self.downloaded = tuple(self.models.downloaded)
        self.listed = True
        self.list_error = ""
        self.modelsChanged.emit()

    async def list_models(self) -> None:
        """Ask LM Studio for its downloaded models; a failure is kept as
        `list_error` for the page to show (not a banner that outlives it)."""
        service = self.controller.lmstudio
        if service is None:
            self.list_error = (
                "no LM Studio upstream is managed: add an upstream of kind "
                "lmstudio in Settings ▸ Upstreams"
            )
            self.modelsChanged.emit()
            return
        self.listing = True
        self.modelsChanged.emit()
        try:
            result = await service.list_downloaded()
        except LMBridgeError as exc:
            self.list_error = exc.message
        else:
            self.downloaded, self.listed, self.list_error = result.models, True, ""
            self.models.refresh()  # the Models page shows the same list
        finally:
            self.listing = False
            self.modelsChanged.emit()

    # -- where a run starts ------------------------------------------------

    def configured(self) -> dict[str, ModelChoice]:
        """The models each tool's own file names now (tools without one left
        out)."""
        found: dict[str, ModelChoice] = {}
        for tool in ("claude-code", "codex", "continue"):
            current = integrations.current(tool, home=self.home)
            if current is not None:
                found[tool] = current.choice
        return found

    def starting_choice(self) -> SetupChoice | None:
        """The choice the settings and the tools' files hold now (None on a
        first run, where nothing is configured yet)."""
        return current_choice(self.controller.settings, self.configured())

    # -- writing -----------------------------------------------------------

    def settings_change(self, choice: SetupChoice) -> SettingsChange:
        """Setup's change to the settings file as it is on disk now, and the
        file's text before and after it (for the review's diff)."""
        store = self.controller.settings_service.store
        on_disk = store.read()
        # Without a file yet, it also gets the settings the app runs with.
        changes = self.controller.file_changes(
            planned_changes(on_disk, choice, str(store.path))
        )
        old, new = store.preview(changes)
        return SettingsChange(changes, old, new)

    def save_settings(self, choice: SetupChoice) -> WrittenFile:
        """Apply setup's change to the settings file as it is on disk now (the
        store keeps the user's comments and a dated backup) and use it;
        SettingsInvalid, ConfigError or OSError if not."""
        store = self.controller.settings_service.store
        changes = self.controller.file_changes(
            planned_changes(store.read(), choice, str(store.path))
        )
        saved = store.apply(changes)
        # The settings in use keep their command-line and environment
        # overrides; only setup's keys change.
        self.controller.use_settings(
            planned_settings(self.controller.settings, choice, str(store.path))
        )
        written = WrittenFile(
            "LM Bridge's settings",
            saved.path,
            saved.backup,
            changed=bool(saved.changed) or saved.backup is not None,
        )
        self.written = [written]
        return written

    def write_tool(self, plan: ToolPlan) -> WrittenFile:
        """Write one tool's file (IntegrationError if it cannot be)."""
        if plan.plan is None:
            raise IntegrationError(plan.problem)
        result = integrations.write(plan.plan)
        written = WrittenFile(plan.name, result.path, result.backup, result.changed)
        self.written.append(written)
        return written

    def already_set_up(self, plan: ToolPlan) -> None:
        """Note a tool whose file already says what setup would write."""
        if plan.plan is not None:
            self.written.append(WrittenFile(plan.name, plan.plan.path, None, False))

    # -- testing -----------------------------------------------------------

    async def ensure_running(self) -> str:
        """Start (or restart) the proxy for the test; "" or why it did not."""
        controller = self.controller
        started = (
            await controller.restart()
            if controller.restart_needed or not controller.running
            else True
        )
        if not started:
            return f"The proxy did not start: {controller.error}"
        service = controller.lmstudio
        if (
            service is not None
            and service.status.state is not ConnectionState.CONNECTED
        ):
            with contextlib.suppress(LMBridgeError, TimeoutError):
                async with asyncio.timeout(CONNECT_WAIT):
                    await service.connect()
        return ""

    def client_settings(self, settings: config.Settings) -> config.Settings:
        """`settings` as clients reach the proxy: the port it listens on now."""
        server = self.controller.server
        if server is None or not server.running:
            return settings
        return msgspec.structs.replace(
            settings, server=msgspec.structs.replace(settings.server, port=server.port)
        )

    async def test_tool(self, tool: str, choice: SetupChoice) -> ToolTest:
        """One real request through the proxy, as `tool` sends it."""
        name = tool_name(tool)
        settings = self.client_settings(self.controller.runtime_settings())
        tool_choice = choice.tool_choice(tool)
        try:
            request = integrations.build_test_request(tool, settings, tool_choice)
        except IntegrationError as exc:
            return ToolTest(tool, name, False, f"{name}: not tested", str(exc))
        info = integrations.describe(tool, settings, tool_choice)
        client = ProxyClient(self.controller.url, token=settings.server.token())
        reply = await client.send(
            info.protocol,
            request.path,
            msgspec.json.encode(request.body),
            request.headers,
        )
        model = request.body["model"]
        if reply.ok:
            return ToolTest(
                tool,
                name,
                True,
                f"{name} works through LM Bridge ({model}): {reply.status} in "
                f"{duration(reply.elapsed)}",
                f"The model answered “{reply.text.strip()[:200]}”.",
            )
        return ToolTest(
            tool,
            name,
            False,
            f"{name} failed ({model}): {reply.status or 'no answer'}",
            reply.text[:500],
        )


def written_lines(files: list[WrittenFile]) -> list[str]:
    """One line per file: where it is and where its previous text went."""
    lines = []
    for item in files:
        if not item.changed:
            lines.append(f"{item.what}: {item.path} (already set up, not changed)")
        elif item.backup is not None:
            lines.append(f"{item.what}: {item.path} (backup: {item.backup})")
        else:
            lines.append(f"{item.what}: {item.path} (new file)")
    return lines
