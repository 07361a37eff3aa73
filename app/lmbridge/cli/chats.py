"""`lmbridge chats ...`: list, import and export stored conversations.

Works on the database directly, so the proxy need not run (and may: SQLite
in WAL mode lets both use the file at once). Names and models are printed
terminal-safe (control characters escaped), errors scrubbed of secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lmbridge import config
from lmbridge.core import errors
from lmbridge.core.redact import printable, scrub
from lmbridge.store.conversations import (
    ConversationStore,
    decode_chat_file,
    encode_chat_file,
)
from lmbridge.store.db import Database


def register(subparsers: Any) -> None:
    """Add the `chats` command group to the `lmbridge` parser."""
    chats: argparse.ArgumentParser = subparsers.add_parser(
        "chats", help="conversations kept by the chat API (/store)"
    )
    sub = chats.add_subparsers(dest="chats_command", required=True)
    listing = sub.add_parser("list", help="list the stored chats")
    listing.set_defaults(run=run_list)
    imp = sub.add_parser("import", help="import every *.json chat file in DIR")
    imp.add_argument("directory", type=Path, metavar="DIR")
    imp.add_argument(
        "--replace", action="store_true", help="replace chats that already exist"
    )
    imp.set_defaults(run=run_import)
    exp = sub.add_parser("export", help="write one chat as a JSON file")
    exp.add_argument("name", metavar="NAME")
    exp.add_argument(
        "-o", "--output", type=Path, help="file to write (default: standard output)"
    )
    exp.set_defaults(run=run_export)


async def _with_store(work: Callable[[ConversationStore], Awaitable[int]]) -> int:
    db = Database.in_dir(config.data_dir())
    try:
        await db.open()
        return await work(ConversationStore(db))
    except errors.LMBridgeError as err:
        print(f"lmbridge: {printable(scrub(err.message))}", file=sys.stderr)
        return 1
    finally:
        await db.close()


def run_list(args: argparse.Namespace, settings: config.Settings) -> int:
    """Print one line per chat: name and model."""

    async def work(store: ConversationStore) -> int:
        for chat in await store.list_chats():
            print(f"{printable(chat.name)}\t{printable(chat.model)}")
        return 0

    return asyncio.run(_with_store(work))


def run_import(args: argparse.Namespace, settings: config.Settings) -> int:
    """Import chat files; report each; exit 1 if any could not be imported."""
    directory: Path = args.directory
    if not directory.is_dir():
        print(f"lmbridge: {directory} is not a directory", file=sys.stderr)
        return 2
    files = sorted(directory.glob("*.json"))
    if not files:
        print(f"lmbridge: no *.json files in {directory}", file=sys.stderr)
        return 1

    async def work(store: ConversationStore) -> int:
        failed = 0
        for path in files:
            try:
                chat = decode_chat_file(path.read_bytes(), path.stem)
                stored = await store.import_chat(chat, replace=args.replace)
            except errors.LMBridgeError as err:
                failed += 1
                print(
                    printable(f"{path.name}: not imported: {scrub(err.message)}"),
                    file=sys.stderr,
                )
                continue
            except OSError as exc:
                failed += 1
                print(
                    printable(f"{path.name}: cannot read: {exc.strerror}"),
                    file=sys.stderr,
                )
                continue
            count = len(stored.messages)
            print(
                printable(f"{path.name}: imported {stored.name!r} ({count} messages)")
            )
        print(f"{len(files) - failed} of {len(files)} chats imported")
        return 1 if failed else 0

    return asyncio.run(_with_store(work))


def run_export(args: argparse.Namespace, settings: config.Settings) -> int:
    """Write the chat NAME as JSON, to a file or standard output."""

    async def work(store: ConversationStore) -> int:
        data = encode_chat_file(await store.get_chat(args.name))
        if args.output is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            try:
                args.output.write_bytes(data)
            except OSError as exc:
                print(
                    f"lmbridge: cannot write {args.output}: {exc.strerror}",
                    file=sys.stderr,
                )
                return 1
            print(f"wrote {args.output}", file=sys.stderr)
        return 0

    return asyncio.run(_with_store(work))
