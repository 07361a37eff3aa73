"""Running the real CLIs, and `lmbridge serve`, as subprocesses of a test.

The fakes run in the test's event loop, so every subprocess here is an
asyncio one: waiting for a CLI never blocks the fake that answers it.

The CLIs are installed by `make clients` into the build cache, linked as
`.cache/clients/` (pinned in the Makefile). Each run gets its own HOME, CLAUDE_CONFIG_DIR / CODEX_HOME
and working directory under a tmp dir, a fake API key, and the switches that
turn off telemetry, update checks and other traffic; a `ProxyTrap` as
HTTP(S) proxy catches (and refuses) anything that would still try to leave
the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLIENTS_DIR = Path(os.environ.get("LMBRIDGE_CLIENTS_DIR", REPO / ".cache" / "clients"))
BIN = CLIENTS_DIR / "node_modules" / ".bin"
CLAUDE = BIN / "claude"
CODEX = BIN / "codex"
MCP_SERVER = Path(__file__).with_name("mcp_server.py")

FAKE_KEY = "sk-lmbridge-fake-key-0000"


class ProxyTrap:
    """The HTTP(S) proxy the CLIs are given: it records the first line of
    every connection (`CONNECT host:443 HTTP/1.1`, `GET http://...`) and
    closes it, so traffic that would leave the machine fails at once and
    the test can see that there was some."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(Exception):
            line = await asyncio.wait_for(reader.readline(), 5)
            self.lines.append(line.decode(errors="replace").strip())
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()


def missing() -> str | None:
    """Why the CLI tests cannot run here, or None."""
    if shutil.which("node") is None:
        return "no node on PATH (make sysdeps installs Debian's nodejs)"
    for tool in (CLAUDE, CODEX):
        if not tool.exists():
            return f"{tool.name} is not installed in {CLIENTS_DIR} (make clients; needs npm)"
    return None


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n-> exit {self.returncode}\n"
            f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}"
        )


def base_env(root: Path, proxy: str) -> dict[str, str]:
    """A minimal environment with its own HOME and `proxy` for all traffic
    that is not to 127.0.0.1."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    node = shutil.which("node")
    path = [str(Path(node).parent)] if node else []
    path += ["/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": str(home),
        "TMPDIR": str(root),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def claude_env(root: Path, base_url: str, proxy: str) -> dict[str, str]:
    """Claude Code pointed at `base_url` (no `/v1`), offline otherwise."""
    config = root / "claude-config"
    config.mkdir(parents=True, exist_ok=True)
    return {
        **base_env(root, proxy),
        "CLAUDE_CONFIG_DIR": str(config),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_AUTH_TOKEN": FAKE_KEY,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
        "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
        # Claude Code refuses to skip permission prompts as root unless told
        # it runs in a sandbox; these runs are (a tmp dir, a fake model).
        "IS_SANDBOX": "1",
    }


def codex_env(root: Path, proxy: str) -> dict[str, str]:
    home = root / "codex-home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **base_env(root, proxy),
        "CODEX_HOME": str(home),
        "LMBRIDGE_TEST_KEY": FAKE_KEY,
    }


def codex_config(
    base_url: str,
    model: str = "gpt-5.1-codex",
    *,
    mcp_log: Path | None = None,
    extra: str = "",
) -> str:
    """A `config.toml` with one provider, `lmbridge`, at `base_url` (with /v1)."""
    text = f"""
model = "{model}"
model_provider = "lmbridge"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false
{extra}

[analytics]
enabled = false

# The plugin marketplace syncs from github.com and chatgpt.com at start.
[features]
plugins = false

[feedback]
enabled = false

[history]
persistence = "none"

[model_providers.lmbridge]
name = "LM Bridge"
base_url = "{base_url}"
wire_api = "responses"
env_key = "LMBRIDGE_TEST_KEY"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 30000
"""
    if mcp_log is not None:
        text += f"""
[mcp_servers.probe]
command = "{sys.executable}"
args = ["{MCP_SERVER}", "{mcp_log}"]
startup_timeout_sec = 20
tool_timeout_sec = 20
"""
    return text


def write_codex_config(env: dict[str, str], text: str) -> None:
    (Path(env["CODEX_HOME"]) / "config.toml").write_text(text)


async def run(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    timeout: float = 60,
    stdin: bytes | None = None,
) -> Result:
    """Run `argv` to the end; kill it (and its children) after `timeout` s."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        _kill_group(proc)
        out, err = await proc.communicate()
        raise AssertionError(
            Result(argv, -1, out.decode(errors="replace"), err.decode(errors="replace"))
            .explain()
            .replace("-> exit -1", f"-> still running after {timeout} s, killed")
        ) from None
    return Result(
        argv,
        proc.returncode or 0,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def lmbridge_config(
    upstream_url: str, extra: str = "", *, port: int = 0, route_extra: str = ""
) -> str:
    """LM Bridge with one OpenAI-compatible upstream taking every model that
    the upstreams and routes of `extra` (matched first) do not take (`extra`
    may add other tables too, such as `[web_search]`); `route_extra` adds
    lines to that catch-all route (a `context_window`)."""
    return f"""
[server]
port = {port}

[[upstream]]
name = "fake"
kind = "openai"
base_url = "{upstream_url}/v1"
{extra}
[[route]]
model = "*"
upstream = "fake"
target = "fake-model"
{route_extra}
"""


@dataclass
class Bridge:
    url: str  # no /v1
    output: list[str]  # what `lmbridge serve` printed, stdout and stderr


@contextlib.asynccontextmanager
async def lmbridge_serve(
    root: Path,
    upstream_url: str,
    extra_config: str = "",
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Bridge]:
    """`lmbridge serve --config FILE` in a subprocess, LMBRIDGE_HOME in `root`."""
    config = root / "lmbridge.toml"
    config.write_text(lmbridge_config(upstream_url, extra_config))
    async with serving(config, root / "lmbridge-home", extra_env) as bridge:
        yield bridge


@contextlib.asynccontextmanager
async def serving(
    config: Path, home: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Bridge]:
    """`lmbridge serve --config CONFIG` (LMBRIDGE_HOME `home`) until the
    block ends; it fails at once, with what it printed, if it does not start."""
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    env = {**os.environ, **(extra_env or {}), "LMBRIDGE_HOME": str(home)}
    for name in ("LMBRIDGE_HOST", "LMBRIDGE_PORT", "LMBRIDGE_LOG_REQUESTS"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lmbridge",
        "serve",
        "--config",
        str(config),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    output: list[str] = []
    first = await asyncio.wait_for(proc.stdout.readline(), 30)
    output.append(first.decode(errors="replace"))

    async def drain(stream: asyncio.StreamReader) -> None:
        async for line in stream:
            output.append(line.decode(errors="replace"))

    drains = [
        asyncio.create_task(drain(proc.stdout)),
        asyncio.create_task(drain(proc.stderr)),
    ]
    try:
        if "listening on " not in output[0]:
            await asyncio.wait_for(proc.wait(), 10)
            await asyncio.gather(*drains)
            raise AssertionError("lmbridge serve did not start:\n" + "".join(output))
        yield Bridge(output[0].split("listening on ", 1)[1].strip(), output)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                _kill_group(proc)
                await proc.wait()
        await asyncio.gather(*drains, return_exceptions=True)


async def lmbridge_launch(
    root: Path,
    work: Path,
    env: dict[str, str],
    config: Path,
    client: str,
    model: str,
    client_args: list[str],
) -> Result:
    """`lmbridge launch CLIENT --model MODEL --config CONFIG -- CLIENT_ARGS`
    run to the end in `work`, with the CLIs on PATH, LMBRIDGE_HOME under
    `root` and no keyring."""
    env = {
        **env,
        "PATH": f"{BIN}{os.pathsep}{env['PATH']}",
        "LMBRIDGE_HOME": str(root / "launch-home"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    argv = [sys.executable, "-m", "lmbridge", "launch", client]
    argv += ["--model", model, "--config", str(config), "--", *client_args]
    return await run(argv, env, work, timeout=60)
