"""Credentials written into a base_url survive a save from the app.

The settings store moves `user:password` out of the URL into the keyring
(`config.url_credentials_secret`); the upstream then sends them as HTTP
Basic credentials, as the URL itself would have been sent, and the
password is scrubbed from what the client and the record see.
"""

from __future__ import annotations

import base64
from pathlib import Path

from fakes.memory_keyring import MemoryKeyring
from fakes.openai_upstream import FakeOpenAIUpstream
from lmbridge import config
from lmbridge.auth.secrets import SecretStore
from lmbridge.settings_store import SettingsStore
from support import oai, running

FILE = """\
[server]
port = 0

[[upstream]]
name = "guarded"
kind = "openai"
base_url = "http://127.0.0.1:1"

[[route]]
model = "claude-*"
upstream = "guarded"
target = "fake-model"
"""


async def test_moved_credentials_are_sent_as_basic_auth_over_a_session(
    tmp_path: Path, memory_keyring: MemoryKeyring, fake_upstream: FakeOpenAIUpstream
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FILE)
    store = SettingsStore(path, SecretStore())
    url = fake_upstream.url.replace("http://", "http://me:s3cret-pw-0042@")
    store.apply({("upstream", "guarded", "base_url"): url})
    assert "s3cret" not in path.read_text()

    expected = "Basic " + base64.b64encode(b"me:s3cret-pw-0042").decode()
    async with running(config.load(path)) as proxy, oai(proxy) as client:
        for turn in range(2):
            await client.chat.completions.create(
                model="claude-x",
                messages=[{"role": "user", "content": f"turn {turn}"}],
            )
        record = await proxy.record(2)
    assert [s.headers.get("Authorization") for s in fake_upstream.requests] == [
        expected,
        expected,
    ]
    assert "s3cret" not in repr(record)


async def test_a_key_wins_over_moved_credentials(
    tmp_path: Path, memory_keyring: MemoryKeyring, fake_upstream: FakeOpenAIUpstream
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FILE)
    store = SettingsStore(path, SecretStore())
    url = fake_upstream.url.replace("http://", "http://me:s3cret-pw-0042@")
    store.apply({("upstream", "guarded", "base_url"): url})
    memory_keyring.passwords[("lmbridge", "guarded")] = "sk-guarded-key-0123456789"

    async with running(config.load(path)) as proxy, oai(proxy) as client:
        await client.chat.completions.create(
            model="claude-x", messages=[{"role": "user", "content": "Hi"}]
        )
    (seen,) = fake_upstream.requests
    assert seen.headers["Authorization"] == "Bearer sk-guarded-key-0123456789"
