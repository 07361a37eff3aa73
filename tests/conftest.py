"""Shared fixtures: isolated home, fake upstreams, a running proxy; every
test fails on an ERROR log line it did not declare (`expected_errors`)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import keyring
import pytest
from hypothesis import HealthCheck, settings

from fakes.azure_fixtures import memory_keyring, no_keyring  # noqa: F401
from fakes.memory_keyring import MemoryKeyring
from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge.auth.secrets import SECRETS
from support import RunningProxy, settings_for, start_proxy

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Property tests count examples, not seconds: on a shared 2-core machine
# (the suite's two processes side by side, other work beside them) drawing
# one input can take over a second, which Hypothesis's timing checks would
# fail as "too slow" although nothing is wrong with the code under test.
settings.register_profile(
    "lmbridge",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("lmbridge")


@pytest.fixture(autouse=True)
def lmbridge_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config and data directory.

    LM Studio discovery looks in an empty home and probes no default port
    (lmstudio/discovery.py), so no test meets the LM Studio, or its files,
    of the machine it runs on; a test that wants discovery names them.
    """
    home = tmp_path / "lmbridge-home"
    home.mkdir()
    monkeypatch.setenv("LMBRIDGE_HOME", str(home))
    nobody = tmp_path / "discovery-home"
    nobody.mkdir()
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_HOME", str(nobody))
    monkeypatch.setenv("LMBRIDGE_DISCOVERY_PORTS", "")
    # Subprocesses (`lmbridge serve`) never read the user's keyring either.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    for name in ("LMBRIDGE_HOST", "LMBRIDGE_PORT", "LMBRIDGE_LOG_REQUESTS"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(autouse=True)
def isolated_keyring() -> Iterator[None]:
    """An empty in-memory keyring, so no test reads or writes the user's.

    Tests that look at the keyring take `memory_keyring` or `no_keyring`,
    which replace this one for their duration.
    """
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    SECRETS.forget_session()
    yield
    keyring.set_keyring(previous)
    SECRETS.forget_session()


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def proxy(fake_upstream: FakeOpenAIUpstream) -> AsyncIterator[RunningProxy]:
    running = await start_proxy(settings_for(fake_upstream.url))
    yield running
    await running.server.stop()


class ErrorLog(logging.Handler):
    """Collects ERROR records; the test fails on any it did not expect."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.expected: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def unexpected(self) -> list[str]:
        lines = [r.getMessage() for r in self.records]
        return [line for line in lines if not any(e in line for e in self.expected)]


@pytest.fixture(autouse=True)
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    unexpected = handler.unexpected()
    if unexpected:
        pytest.fail(f"unexpected error log lines: {unexpected}")


@pytest.fixture
def expected_errors(error_log: ErrorLog) -> Callable[[str], None]:
    """Declare an ERROR log line (by substring) that the test provokes."""
    return error_log.expected.append
