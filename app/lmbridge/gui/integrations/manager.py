"""Integrations: the Integrations page's one way to the tools' knowledge
(`lmbridge.integrations`: what each tool needs, its test request, writing
its config) and to the running proxy (the settings clients see, the test
request sent through it, the model names it serves)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from lmbridge import config, integrations
from lmbridge.apiclient import ProxyClient, Reply
from lmbridge.gui.controller import ProxyController
from lmbridge.integrations import (
    Integration,
    LoadedContext,
    ModelChoice,
    TestRequest,
    WritePlan,
    WriteResult,
)


class IntegrationsManager:
    """Describes, tests and writes each tool's configuration for this proxy.
    `home` is the directory whose tool configs are read and written (tests
    point it at a temporary one); None is the user's."""

    def __init__(self, controller: ProxyController) -> None:
        self.controller = controller

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

    def describe(
        self, tool: str, choice: ModelChoice | None, home: Path | None
    ) -> Integration:
        settings = self.client_settings()
        if choice is None:
            return integrations.describe(tool, settings, home=home)
        return integrations.describe(
            tool, settings, choice, home=home, loaded=self.loaded_context()
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

    def plan_write(
        self, tool: str, choice: ModelChoice, home: Path | None
    ) -> WritePlan:
        return integrations.plan_write(
            tool,
            self.client_settings(),
            choice,
            home=home,
            loaded=self.loaded_context(),
        )

    def write(self, plan: WritePlan) -> WriteResult:
        return integrations.write(plan)
