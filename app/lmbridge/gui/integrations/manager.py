"""Integrations: the Integrations page's one way to the tools' knowledge
(`lmbridge.integrations`: what each tool needs, its test request, writing
its config, what its files point at now) and to the running proxy (the
settings clients see, the test request sent through it, the model names
it serves).

The tools' files are watched (`QFileSystemWatcher` on each file and its
folder, as editors and our own writer replace files): `changed` fires when
one of them changes, whoever wrote it (the setup wizard, an editor, the
page itself), so the page shows what the files say now.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from PySide6.QtCore import QFileSystemWatcher, QObject, Signal

from lmbridge import config, integrations
from lmbridge.apiclient import ProxyClient, Reply
from lmbridge.gui.controller import ProxyController
from lmbridge.integrations import (
    Configured,
    Integration,
    LoadedContext,
    ModelChoice,
    TestRequest,
    WritePlan,
    WriteResult,
)


class IntegrationsManager(QObject):
    """Describes, tests and writes each tool's configuration for this proxy,
    and watches the tools' files. `home` is the directory whose tool configs
    are read and written (tests point it at a temporary one); None is the
    user's."""

    changed = Signal()  # a tool's file changed on disk

    def __init__(
        self, controller: ProxyController, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.home: Path | None = None
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._on_disk)
        self.watcher.directoryChanged.connect(self._on_disk)
        self.watch()

    # -- the tools' files ------------------------------------------------

    def tool_files(self) -> list[Path]:
        """The config file of every tool LM Bridge writes."""
        settings = self.client_settings()
        paths = []
        for tool in integrations.TOOL_IDS:
            path = integrations.describe(tool, settings, home=self.home).config_path
            if path is not None:
                paths.append(path)
        return paths

    def watch(self) -> None:
        """Watch each tool's file and its folder (editors and writers
        replace files), or the folder above while its own does not exist."""
        wanted: set[str] = set()
        for path in self.tool_files():
            if path.exists():
                wanted.add(str(path))
            folder = path.parent if path.parent.exists() else path.parent.parent
            if folder.exists():
                wanted.add(str(folder))
        watched = set(self.watcher.files()) | set(self.watcher.directories())
        if wanted - watched:
            self.watcher.addPaths(sorted(wanted - watched))

    def _on_disk(self, _path: str) -> None:
        self.watch()  # a replaced file is no longer watched; a new one is
        self.changed.emit()

    def set_home(self, home: Path | None) -> None:
        """Read and write the tools' files under `home` (tests)."""
        self.home = home
        watched = self.watcher.files() + self.watcher.directories()
        if watched:
            self.watcher.removePaths(watched)
        self.watch()
        self.changed.emit()

    def now(self, tool: str) -> Configured | None:
        """What `tool`'s own files point at now (None: no file of ours, none
        yet, or unreadable), read by the integrations layer."""
        return integrations.current(tool, home=self.home)

    def points_here(self, now: Configured) -> bool:
        """Whether the file sends the tool to this proxy."""
        return now.points_at(
            integrations.Endpoint.from_settings(self.client_settings())
        )

    def now_line(self, info: Integration) -> tuple[str, str] | None:
        """(status, text): what `info`'s file points the tool at now; None
        for tools without a file."""
        path = info.config_path
        if path is None:
            return None
        now = self.now(info.id)
        if now is None:
            state = "could not be read" if path.exists() else "does not exist yet"
            return "off", f"{path} {state}"
        choice = now.choice
        models = [choice.model, choice.opus, choice.sonnet, choice.haiku]
        named = ", ".join(dict.fromkeys(m for m in models if m))
        named = f"; model {named}" if named else ""
        if self.points_here(now):
            return (
                "ok",
                f"{path} points {info.name} at LM Bridge ({now.base_url}){named}",
            )
        where = now.base_url or "its own default service"
        return (
            "warning",
            f"{path} points {info.name} at {where}, not at this LM Bridge{named}. "
            "Write to config file to change that.",
        )

    # -- the proxy -------------------------------------------------------

    def client_settings(self) -> config.Settings:
        """The settings as clients see them: the port actually listened on."""
        settings = self.controller.runtime_settings()
        server = self.controller.server
        if server is not None and server.running:
            port = server.port
            settings = msgspec.structs.replace(
                settings, server=msgspec.structs.replace(settings.server, port=port)
            )
        return settings

    def loaded_context(self) -> LoadedContext | None:
        """LM Studio's loaded contexts, so the window written is the real one."""
        service = self.controller.lmstudio
        return service.loaded_context if service is not None else None

    def served_window(self, upstream: str) -> int | None:
        """The window an upstream's server last reported (llama.cpp's
        `/props`, refreshed by the health checks), None if unknown."""
        services = self.controller.services
        found = services.upstreams.get(upstream) if services is not None else None
        return found.reported_window("") if found is not None else None

    def model_names(self, tool: str) -> list[str]:
        """The names `tool` may ask for: the models LM Studio has loaded and
        the routes' exact names first; Claude's own names (which the routes'
        tier patterns take) after them for the tools that speak Anthropic
        Messages, and not at all for the others."""
        state = self.controller.services
        aliases = list(state.router.aliases()) if state is not None else []
        real = [m.identifier for m in self.controller.loaded]
        real += [n for n in aliases if not n.startswith("claude")]
        claude = [n for n in aliases if n.startswith("claude")]
        protocol = integrations.describe(tool, self.client_settings()).protocol
        names = real + (claude if protocol == "anthropic" else [])
        return list(dict.fromkeys(n for n in names if "*" not in n))

    def describe(self, tool: str, choice: ModelChoice | None) -> Integration:
        settings = self.client_settings()
        if choice is None:
            return integrations.describe(tool, settings, home=self.home)
        return integrations.describe(
            tool,
            settings,
            choice,
            home=self.home,
            loaded=self.loaded_context(),
            served=self.served_window,
        )

    def test_request(self, tool: str, choice: ModelChoice) -> TestRequest:
        return integrations.build_test_request(tool, self.client_settings(), choice)

    async def send_test(self, info: Integration, request: TestRequest) -> Reply:
        """Send `request` through the running proxy, as the tool would."""
        client = ProxyClient(
            self.controller.url, token=self.controller.runtime_settings().server.token()
        )
        body = msgspec.json.encode(request.body)
        return await client.send(info.protocol, request.path, body, request.headers)

    def plan_write(self, tool: str, choice: ModelChoice) -> WritePlan:
        return integrations.plan_write(
            tool,
            self.client_settings(),
            choice,
            home=self.home,
            loaded=self.loaded_context(),
            served=self.served_window,
        )

    def write(self, plan: WritePlan) -> WriteResult:
        result = integrations.write(plan)
        self.watch()
        self.changed.emit()
        return result
