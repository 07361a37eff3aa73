"""Tokens and sign-in through the Azure CLI, run as asyncio subprocesses.

`az account get-access-token` gives a token for a scope (and tenant); the
token is cached in memory per (tenant, scope) and refreshed five minutes
before it expires (`tokens.CachedTokens`). `az login`, `az account show`
and `az logout` back the sign-in action of the tray and `lmbridge azure`.

`az` is looked up at a configured path, else on PATH, else in the places
installers put it (Homebrew, /usr/bin, the MSI's `az.cmd` on Windows):
a tray app started from a desktop launcher often has a shorter PATH than a
terminal. Subprocess failures become `core.errors` in `AzureCli._run`.

No shell: az runs as an argument list. The tenant and the scope come from
the config (which may be shared), so they must have their known shapes (a
tenant ID or domain; an `https://` or `api://` scope ending `/.default`)
before they reach a command line. On Windows, az is `az.cmd`, a batch file
that only `cmd.exe` can run: LM Bridge runs the Python that `az.cmd`
would run (`python.exe -IBm azure.cli`, one folder up) instead, and goes through
`cmd.exe /c` only when that is missing, with every argument checked to
hold nothing `cmd.exe` would interpret.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import msgspec

from lmbridge.auth.tokens import AccessToken, AccountInfo, CachedTokens
from lmbridge.core import errors
from lmbridge.core.errors import DECODE_ERRORS

log = logging.getLogger(__name__)

USUAL_PLACES: tuple[str, ...] = (
    "/opt/homebrew/bin/az",
    "/usr/local/bin/az",
    "/usr/bin/az",
    "/home/linuxbrew/.linuxbrew/bin/az",
    r"C:\Program Files\Microsoft SDKs\Azure\CLI2\wbin\az.cmd",
    r"C:\Program Files (x86)\Microsoft SDKs\Azure\CLI2\wbin\az.cmd",
)
# Seconds `az account get-access-token` may take (it can refresh online).
TOKEN_TIMEOUT = 60.0
SIGN_IN = (
    "sign in from the LM Bridge tray (Azure ▸ Sign in), or run `az login` "
    "(or `lmbridge azure login`) in a terminal"
)
# Phrases in az's error output that mean "nobody is signed in (any more)".
_NOT_SIGNED_IN = (
    "az login",
    "aadsts",
    "no subscription found",
    "does not exist in msal token cache",
    "no accounts were found",
)


# A tenant: its ID (a GUID) or one of its domains (contoso.onmicrosoft.com).
TENANT = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
# A scope: https://host[/path]/.default or api://name[/path]/.default.
SCOPE = re.compile(
    r"(?:https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?|api://[A-Za-z0-9.-]+)"
    r"(?:/[A-Za-z0-9._~-]+)*/\.default"
)
# What an argument may hold when it must go through cmd.exe.
_CMD_SAFE = re.compile(r"[A-Za-z0-9._:/=@-]+")


def check_tenant(tenant: str) -> str:
    """`tenant` if it is a tenant ID or domain; AuthenticationFailed if not."""
    if tenant and not TENANT.fullmatch(tenant):
        raise errors.AuthenticationFailed(
            f"tenant {tenant[:80]!r} is neither a tenant ID (a GUID) nor a"
            " domain such as contoso.onmicrosoft.com — fix the upstream's tenant"
        )
    return tenant


def check_scope(scope: str) -> str:
    """`scope` if it has a scope's shape; AuthenticationFailed if not."""
    if not SCOPE.fullmatch(scope):
        raise errors.AuthenticationFailed(
            f"scope {scope[:80]!r} is not a token scope such as"
            " https://ai.azure.com/.default — fix the upstream's scope"
        )
    return scope


def az_command(exe: str, args: Sequence[str]) -> list[str]:
    """The argument list that runs az `exe` with `args`, without a shell
    where possible (see the module docstring)."""
    if not exe.lower().endswith((".cmd", ".bat")):
        return [exe, *args]
    python = Path(exe).parent.parent / "python.exe"
    if python.is_file():
        return [str(python), "-IBm", "azure.cli", *args]
    for arg in args:
        if not _CMD_SAFE.fullmatch(arg):
            raise errors.AuthenticationFailed(
                f"cannot pass {arg[:80]!r} to {exe} safely through cmd.exe — set"
                " az_path to the Azure CLI's az.cmd next to its python.exe"
            )
    return ["cmd.exe", "/c", exe, *args]


class _TokenJson(msgspec.Struct):
    # az's own field names.
    accessToken: str
    expires_on: float | None = None
    expiresOn: str | None = None
    tenant: str = ""


class _User(msgspec.Struct):
    name: str = ""


class _AccountJson(msgspec.Struct):
    id: str = ""
    name: str = ""
    tenantId: str = ""
    tenantDisplayName: str = ""
    user: _User = msgspec.field(default_factory=_User)


class AzResult(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: str


def find_az(configured: str = "") -> str | None:
    """The az executable to run, or None when there is none."""
    if configured:
        path = Path(configured).expanduser()
        return str(path) if path.is_file() else None
    names = ("az.cmd", "az") if sys.platform == "win32" else ("az",)
    for name in names:
        if found := shutil.which(name):
            return found
    for place in USUAL_PLACES:
        if os.path.isfile(place) and os.access(place, os.X_OK):
            return place
    return None


def error_line(stderr: str) -> str:
    """az's own one-line explanation of a failure."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("ERROR:"):
            return line.removeprefix("ERROR:").strip()[:300]
    return (lines[0] if lines else "no error output")[:300]


def parse_expiry(data: _TokenJson) -> float:
    """`expires_on` (POSIX seconds, az 2.54+), else `expiresOn` (local time)."""
    if data.expires_on is not None:
        return float(data.expires_on)
    if data.expiresOn:
        with contextlib.suppress(ValueError):
            stamp = datetime.datetime.fromisoformat(data.expiresOn)
            return stamp.timestamp()
    # Unknown expiry: Entra tokens live at least an hour; refresh early.
    return datetime.datetime.now().timestamp() + 10 * 60


class AzureCli:
    """One az executable: tokens per (tenant, scope), sign-in, status."""

    def __init__(self, az_path: str = "") -> None:
        self.configured = az_path
        self._tokens: dict[tuple[str, str], CachedTokens] = {}

    def executable(self) -> str:
        """The az to run; raises `AuthenticationFailed` saying how to get one."""
        found = find_az(self.configured)
        if found is not None:
            return found
        if self.configured:
            raise errors.AuthenticationFailed(
                f"the Azure CLI is not at az_path {self.configured!r} — fix az_path,"
                ' or use auth = "browser"'
            )
        raise errors.AuthenticationFailed(
            "the Azure CLI (az) was not found on PATH or in the usual install "
            "places — install it (https://aka.ms/installazurecli), set az_path, "
            'or use auth = "browser"'
        )

    # ------------------------------------------------------------ tokens

    def tokens(self, scope: str, tenant: str = "") -> CachedTokens:
        """The cached token provider for (tenant, scope)."""
        key = (tenant, scope)
        if key not in self._tokens:

            async def fetch() -> AccessToken:
                return await self.get_access_token(scope, tenant)

            self._tokens[key] = CachedTokens(fetch)
        return self._tokens[key]

    async def get_access_token(self, scope: str, tenant: str = "") -> AccessToken:
        """A new token from `az account get-access-token` (no caching here)."""
        args = [
            "account",
            "get-access-token",
            "--scope",
            check_scope(scope),
            "--output",
            "json",
        ]
        if tenant:
            args += ["--tenant", check_tenant(tenant)]
        result = await self._run(args, seconds=TOKEN_TIMEOUT)
        if result.returncode != 0:
            raise self._failure(result, "account get-access-token")
        try:
            data = msgspec.json.decode(result.stdout, type=_TokenJson)
        except DECODE_ERRORS:
            # Never quote stdout: it may hold a token.
            raise errors.AuthenticationFailed(
                "`az account get-access-token` answered with something that is "
                "not a token — update the Azure CLI (`az upgrade`)"
            ) from None
        token = AccessToken(data.accessToken, parse_expiry(data), data.tenant)
        log.info(
            "got an Azure token for %s from az (expires in %.0f s)",
            scope,
            token.expires_on - datetime.datetime.now().timestamp(),
        )
        return token

    def forget_tokens(self) -> None:
        """Drop every cached token (after sign-in or sign-out)."""
        for provider in self._tokens.values():
            provider.forget()

    async def aclose(self) -> None:
        """Stop token fetches in progress."""
        for provider in self._tokens.values():
            await provider.aclose()

    # ------------------------------------------------------------ sign-in

    async def login(
        self,
        *,
        device_code: bool = False,
        tenant: str = "",
        on_message: Callable[[str], None] | None = None,
    ) -> AccountInfo:
        """Run `az login` (a browser window, or a device code whose
        instructions go to `on_message`); report who is signed in."""
        args = ["login", "--output", "json"]
        if device_code:
            args.append("--use-device-code")
        if tenant:
            args += ["--tenant", check_tenant(tenant)]
        result = await self._run(args, on_stderr_line=on_message)
        if result.returncode != 0:
            raise errors.AuthenticationFailed(
                f"`az login` failed: {error_line(result.stderr)}"
            )
        self.forget_tokens()
        account = await self.account()
        if account is None:
            raise errors.AuthenticationFailed(
                "`az login` finished but az reports no account — run `az login`"
                " in a terminal to see why"
            )
        return account

    async def account(self) -> AccountInfo | None:
        """Who az is signed in as (`az account show`), None if nobody."""
        result = await self._run(["account", "show", "--output", "json"], seconds=30)
        if result.returncode != 0:
            if _not_signed_in(result.stderr):
                return None
            raise self._failure(result, "account show")
        try:
            data = msgspec.json.decode(result.stdout, type=_AccountJson)
        except DECODE_ERRORS:
            raise errors.AuthenticationFailed(
                "`az account show` answered with something unexpected — "
                "update the Azure CLI (`az upgrade`)"
            ) from None
        return AccountInfo(
            account=data.user.name,
            tenant=data.tenantDisplayName or data.tenantId,
            subscription=data.name,
            subscription_id=data.id,
        )

    async def logout(self) -> None:
        """Run `az logout`; nobody signed in is not a failure."""
        result = await self._run(["logout"], seconds=30)
        self.forget_tokens()
        if result.returncode != 0 and "no active account" not in result.stderr.lower():
            raise self._failure(result, "logout")

    # ------------------------------------------------------------ subprocess

    def _failure(self, result: AzResult, what: str) -> errors.LMBridgeError:
        reason = error_line(result.stderr)
        if _not_signed_in(result.stderr):
            return errors.AuthenticationFailed(
                f"not signed in to Azure (az: {reason}) — {SIGN_IN}"
            )
        return errors.AuthenticationFailed(f"`az {what}` failed: {reason}")

    async def _run(
        self,
        args: Sequence[str],
        *,
        seconds: float | None = None,
        on_stderr_line: Callable[[str], None] | None = None,
    ) -> AzResult:
        """Run az with `args`; the one place subprocess failures are converted."""
        exe = self.executable()
        command = az_command(exe, args) if sys.platform == "win32" else [exe, *args]
        env = {
            **os.environ,
            "AZURE_CORE_NO_COLOR": "1",
            # No interactive subscription picker after `az login`.
            "AZURE_CORE_LOGIN_EXPERIENCE_V2": "off",
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise errors.AuthenticationFailed(
                f"the Azure CLI at {exe} could not be started "
                f"({exc.strerror or exc}) — reinstall it, or set az_path"
            ) from None
        try:
            async with asyncio.timeout(seconds):
                stdout, stderr = await asyncio.gather(
                    _read_all(proc.stdout), _read_lines(proc.stderr, on_stderr_line)
                )
                returncode = await proc.wait()
        except TimeoutError:
            await _kill(proc)
            raise errors.Timeout(
                f"the Azure CLI did not answer `az {args[0]}` within {seconds:g} s"
            ) from None
        except asyncio.CancelledError:
            await _kill(proc)
            raise
        return AzResult(returncode, stdout, stderr)


def _not_signed_in(stderr: str) -> bool:
    text = stderr.lower()
    return any(phrase in text for phrase in _NOT_SIGNED_IN)


async def _read_all(stream: asyncio.StreamReader | None) -> bytes:
    return await stream.read() if stream is not None else b""


async def _read_lines(
    stream: asyncio.StreamReader | None, on_line: Callable[[str], None] | None
) -> str:
    if stream is None:
        return ""
    lines: list[str] = []
    while line := await stream.readline():
        text = line.decode("utf-8", "replace")
        lines.append(text)
        if on_line is not None and text.strip():
            on_line(text.rstrip())
    return "".join(lines)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
