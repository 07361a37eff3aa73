"""`lmbridge azure login|status|logout` and `lmbridge keys set|delete`
(an upstream's key, or `web-search`: the `[web_search]` provider's).

Sign-in follows the upstream's `auth`: `azure-cli` runs `az login` (or
`az login --use-device-code`), `browser` opens azure-identity's browser
sign-in, `api-key` keeps the resource's key in the OS keyring. Without
`--upstream`, the first `azure-foundry` upstream is meant (the Azure CLI
when none is configured).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from lmbridge import config
from lmbridge.auth.azure_cli import AzureCli
from lmbridge.auth.secrets import SECRETS
from lmbridge.core import errors

if TYPE_CHECKING:
    from lmbridge.auth.browser import BrowserSignIn

Runner = Callable[[argparse.Namespace, config.Settings], int]


def register(sub: Any) -> None:
    """Add the `azure` and `keys` command groups to `sub`."""
    azure = sub.add_parser("azure", help="sign in to Azure AI Foundry")
    actions = azure.add_subparsers(dest="azure_command", required=True)
    login = actions.add_parser("login", help="sign in (az login, or a browser)")
    login.add_argument(
        "--device-code",
        action="store_true",
        help="sign in with a code on another device (azure-cli only)",
    )
    login.add_argument("--tenant", help="Entra tenant to sign in to")
    status = actions.add_parser("status", help="who is signed in, per upstream")
    logout = actions.add_parser("logout", help="sign out")
    for parser, fn in ((login, _login), (status, _status), (logout, _logout)):
        parser.add_argument("--upstream", help="an azure-foundry upstream's name")
        parser.set_defaults(run=_sync(fn))

    keys = sub.add_parser("keys", help="upstream API keys in the OS keyring")
    key_actions = keys.add_subparsers(dest="keys_command", required=True)
    put = key_actions.add_parser(
        "set", help="store an upstream's key (read from stdin)"
    )
    put.add_argument(
        "upstream", help="the upstream's name, or web-search (its provider's key)"
    )
    put.set_defaults(run=_sync(_keys_set))
    delete = key_actions.add_parser("delete", help="remove an upstream's key")
    delete.add_argument("upstream", help="the upstream's name")
    delete.set_defaults(run=_sync(_keys_delete))


def _sync(
    fn: Callable[[argparse.Namespace, config.Settings], Coroutine[Any, Any, int]],
) -> Runner:
    def run(args: argparse.Namespace, settings: config.Settings) -> int:
        try:
            return asyncio.run(fn(args, settings))
        except config.ConfigError as exc:
            _say(f"configuration error: {exc}")
            return 2
        except errors.LMBridgeError as exc:
            _say(exc.message)
            return 1

    return run


def _say(message: str, *, out: bool = False) -> None:
    print(f"lmbridge: {message}", file=sys.stdout if out else sys.stderr, flush=True)


def _azure_upstreams(
    settings: config.Settings, name: str | None
) -> list[config.UpstreamSettings]:
    found = [u for u in settings.upstream if u.kind == "azure-foundry"]
    if name is None:
        return found
    for up in found:
        if up.name == name:
            return [up]
    known = ", ".join(u.name for u in found) or "none"
    raise config.ConfigError(
        f"no azure-foundry upstream named {name!r} (azure-foundry upstreams: {known})"
    )


def _browser(up: config.UpstreamSettings) -> BrowserSignIn:
    from lmbridge.upstreams.azure import browser_sign_in

    return browser_sign_in(up)


# ------------------------------------------------------------------ azure


async def _login(args: argparse.Namespace, settings: config.Settings) -> int:
    ups = _azure_upstreams(settings, args.upstream)[:1]
    up = ups[0] if ups else None
    if up is not None and up.auth == "api-key":
        _say(f"upstream {up.name!r} uses an API key: run `lmbridge keys set {up.name}`")
        return 1
    if up is not None and up.auth == "browser":
        if args.device_code:
            _say('--device-code is for auth = "azure-cli"; opening a browser')
        _say("a browser window opens for the Azure sign-in…")
        info = await _browser(up).sign_in()
    else:
        cli = AzureCli(up.az_path if up else "")
        tenant = args.tenant or (up.tenant if up else "")
        info = await cli.login(
            device_code=args.device_code,
            tenant=tenant,
            on_message=lambda line: print(line, file=sys.stderr, flush=True),
        )
    _say(info.describe(), out=True)
    return 0


async def _status(args: argparse.Namespace, settings: config.Settings) -> int:
    ups = _azure_upstreams(settings, args.upstream)
    if not ups:
        account = await AzureCli().account()
        where = "no azure-foundry upstream is configured; Azure CLI"
        if account is None:
            _say(f"{where}: not signed in — run `lmbridge azure login`", out=True)
            return 1
        _say(f"{where}: {account.describe()}", out=True)
        return 0
    ok = True
    for up in ups:
        line, signed_in = await _status_line(up)
        ok = ok and signed_in
        _say(f"upstream {up.name} ({up.auth}): {line}", out=True)
    return 0 if ok else 1


async def _status_line(up: config.UpstreamSettings) -> tuple[str, bool]:
    if up.auth == "api-key":
        status = SECRETS.status()
        if not status.secure:
            return f"no secure keyring: {status.reason}", False
        if await SECRETS.get(up.name) is None:
            return f"no API key — run `lmbridge keys set {up.name}`", False
        return f"API key in the keyring ({status.backend})", True
    if up.auth == "browser":
        account = _browser(up).account()
    else:
        account = await AzureCli(up.az_path).account()
    if account is None:
        hint = "lmbridge azure login" + (f" --upstream {up.name}" if up.name else "")
        return f"not signed in — run `{hint}`", False
    return account.describe(), True


async def _logout(args: argparse.Namespace, settings: config.Settings) -> int:
    ups = _azure_upstreams(settings, args.upstream)[:1]
    up = ups[0] if ups else None
    if up is not None and up.auth == "api-key":
        _say(f"upstream {up.name!r} uses an API key: `lmbridge keys delete {up.name}`")
        return 1
    if up is not None and up.auth == "browser":
        await _browser(up).sign_out()
        _say(f"signed out of the browser sign-in of upstream {up.name!r}", out=True)
        return 0
    await AzureCli(up.az_path if up else "").logout()
    _say("signed out of the Azure CLI (for every program that uses az)", out=True)
    return 0


# ------------------------------------------------------------------ keys


def _upstream(settings: config.Settings, name: str) -> config.UpstreamSettings:
    up = settings.upstream_named(name)
    if up is None:
        known = ", ".join(u.name for u in settings.upstream)
        raise config.ConfigError(f"no upstream named {name!r} (known: {known})")
    return up


def _read_key(name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"API key for upstream {name}: ").strip()
    return sys.stdin.readline().strip()


WEB_SEARCH = "web-search"
"""`lmbridge keys set web-search`: the key of the `[web_search]` provider
(unless an upstream has that name)."""


def _entry(settings: config.Settings, name: str) -> tuple[str, str]:
    """The keyring entry `name` means, and how to say it."""
    if name == WEB_SEARCH and settings.upstream_named(name) is None:
        return config.WEB_SEARCH_SECRET, "the web search provider"
    return _upstream(settings, name).name, f"upstream {name!r}"


async def _keys_set(args: argparse.Namespace, settings: config.Settings) -> int:
    entry, what = _entry(settings, args.upstream)
    up = settings.upstream_named(entry)
    status = SECRETS.status()
    if not status.secure:
        _say(
            f"the key was NOT saved: {status.reason}. LM Bridge never writes keys "
            "to a file; enter the key in the LM Bridge tray to use it for that "
            "session only, or start a keyring (gnome-keyring, KWallet) and retry"
        )
        return 1
    key = _read_key(what)
    if not key:
        _say("no key given (type it, or pipe it on stdin)")
        return 1
    stored = await SECRETS.set(entry, key)
    if stored.where != "keyring":
        SECRETS.forget_session()
        _say(f"the key was NOT saved: {stored.reason}")
        return 1
    _say(f"the key of {what} is in the keyring ({status.backend})", out=True)
    if up is not None and up.kind == "azure-foundry" and up.auth != "api-key":
        _say(f'note: upstream {up.name!r} uses it only with auth = "api-key"')
    return 0


async def _keys_delete(args: argparse.Namespace, settings: config.Settings) -> int:
    name = args.upstream
    entry, what = name, f"upstream {name!r}"
    if name == WEB_SEARCH and settings.upstream_named(name) is None:
        entry, what = config.WEB_SEARCH_SECRET, "the web search provider"
    if await SECRETS.delete(entry):
        _say(f"removed the key of {what}", out=True)
        return 0
    _say(f"no key stored for {what}")
    return 1
