"""Each setting is declared once (config_tables): its docs page is
generated from the declarations and cannot go stale, and a new declared
setting reaches the page with no other edit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

import msgspec
import pytest

from lmbridge import config, config_docs, config_fields
from lmbridge.config_tables import _Table


class ToySettingsTable(_Table):
    """The `[toy]` table: a table a test declares."""

    title: ClassVar[str] = "Toy"

    count: Annotated[
        int, config.setting("How many toys.", label="Toy count", ge=2, le=9)
    ] = 3
    colour: Annotated[
        Literal["red", "blue"], config.setting("Which colour the toys are.")
    ] = "blue"
    wrapped: Annotated[bool | None, config.setting("Gift-wrap.", unset="ask")] = None


class ToySettings(config.Settings):
    toy: ToySettingsTable = msgspec.field(default_factory=ToySettingsTable)


def test_the_page_on_disk_is_what_the_declarations_give() -> None:
    assert config_docs.PAGE.read_text() == config_docs.render()
    assert config_docs.main(["--check"]) == 0


def test_a_stale_page_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(config_docs.render().replace("Days of history kept", "Days"))
    assert config_docs.main(["--check", "--output", str(stale)]) == 1
    assert "make docs" in capsys.readouterr().err


def test_every_key_is_documented_and_every_table_titled() -> None:
    for table in config_fields.tables():
        assert table.title and table.doc, table.name
        for key in table.keys:
            assert key.doc, f"{key.name} has no setting(doc=...)"
            assert f"| `{key.key}` |" in config_docs.render()


def test_declared_bounds_are_what_loading_checks() -> None:
    port = next(k for k in config_fields.table("server").keys if k.key == "port")
    assert (port.kind, port.ge, port.le, port.default) == ("int", 0, 65535, 4680)
    with pytest.raises(
        config.ConfigError, match=r"server\.port: must be at most 65535"
    ):
        config.parse("[server]\nport = 65536\n")
    retention = next(
        k for k in config_fields.table("usage").keys if k.key == "retention_days"
    )
    assert retention.lowest == 1
    with pytest.raises(config.ConfigError, match="must be at least 1"):
        config.parse("[usage]\nretention_days = 0\n")


def test_a_new_declared_setting_reaches_the_docs_without_other_edits() -> None:
    page = config_docs.render(ToySettings)
    assert "## [toy]" in page
    assert "The `[toy]` table: a table a test declares." in page
    assert (
        "| `count` | whole number, at least 2 and at most 9 | `3` | How many toys. |"
        in page
    )
    assert (
        '| `colour` | `"red"` \\| `"blue"` | `"blue"` | Which colour the toys are. |'
        in page
    )
    assert "| `wrapped` | true or false (optional) | unset (ask) | Gift-wrap. |" in page
    # ...and is read and checked like every other key.
    settings = msgspec.toml.decode(b"[toy]\ncount = 5\n", type=ToySettings)
    assert settings.toy.count == 5
    with pytest.raises(msgspec.ValidationError, match=">= 2"):
        msgspec.toml.decode(b"[toy]\ncount = 1\n", type=ToySettings)
