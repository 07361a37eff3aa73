"""The log file: rotating, in the platform log directory, secrets redacted.

`lmbridge logs` prints its path; `[logging] level` sets what goes in it.
Everything that reaches a handler set up here first passes `SecretRedactor`,
so a bearer token, an API key or an Azure access token that ends up in a
message, its arguments or a traceback is written as `[REDACTED]`.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

import platformdirs

from lmbridge import config

LOG_FILE_NAME = "lmbridge.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[REDACTED]"

_KEY_NAMES = (
    r"x-api-key|api[-_]?key|apikey|access[-_]?token|refresh[-_]?token|id[-_]?token"
    r"|client[-_]?secret|password|secret|token"
)
# (pattern, replacement); applied in order to the fully formatted text.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # JSON Web Tokens (Azure / Entra access and id tokens): header.payload.sig
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
        REDACTED,
    ),
    # Bearer <token>, wherever it appears; Authorization: Basic <credentials>
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    (
        re.compile(r"(?i)\b(authorization[\"']?\s*[:=,]\s*[\"']?basic)(\s+)[^\s\"']+"),
        rf"\1\2{REDACTED}",
    ),
    # OpenAI / Anthropic style keys: sk-..., sk-proj-..., sk-ant-api03-...
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), REDACTED),
    # key: value, key=value, "key": "value", 'key': 'value' for secret names
    (
        re.compile(
            rf"""(?ix)
            (["']?\b(?:{_KEY_NAMES})\b["']?)   # the name, maybe quoted
            (\s*[:=]\s*)                       # separator
            (["']?)                            # opening quote of the value
            (?!\[REDACTED\])
            [^\s"',;}}\]]+                     # the value
            """
        ),
        rf"\1\2\3{REDACTED}",
    ),
    # ("x-api-key", "value") header tuples
    (
        re.compile(
            rf"""(?i)(["'](?:{_KEY_NAMES})["']\s*,\s*["'])(?!\[REDACTED\])[^"']+"""
        ),
        rf"\1{REDACTED}",
    ),
)


def redact(text: str) -> str:
    """`text` with every secret this module recognises replaced."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


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
        record.msg = redact(message)
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
    """The rotating log file handler; its own class so a second setup finds it."""


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
    path.parent.mkdir(parents=True, exist_ok=True)
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
        if type(stderr) is not logging.StreamHandler:
            continue
        if stderr.level == logging.NOTSET:
            stderr.setLevel(target.getEffectiveLevel())
        if not any(isinstance(f, SecretRedactor) for f in stderr.filters):
            stderr.addFilter(SecretRedactor())
    target.addHandler(handler)
    if target.getEffectiveLevel() > level:
        target.setLevel(level)
    return handler


def setup_for_command(settings: config.Settings) -> None:
    """`setup_file_logging` as the command line wants it: never fatal.

    A log directory that cannot be created is reported on stderr, and the
    command runs on without a log file.
    """
    try:
        setup_file_logging(settings.logging)
    except OSError as exc:
        logging.getLogger(__name__).warning(
            "no log file: cannot create %s (%s)", log_dir(), exc.strerror or exc
        )
