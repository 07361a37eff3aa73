"""What the Overview page shows, derived from the state other parts own:
the proxy's phase, each upstream's health (LM Studio's with the proxy
stopped too), Azure sign-ins and today's numbers.

The page takes the Azure accounts and the request log as the small
protocols below (`AzureStatus`, `TodayNumbers`), so this feature does not
import the Azure or Requests features; the shell passes the real objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from PySide6.QtCore import SignalInstance

from lmbridge.gui.controller import ProxyController, ProxyPhase
from lmbridge.gui.formats import context_k
from lmbridge.gui.health import UpstreamHealth
from lmbridge.gui.stats import TodayStats
from lmbridge.lmstudio import ConnectionState
from lmbridge.server.services import managed_upstream


class AccountStatus(Protocol):
    """One Azure account as the overview shows it."""

    @property
    def signed_in(self) -> bool: ...

    def describe(self) -> str: ...


class AzureStatus(Protocol):
    """The Azure accounts (`azure.manager.AzureAccounts`)."""

    @property
    def accounts(self) -> Mapping[str, AccountStatus]: ...

    @property
    def changed(self) -> SignalInstance: ...


class TodayNumbers(Protocol):
    """Today's numbers (`requests.manager.RequestLog`)."""

    @property
    def stats(self) -> TodayStats: ...

    @property
    def statsChanged(self) -> SignalInstance: ...


KIND_NAMES = {
    "lmstudio": "LM Studio",
    "openai": "OpenAI-compatible",
    "anthropic": "Anthropic",
    "azure-foundry": "Azure AI Foundry",
}


def proxy_line(controller: ProxyController) -> tuple[str, str]:
    """(dot kind, text) for the proxy itself."""
    phase = controller.phase
    if phase is ProxyPhase.RUNNING:
        return "ok", f"Running on {controller.url}"
    if phase is ProxyPhase.STARTING:
        return "warning", f"Starting on {controller.url}…"
    if phase is ProxyPhase.STOPPING:
        return "warning", "Stopping…"
    if phase is ProxyPhase.FAILED:
        return "error", f"Not running: {controller.error}"
    return "off", f"Stopped (would listen on {controller.url})"


def upstream_lines(
    controller: ProxyController, health: UpstreamHealth, azure: AzureStatus
) -> list[tuple[str, str, str]]:
    """(name, dot kind, text) for every configured upstream."""
    lines = []
    managed_name = managed_upstream(controller.settings)
    for up in controller.settings.upstream:
        kind = KIND_NAMES.get(up.kind, up.kind)
        label = f"{up.name} ({kind})"
        if up.kind == "azure-foundry":
            account = azure.accounts.get(up.name)
            text = account.describe() if account else "not checked"
            dot = "ok" if account and account.signed_in else "warning"
            lines.append((up.name, dot, f"{label} — {text}"))
            continue
        managed = managed_name == up.name and controller.lmstudio is not None
        check = health.checks.get(up.name)
        if managed and controller.lmstudio_status is not None:
            rest = check is not None and check.reachable and controller.running
            lines.append((up.name, *_lmstudio_line(controller, label, rest=rest)))
            continue
        if not controller.running:
            lines.append((up.name, "off", f"{label} — {up.base_url}"))
        elif check is None:
            lines.append((up.name, "off", f"{label} — checking {up.base_url}…"))
        elif check.reachable:
            lines.append((up.name, "ok", f"{label} — reachable at {up.base_url}"))
        else:
            why = check.error or f"HTTP {check.status}"
            lines.append(
                (up.name, "error", f"{label} — unreachable at {up.base_url}: {why}")
            )
    return lines


def _lmstudio_line(
    controller: ProxyController, label: str, *, rest: bool = False
) -> tuple[str, str]:
    """An LM Studio upstream's line. `rest`: its server answers requests (the
    health check), so an SDK that does not answer means model management is
    off there, not that the server is down."""
    status = controller.lmstudio_status
    assert status is not None
    if status.state is ConnectionState.CONNECTED:
        models = ", ".join(
            f"{m.identifier} ({context_k(m.context_length)})" for m in controller.loaded
        )
        loaded = f"loaded: {models}" if models else "no model loaded"
        return "ok", f"{label} — connected at {status.address}; {loaded}"
    if status.state is ConnectionState.CONNECTING:
        return "warning", f"{label} — connecting…"
    if rest:
        why = status.error or "it does not answer"
        return "warning", (
            f"{label} — answers requests, but model management is off: no LM"
            f" Studio SDK at {status.address or 'its address'} ({why}); requests"
            " go by REST without loads or context checks"
        )
    advice = "start LM Studio and its server (Developer ▸ Start Server)"
    why = status.error or f"not reachable at {status.address or 'its address'}"
    if "start" in why.lower():  # the error already names the fix: say it once
        return "error", f"{label} — {why}"
    return "error", f"{label} — {why}; {advice}"
