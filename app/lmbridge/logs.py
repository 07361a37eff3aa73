"""The log file: rotating, in the platform log directory, secrets redacted.

`lmbridge logs` prints its path; `[logging] level` sets what goes in it.
Everything that reaches a handler set up here (the file and stderr) first
passes `SecretRedactor`, so a bearer token, an API key or an Azure access
token that ends up in a message, its arguments or a traceback is written
as `[REDACTED]`: every secret LM Bridge holds, matched literally, and
whatever looks like one (`core/redact.py`). Control characters in a
message (a model name carrying a terminal escape, a forged line break) are
written as escapes. The log directory is 0700 and its files 0600.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
from pathlib import Path

import platformdirs

from lmbridge import config
from lmbridge.core.private import append_fd, private_dir
from lmbridge.core.redact import REDACTED as REDACTED
from lmbridge.core.redact import printable, scrub

LOG_FILE_NAME = "lmbridge.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    """`text` with every secret LM Bridge holds, and everything that looks
    like a key or token, replaced (`core/redact.py`)."""
    return scrub(text)


class SecretRedactor(logging.Filter):
    """Rewrites each record so that no known kind of secret reaches a handler.

    The message is formatted with its arguments first (a secret can hide in
    either), and a traceback is rendered and redacted here too, since the
    formatter would otherwise render it from the live exception later.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is
            message = f"{record.msg!s} {record.args!r}"
        record.msg = printable(redact(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def log_dir() -> Path:
    """`$LMBRIDGE_HOME/logs`, else the platform's log directory."""
    home = config.home_dir()
    if home is not None:
        return home / "logs"
    return Path(platformdirs.user_log_dir(config.APP_NAME, appauthor=False))


def log_file() -> Path:
    """The current log file (older ones sit beside it as .1, .2, ...)."""
    return log_dir() / LOG_FILE_NAME


def _level(name: str) -> int:
    return logging.getLevelNamesMapping().get(name.upper(), logging.INFO)


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating log file handler; its own class so a second setup finds
    it. Its files are created 0600, rotated ones included."""

    def _open(self) -> io.TextIOWrapper:  # type: ignore[type-arg,unused-ignore]
        fd = append_fd(Path(self.baseFilename))
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def redact_stderr(target: logging.Logger | None = None) -> None:
    """Put the redactor on the plain stderr handlers of `target` (default:
    the root logger), so what the terminal shows is scrubbed too."""
    target = target or logging.getLogger()
    for stderr in target.handlers:
        if type(stderr) is not logging.StreamHandler:
            continue
        if not any(isinstance(f, SecretRedactor) for f in stderr.filters):
            stderr.addFilter(SecretRedactor())


def setup_file_logging(
    settings: config.LoggingSettings,
    *,
    path: Path | None = None,
    logger: logging.Logger | None = None,
) -> LogFileHandler:
    """Log to the rotating file at `path` (default `log_file()`) from now on.

    Attached to `logger` (default: the root logger), replacing a handler an
    earlier call attached. The logger's level is lowered to the file's level
    if needed; the plain stderr handler of `logging.basicConfig` keeps the
    level it had, so the terminal shows what it showed before. That stderr
    handler gets the redactor too. Raises OSError if the directory cannot be
    created.
    """
    target = logger or logging.getLogger()
    path = path or log_file()
    private_dir(path.parent)
    level = _level(settings.level)
    for old in [h for h in target.handlers if isinstance(h, LogFileHandler)]:
        target.removeHandler(old)
        old.close()
    handler = LogFileHandler(
        path,
        maxBytes=MAX_BYTES,
        backupCount=BACKUP_COUNT,
        encoding="utf-8",
        delay=True,
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(SecretRedactor())
    for stderr in target.handlers:
        if type(stderr) is logging.StreamHandler and stderr.level == logging.NOTSET:
            stderr.setLevel(target.getEffectiveLevel())
    redact_stderr(target)
    target.addHandler(handler)
    if target.getEffectiveLevel() > level:
        target.setLevel(level)
    return handler


def setup_for_command(settings: config.Settings) -> None:
    """`setup_file_logging` as the command line wants it: never fatal.

    A log directory that cannot be created is reported on stderr, and the
    command runs on without a log file (stderr is redacted all the same).
    """
    redact_stderr()
    try:
        setup_file_logging(settings.logging)
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "no log file: cannot create %s (%s)", log_dir(), exc.strerror or exc
        )
