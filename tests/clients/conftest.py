"""The real-CLI tier: the coding CLIs driven through `lmbridge serve`.

`make clients` installs the pinned CLIs into `.cache/clients/`. Where one is
not there (no node, npm unreachable) its tests are skipped, and the run
ends with one line saying why. `-m "not clients"` leaves this tier out.
A test module names the CLI it needs in `MISSING` (why it cannot run, or
None); the Claude Code and Codex modules go by `harness.missing()`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients import harness
from clients.fake_model import Reply, ScriptedModel

_MISSING = harness.missing()
_HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "clients: runs the real coding CLIs (installed by make clients)",
    )


_skipped: dict[str, int] = {}


def _missing(item: pytest.Item) -> str | None:
    module = getattr(item, "module", None)
    if module is not None and hasattr(module, "MISSING"):
        reason: str | None = module.MISSING
        return reason
    return _MISSING


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.clients)
            if (reason := _missing(item)) is not None:
                item.add_marker(pytest.mark.skip(reason=f"real-CLI tests: {reason}"))
                _skipped[reason] = _skipped.get(reason, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line saying why, even without `-rs` (the CLIs that are not
    installed named together)."""
    if not _skipped:
        return
    absent = [re.match(r"(\S+) is not installed in (.*)$", r) for r in _skipped]
    if all(absent):
        names = ", ".join(sorted(m.group(1) for m in absent if m))
        why = f"{names} not installed in {absent[0].group(2) if absent[0] else ''}"
    else:
        why = "; ".join(_skipped)
    terminalreporter.write_line(
        f"tests/clients: {sum(_skipped.values())} real-CLI tests skipped: {why}"
    )


def _unset(api: str, body: object) -> Reply:
    raise AssertionError("the test did not set fake.responder")


@pytest.fixture
async def fake() -> AsyncIterator[ScriptedModel]:
    """The model behind LM Bridge (a Chat Completions upstream)."""
    model = ScriptedModel(_unset)
    await model.start()
    yield model
    await model.stop()
    assert not model.errors, model.errors


@pytest.fixture
async def trap() -> AsyncIterator[harness.ProxyTrap]:
    """The CLIs' HTTP(S) proxy; a test ends by checking nothing went there."""
    proxy = harness.ProxyTrap()
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def bridge(tmp_path: Path, fake: ScriptedModel) -> AsyncIterator[harness.Bridge]:
    async with harness.lmbridge_serve(tmp_path, fake.url) as running:
        yield running


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The CLI's working directory."""
    path = tmp_path / "work"
    path.mkdir()
    return path
