"""The scrubber itself (issue 25, item 1): literal matches of every secret
LM Bridge holds, in the forms they take, and patterns for the rest."""

from __future__ import annotations

import base64
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmbridge import logs
from lmbridge.auth.tokens import AccessToken
from lmbridge.core.redact import (
    REDACTED,
    SECRETS,
    Scrubber,
    redact_patterns,
    url_secrets,
)


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber()


def test_a_bare_key_is_found_literally(scrubber: Scrubber) -> None:
    key = "0123456789abcdef0123456789abcdef"  # no pattern knows a hex key
    text = f"Access denied due to invalid subscription key {key}."
    assert redact_patterns(text) == text
    scrubber.add(key)
    assert (
        scrubber.scrub(text)
        == f"Access denied due to invalid subscription key {REDACTED}."
    )
    assert scrubber.scrub_bytes(text.encode()) == scrubber.scrub(text).encode()


def test_the_forms_of_a_secret_are_found(scrubber: Scrubber) -> None:
    key = 'k3y/with+odd="chars"'
    scrubber.add(key)
    for form in (key, 'k3y/with+odd=\\"chars\\"', "k3y%2Fwith%2Bodd%3D%22chars%22"):
        assert scrubber.scrub_literal(f"<{form}>") == f"<{REDACTED}>", form


def test_credentials_in_a_url(scrubber: Scrubber) -> None:
    url = "https://me:p%40ss-w0rd-long@example.com/v1"
    assert "p@ss-w0rd-long" in url_secrets(url)
    scrubber.add_url(url)
    basic = base64.b64encode(b"me:p@ss-w0rd-long").decode()
    for text in (url, "p@ss-w0rd-long", f"Authorization: Basic {basic}"):
        assert "ss-w0rd" not in scrubber.scrub(text) and basic not in scrubber.scrub(
            text
        )


def test_short_values_are_not_looked_for(scrubber: Scrubber) -> None:
    scrubber.add("abc")
    scrubber.add("")
    scrubber.add(None)
    assert scrubber.count == 0
    assert scrubber.scrub_literal("abc def") == "abc def"


def test_a_longer_secret_holding_a_shorter_one_goes_whole(scrubber: Scrubber) -> None:
    scrubber.add("secret-key-12345678")
    scrubber.add("secret-key-12345678-and-more")
    assert scrubber.scrub_literal("x secret-key-12345678-and-more y") == (
        f"x {REDACTED} y"
    )


def test_patterns_catch_what_was_never_registered(scrubber: Scrubber) -> None:
    text = "sk-proj-AbCdEf1234567890 Bearer abcdefgh12345678 api_key=hunter2hunter2"
    out = scrubber.scrub(text)
    assert "AbCdEf" not in out and "abcdefgh1234" not in out and "hunter2" not in out


def test_an_access_token_is_known_from_its_creation() -> None:
    token = AccessToken("eyJhbGci-not-a-jwt-but-a-token-7788", 0.0)
    assert "not-a-jwt" not in SECRETS.scrub(f"got {token.token}")


def test_the_log_redacts_registered_secrets() -> None:
    SECRETS.add("fedcba9876543210fedcba9876543210")
    logger = logging.getLogger("lmbridge.test-scrub")
    record = logger.makeRecord(
        logger.name,
        logging.WARNING,
        __file__,
        1,
        "models of %s not listed: %s",
        ("up", "bad key fedcba9876543210fedcba9876543210"),
        None,
    )
    logs.SecretRedactor().filter(record)
    assert record.getMessage() == f"models of up not listed: bad key {REDACTED}"


@given(
    # Brackets and "REDACTED" itself could be found in the marker.
    secret=st.text(min_size=8, max_size=40).filter(
        lambda s: len(s.strip()) >= 8 and not set(s) & set("[]") and s != "REDACTED"
    ),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_a_registered_secret_never_survives(
    secret: str, before: str, after: str
) -> None:
    scrubber = Scrubber()
    scrubber.add(secret)
    assert secret not in scrubber.scrub(before + secret + after)
    raw = (before + secret + after).encode("utf-8", "surrogateescape")
    assert secret.encode("utf-8", "surrogateescape") not in scrubber.scrub_bytes(raw)
