"""A secret planted anywhere LM Bridge keeps one never comes out by any way
out (issue 25, items 1 and 2): a property test over the secret's value and
where it was planted, driving every way out with real sockets."""

from __future__ import annotations

import asyncio
import io
import logging
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import keyring
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.azure_fixtures import FakeAz, fake_az, fake_foundry, foundry_settings  # noqa: F401
from fakes.foundry import FakeFoundry
from fakes.memory_keyring import MemoryKeyring
from fakes.openai_upstream import FakeOpenAIUpstream, Script
from lmbridge import config, logs
from lmbridge.auth.secrets import SECRETS as KEY_STORE
from lmbridge.core.events import REQUEST_FINISHED, EventBus, RequestRecord
from lmbridge.core.redact import SECRETS as SCRUBBER
from lmbridge.server.requestlog import RequestLogPrinter
from lmbridge.server.runner import ProxyServer

# Where a secret can be planted: every source LM Bridge reads one from.
PLACES = ("env-key", "keyring-key", "access-token", "base-url-password", "azure-key")
SECRET = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.~+/=", min_size=16, max_size=48
).filter(lambda s: sum(c.isalnum() for c in s) >= 8)

CHAT: dict[str, Any] = {
    "model": "claude-x",
    "messages": [{"role": "user", "content": "hi"}],
}
DOORS: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": CHAT,
    "/v1/messages": {**CHAT, "max_tokens": 20},
    "/v1/responses": {"model": "claude-x", "input": "hi"},
}


@dataclass
class Outcome:
    """Everything that left LM Bridge while the ways out were driven."""

    places: dict[str, str] = field(default_factory=dict)

    def add(self, place: str, text: str) -> None:
        self.places[place] = self.places.get(place, "") + text + "\n"


@pytest.fixture
def keyring_backend() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    KEY_STORE.forget_session()
    yield backend
    keyring.set_keyring(previous)
    KEY_STORE.forget_session()


def settings_text(url: str, place: str, secret: str) -> str:
    server = "[server]\nport = 0\n"
    upstream = f'name = "up"\nkind = "openai"\nbase_url = "{url}"\n'
    if place == "env-key":
        upstream += 'api_key_env = "LEAK_TEST_KEY"\n'
    elif place == "access-token":
        server += 'access_token_env = "LEAK_TEST_TOKEN"\n'
    elif place == "base-url-password":
        host = url.removeprefix("http://")
        upstream = upstream.replace(url, f"http://me:{quote(secret, safe='')}@{host}")
    elif place == "azure-key":
        upstream = (
            f'name = "up"\nkind = "azure-foundry"\nbase_url = "{url}"\n'
            'api = "messages"\nauth = "api-key"\n'
        )
    return f"""{server}
[[upstream]]
{upstream}
[[route]]
model = "claude-*"
upstream = "up"
target = "fake-model"
"""


async def drive(proxy: ProxyServer, fake: FakeOpenAIUpstream, secret: str) -> Outcome:
    """Every way out, with the upstream echoing `secret` in each failure."""
    out = Outcome()
    echo = f"Incorrect API key provided: {secret} (or Bearer {secret})"
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as s:
        for path, body in DOORS.items():
            for stream in (False, True):
                for fault in (
                    Script(status=401, error_message=echo),
                    Script(status=500, error_message=echo),
                    Script(error_in_stream=echo),
                    Script(text=f"the answer, then {secret}"),
                ):
                    fake.script = fault
                    async with s.post(
                        proxy.url + path,
                        json={**body, "stream": stream},
                        headers=headers,
                    ) as r:
                        out.add("answers", await r.text())
        fake.script = Script(status=401, error_message=echo)
        for path in ("/v1/models", "/health"):
            async with s.get(proxy.url + path, headers=headers) as r:
                out.add("answers", await r.text())
        async with s.get(proxy.url + "/health") as r:
            out.add("health without token", await r.text())
    return out


async def run_example(
    place: str, secret: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Outcome:
    SCRUBBER.forget_all()
    monkeypatch.setenv("LEAK_TEST_KEY", secret)
    monkeypatch.setenv("LEAK_TEST_TOKEN", secret)
    fake: FakeOpenAIUpstream = (
        FakeFoundry() if place == "azure-key" else (FakeOpenAIUpstream())
    )
    await fake.start()
    if place == "azure-key":
        assert isinstance(fake, FakeFoundry)
        fake.api_key = secret
    if place in ("keyring-key", "azure-key"):
        await KEY_STORE.set("up", secret)
        SCRUBBER.forget_all()  # only what LM Bridge reads at its start counts
    settings = config.parse(settings_text(fake.url, place, secret))
    log_path = tmp_path / f"logs-{place}" / "lmbridge.log"
    stderr = io.StringIO()
    root = logging.getLogger()
    to_stderr = logging.StreamHandler(stderr)
    root.addHandler(to_stderr)
    handler = logs.setup_file_logging(
        config.LoggingSettings(level="DEBUG"), path=log_path, logger=root
    )
    printed = io.StringIO()
    records: list[RequestRecord] = []
    bus = EventBus()
    bus.subscribe(REQUEST_FINISHED, RequestLogPrinter(printed))
    bus.subscribe(REQUEST_FINISHED, lambda _t, r: records.append(r))
    proxy = ProxyServer(settings, bus, capture_bodies=True)
    try:
        await proxy.start()
        out = await drive(proxy, fake, secret)
        await asyncio.sleep(0.2)  # the history is written off the request path
    finally:
        await proxy.stop()
        await fake.stop()
        root.removeHandler(handler)
        root.removeHandler(to_stderr)
        handler.close()
    data = lmbridge_data()
    out.add("log file", log_path.read_text() if log_path.exists() else "")
    out.add("stderr", stderr.getvalue())
    out.add("--log-requests", printed.getvalue())
    out.add("records", "\n".join(repr(r) for r in records))
    out.add("captured bodies", "\n".join(r.response_body for r in records))
    out.add("history database", data)
    # Every model request was answered, none with a fault of ours.
    assert len(records) >= 24
    assert "failed unexpectedly" not in out.places["answers"]
    return out


def lmbridge_data() -> str:
    home = Path(config.data_dir())
    return "".join(
        p.read_bytes().decode("utf-8", "replace") for p in home.glob("lmbridge.db*")
    )


def assert_clean(out: Outcome, secret: str, place: str) -> None:
    for where, text in out.places.items():
        assert secret not in text, f"the secret leaked into the {where}"
        assert quote(secret, safe="") not in text, f"quoted secret in the {where}"
    if place == "access-token":
        health = out.places["health without token"].strip()
        assert health == '{"status": "ok"}'


@pytest.mark.usefixtures("keyring_backend")
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(place=st.sampled_from(PLACES), secret=SECRET)
def test_a_planted_secret_never_leaves(
    place: str, secret: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = asyncio.run(run_example(place, secret, tmp_path, monkeypatch))
    assert_clean(out, secret, place)


@pytest.mark.usefixtures("keyring_backend")
@pytest.mark.parametrize("place", PLACES)
async def test_each_place_is_scrubbed_from_each_way_out(
    place: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bare hex key: no pattern matches it, only the literal match can.
    secret = "0f3a9c2e7b1d4f6a8c0e2b4d6f8a1c3e"
    out = await run_example(place, secret, tmp_path, monkeypatch)
    assert_clean(out, secret, place)
    assert "[REDACTED]" in out.places["answers"]


async def test_an_azure_token_is_scrubbed_from_each_way_out(
    fake_az: FakeAz,  # noqa: F811
    fake_foundry: FakeFoundry,  # noqa: F811
    tmp_path: Path,
) -> None:
    # The fake az issues `fake-az|<audience>|<serial>`: the first one is
    # known in advance, and the fake Foundry echoes it in every failure.
    token = "fake-az|https://ai.azure.com|1"
    settings = foundry_settings(fake_foundry, api="messages", auth="azure-cli")
    stderr = io.StringIO()
    root = logging.getLogger()
    to_stderr = logging.StreamHandler(stderr)
    root.addHandler(to_stderr)
    log_path = tmp_path / "logs" / "lmbridge.log"
    handler = logs.setup_file_logging(
        config.LoggingSettings(level="DEBUG"), path=log_path, logger=root
    )
    records: list[RequestRecord] = []
    bus = EventBus()
    bus.subscribe(REQUEST_FINISHED, lambda _t, r: records.append(r))
    proxy = ProxyServer(settings, bus, capture_bodies=True)
    try:
        await proxy.start()
        out = await drive(proxy, fake_foundry, token)
    finally:
        await proxy.stop()
        root.removeHandler(handler)
        root.removeHandler(to_stderr)
        handler.close()
    # The token did go to Azure, where it belongs.
    assert fake_foundry.attempts[0].headers["Authorization"] == f"Bearer {token}"
    out.add("log file", log_path.read_text() if log_path.exists() else "")
    out.add("stderr", stderr.getvalue())
    out.add("records", "\n".join(repr(r) for r in records))
    out.add("captured bodies", "\n".join(r.response_body for r in records))
    assert len(records) >= 24
    for where, text in out.places.items():
        assert token not in text, f"the Azure token leaked into the {where}"
    assert "[REDACTED]" in out.places["answers"]
