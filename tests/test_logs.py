"""The log file: where it is, what level, rotation, and no secrets in it."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmbridge import cli, config, logs

# An Azure-style access token (header.payload.signature), base64url.
AZURE_JWT = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik1uQ19WWmNBVGZNNXBP"
    ".eyJhdWQiOiJodHRwczovL2NvZ25pdGl2ZXNlcnZpY2VzLmF6dXJlLmNvbSIsImlzcyI6In"
    ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA"
)
SECRETS = {
    "bearer": "tok_9f8e7d6c5b4a39281706",
    "openai": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234567890",
    "anthropic": "sk-ant-api03-ZyXwVuTsRqPoNmLkJiHg-0987654321",
    "azure_key": "0123456789abcdef0123456789abcdef",
    "api_key": "k3y-for-the-upstream-42",
    "jwt": AZURE_JWT,
}


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger("lmbridge.test-logs")
    log.propagate = False
    log.setLevel(logging.NOTSET)
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def test_the_log_directory_follows_lmbridge_home(lmbridge_home: Path) -> None:
    assert logs.log_dir() == lmbridge_home / "logs"
    assert logs.log_file() == lmbridge_home / "logs" / "lmbridge.log"


def test_the_platform_log_directory_without_lmbridge_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LMBRIDGE_HOME")
    import platformdirs

    expected = Path(platformdirs.user_log_dir("lmbridge", appauthor=False))
    assert logs.log_dir() == expected


def test_no_secret_reaches_the_file(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "logs" / "lmbridge.log"
    logs.setup_file_logging(
        config.LoggingSettings(level="DEBUG"), path=path, logger=logger
    )
    logger.info("upstream call with Authorization: Bearer %s", SECRETS["bearer"])
    logger.info(
        "headers %s", {"x-api-key": SECRETS["api_key"], "api-key": SECRETS["azure_key"]}
    )
    logger.warning("retrying with key %s", SECRETS["openai"])
    logger.error("Claude said no to %s", SECRETS["anthropic"])
    logger.debug("token acquired: %s", AZURE_JWT)
    logger.info("request headers: [('x-api-key', '%s')]", SECRETS["api_key"])
    logger.info('{"api_key": "%s", "model": "qwen3"}', SECRETS["api_key"])
    try:
        raise RuntimeError(f"401 from Azure for Bearer {AZURE_JWT}")
    except RuntimeError:
        logger.exception("sign-in failed (api-key=%s)", SECRETS["azure_key"])
    for handler in logger.handlers:
        handler.flush()
    text = path.read_text(encoding="utf-8")
    for name, secret in SECRETS.items():
        assert secret not in text, name
    assert text.count(logs.REDACTED) >= 9
    assert "model" in text and "qwen3" in text  # the rest is kept
    assert "RuntimeError: 401 from Azure for Bearer [REDACTED]" in text


def test_ordinary_text_is_left_alone() -> None:
    line = (
        "claude-cli/2.1 anthropic claude-sonnet -> local/qwen3 200 "
        "tokens=21456/187 max_tokens=32768 basic usage of the key ring"
    )
    assert logs.redact(line) == line


def test_the_level_comes_from_settings(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "lmbridge.log"
    settings = config.parse('[logging]\nlevel = "WARNING"\n')
    logs.setup_file_logging(settings.logging, path=path, logger=logger)
    logger.info("not written")
    logger.warning("written")
    for handler in logger.handlers:
        handler.flush()
    text = path.read_text()
    assert "written" in text
    assert "not written" not in text
    assert config.Settings().logging.level == "INFO"
    with pytest.raises(config.ConfigError, match=r"logging\.level"):
        config.parse('[logging]\nlevel = "LOUD"\n')


def test_setup_replaces_its_handler_and_keeps_stderr_quiet(
    tmp_path: Path, logger: logging.Logger
) -> None:
    stderr = logging.StreamHandler(sys.stderr)
    logger.addHandler(stderr)
    logger.setLevel(logging.WARNING)
    logs.setup_file_logging(
        config.LoggingSettings(), path=tmp_path / "a.log", logger=logger
    )
    handler = logs.setup_file_logging(
        config.LoggingSettings(), path=tmp_path / "b.log", logger=logger
    )
    files = [h for h in logger.handlers if isinstance(h, logs.LogFileHandler)]
    assert files == [handler]
    assert logger.level == logging.INFO  # the file wants INFO
    assert stderr.level == logging.WARNING  # the terminal shows what it did
    assert any(isinstance(f, logs.SecretRedactor) for f in stderr.filters)


def test_the_file_rotates(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "lmbridge.log"
    handler = logs.setup_file_logging(
        config.LoggingSettings(), path=path, logger=logger
    )
    handler.maxBytes = 400
    for n in range(40):
        logger.info("line %d of a long enough message", n)
    assert path.exists()
    assert (tmp_path / "lmbridge.log.1").exists()
    assert not (tmp_path / f"lmbridge.log.{logs.BACKUP_COUNT + 1}").exists()


def test_lmbridge_logs_prints_the_path(lmbridge_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lmbridge", "logs"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(lmbridge_home / "logs" / "lmbridge.log")
    folder = subprocess.run(
        [sys.executable, "-m", "lmbridge", "logs", "--dir"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert folder.stdout.strip() == str(lmbridge_home / "logs")


def test_the_command_line_logs_to_the_file(lmbridge_home: Path) -> None:
    root = logging.getLogger()
    try:
        assert cli.main(["logs"]) == 0
        [handler] = [h for h in root.handlers if isinstance(h, logs.LogFileHandler)]
        assert Path(handler.baseFilename) == lmbridge_home / "logs" / "lmbridge.log"
        logging.getLogger("lmbridge.test").info("hello with x-api-key: %s", "abc123xyz")
        handler.flush()
        text = (lmbridge_home / "logs" / "lmbridge.log").read_text()
        assert "hello with x-api-key: [REDACTED]" in text
    finally:
        for h in [h for h in root.handlers if isinstance(h, logs.LogFileHandler)]:
            root.removeHandler(h)
            h.close()


def test_an_unwritable_log_directory_is_not_fatal(
    lmbridge_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (lmbridge_home / "logs").write_text("a file where the directory should be")
    root = logging.getLogger()
    before = [h for h in root.handlers if isinstance(h, logs.LogFileHandler)]
    logs.setup_for_command(config.Settings())
    after = [h for h in root.handlers if isinstance(h, logs.LogFileHandler)]
    assert after == before
    assert "no log file: cannot create" in caplog.text
