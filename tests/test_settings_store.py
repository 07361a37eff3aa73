"""The settings store: each writer changes only its keys of the file as it is
on disk, comments survive, saves are validated per key, atomic, private,
backed up with dates, and announced."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes.memory_keyring import MemoryKeyring
from lmbridge import config
from lmbridge.auth.secrets import SecretStore
from lmbridge.settings_service import SettingsService
from lmbridge.settings_store import (
    REMOVE,
    SettingsChange,
    SettingsInvalid,
    SettingsStore,
)

USER_FILE = """\
# My LM Bridge settings -- written by hand, please keep this comment.
[server]
port = 4680  # the proxy's port

# My LM Studio box.
[[upstream]]
name = "local"
kind = "lmstudio"
base_url = "http://127.0.0.1:1234"  # LM Studio's own port
"""

WIZARD_ROUTES = ["claude-opus-*", "claude-sonnet-*", "claude-haiku-*", "gpt-*", "o*"]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def with_port(settings: config.Settings, port: int) -> config.Settings:
    server = msgspec.structs.replace(settings.server, port=port)
    return msgspec.structs.replace(settings, server=server)


def test_a_page_opened_before_the_wizard_keeps_the_wizards_routes(
    tmp_path: Path,
) -> None:
    """Issue 20 point 3, at the store: the wizard adds five routes; the
    Settings page, holding settings read before that, changes only the port
    and saves twice; the routes, the comments and every backup survive."""
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    store = SettingsStore(path)
    page_snapshot = store.settings  # the Settings page fills its form

    # The wizard's writer: it starts from the settings as they are now.
    wizard_base = store.settings
    routes = [
        config.RouteSettings(model=m, upstream="local", target="qwen3-coder")
        for m in WIZARD_ROUTES
    ]
    wizard = store.save(
        msgspec.structs.replace(wizard_base, route=routes), base=wizard_base
    )
    assert [r.model for r in wizard.settings.route] == WIZARD_ROUTES
    assert wizard.backup is not None and wizard.backup.read_text() == USER_FILE

    # The page: its form still has no routes; only the port changed.
    form = with_port(page_snapshot, 4681)
    first = store.save(form, base=page_snapshot)
    assert first.changed == (("server", "port"),)
    saved = config.load(path)
    assert saved.server.port == 4681
    assert [r.model for r in saved.route] == WIZARD_ROUTES
    assert all(r.target == "qwen3-coder" for r in saved.route)

    # A second save from the same stale page: nothing is lost, and the
    # backups of every earlier state are still there.
    second = store.save(with_port(page_snapshot, 4682), base=page_snapshot)
    text = path.read_text()
    assert config.parse(text).server.port == 4682
    assert [r.model for r in config.parse(text).route] == WIZARD_ROUTES
    for line in USER_FILE.splitlines():
        if line.startswith("#") or ("#" in line and "port =" not in line):
            assert line in text
    assert "port = 4682  # the proxy's port" in text
    assert text.count("[[route]]") == 5 and "route = [" not in text
    backups = store.backups()
    assert [b.path for b in backups] == [second.backup, first.backup, wizard.backup]
    assert backups[-1].path.read_text() == USER_FILE  # the user's original
    assert "4681" in backups[0].path.read_text()
    assert len({b.label for b in backups}) == 3


def test_writers_with_their_own_store_apply_to_the_file_as_it_is(
    tmp_path: Path,
) -> None:
    """Two processes (the app and the CLI) each with a store on one file."""
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    app, cli = SettingsStore(path), SettingsStore(path)
    cli.apply({("route", "qwen*"): {"model": "qwen*", "upstream": "local"}})
    app.apply({("lmstudio", "min_context"): 16384})  # app's view is older
    saved = config.load(path)
    assert [r.model for r in saved.route] == ["qwen*"]
    assert saved.lmstudio.min_context == 16384
    # One writer removes the route while another edits it: the removal holds.
    snapshot = app.settings
    cli.apply({("route", "qwen*"): REMOVE})
    edited = msgspec.structs.replace(
        snapshot,
        route=[config.RouteSettings(model="qwen*", upstream="local", target="x")],
    )
    result = app.save(edited, base=snapshot)
    assert result.skipped == (("route", "qwen*", "target"),)
    assert config.load(path).route == []
    assert "[[route]]" not in path.read_text()


def test_changes_write_no_empty_tables_and_keep_arrays_of_tables(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    store = SettingsStore(path)
    store.apply({("route", "claude-*"): {"model": "claude-*", "upstream": "local"}})
    text = path.read_text()
    assert "[[route]]" in text
    for table in ("[server]", "[chat]", "[logging]", "[usage]", "[lmstudio]"):
        assert table not in text
    # A field of the implicit default upstream writes that upstream out.
    store.apply({("upstream", "local", "max_tokens_limit"): 8192})
    saved = config.load(path)
    assert saved.upstream[0].base_url == "http://127.0.0.1:1234"
    assert saved.upstream[0].max_tokens_limit == 8192
    assert "[[upstream]]" in path.read_text()
    # Back to the default: the key goes, the table with it.
    store.apply({("lmstudio", "min_context"): 1000})
    store.apply({("lmstudio", "min_context"): REMOVE})
    assert "[lmstudio]" not in path.read_text()


def test_an_inline_array_becomes_tables_when_it_is_changed(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('# mine\nroute = [{model = "a*", upstream = "local"}]\n')
    store = SettingsStore(path)
    store.apply({("route", "b*"): {"model": "b*", "upstream": "local"}})
    text = path.read_text()
    assert text.startswith("# mine\n")
    assert text.count("[[route]]") == 2
    assert [r.model for r in config.parse(text).route] == ["a*", "b*"]


def test_reordered_routes_replace_the_list_and_keep_entry_comments(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[[route]]\nmodel = "a*"  # first\nupstream = "local"\n\n'
        '[[route]]\nmodel = "b*"  # second\nupstream = "local"\n'
    )
    store = SettingsStore(path)
    base = store.settings
    wanted = msgspec.structs.replace(base, route=list(reversed(base.route)))
    result = store.save(wanted, base=base)
    assert result.changed == (("route",),)
    text = path.read_text()
    assert text.index('"b*"  # second') < text.index('"a*"  # first')


def test_bad_values_are_refused_per_key_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    before = path.read_bytes()
    store = SettingsStore(path)
    with pytest.raises(SettingsInvalid) as caught:
        store.apply(
            {
                ("server", "port"): "4681",
                ("chat", "max_image_bytes"): True,
                ("lmstudio", "context_policy"): "sometimes",
            }
        )
    assert caught.value.problems == {
        "server.port": "must be a whole number, not text",
        "chat.max_image_bytes": "must be a whole number, not true or false",
        "lmstudio.context_policy": "must be one of auto, warn, off",
    }
    assert store.problems({("usage", "recrod"): False}) == {
        "usage.recrod": "not a setting LM Bridge knows (a typo?)"
    }
    with pytest.raises(SettingsInvalid) as caught:
        store.apply({("route", "x*"): {"model": "x*", "upstream": "nowhere"}})
    assert caught.value.problems == {
        "route[x*].upstream": "'nowhere' names no upstream (known: local)"
    }
    assert "route[x*].upstream" in str(caught.value)
    assert path.read_bytes() == before
    assert store.backups() == []
    assert store.problems({("server", "port"): 4681}) == {}


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "localhost"])
def test_the_proxy_cannot_take_an_upstreams_port(
    tmp_path: Path, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    store = SettingsStore(path)
    changes: dict[tuple[str, ...], object] = {
        ("server", "port"): 1234,
        ("server", "host"): host,
    }
    if host == "0.0.0.0":
        changes[("server", "access_token_env")] = "TOKEN_VAR"
        monkeypatch.setenv("TOKEN_VAR", "x" * 20)
    problems = store.problems(changes)
    assert list(problems) == ["server.port"]
    assert "1234 is the port of upstream 'local'" in problems["server.port"]
    with pytest.raises(SettingsInvalid, match="LM Bridge would answer in its place"):
        store.apply({("server", "port"): 1234})
    # The same port on another machine is no conflict.
    store.apply({("upstream", "local", "base_url"): "http://192.0.2.7:1234"})
    assert store.apply({("server", "port"): 1234}).settings.server.port == 1234


def test_a_new_file_is_private_and_a_rewrite_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    store = SettingsStore(path)
    store.apply({("server", "port"): 4681})
    assert mode(path) == 0o600
    assert path.read_text().startswith("# LM Bridge settings")
    path.chmod(0o640)
    result = store.apply({("server", "port"): 4682})
    assert mode(path) == 0o640
    assert result.backup is not None and mode(result.backup) == 0o600
    assert mode(store.backups_dir) == 0o700
    path.chmod(0o400)
    store.apply({("server", "port"): 4683})
    assert mode(path) == 0o400  # never widened
    assert not list(path.parent.glob(".config.toml*"))  # no temp file left


def test_a_link_planted_at_the_temp_name_is_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    planted = tmp_path / ".config.toml.lmbridge-tmp"
    planted.symlink_to(victim)
    SettingsStore(path).apply({("server", "port"): 4681})
    assert victim.read_text() == "not yours\n"
    assert planted.is_symlink() and planted.readlink() == victim
    assert config.load(path).server.port == 4681


def test_a_linked_config_file_is_edited_where_it_lives(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "lmbridge.toml"
    real.write_text(USER_FILE)
    path = tmp_path / "config.toml"
    path.symlink_to(real)
    SettingsStore(path).apply({("server", "port"): 4681})
    assert path.is_symlink()
    assert config.parse(real.read_text()).server.port == 4681


def test_backups_are_dated_unique_and_the_last_ten_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    store = SettingsStore(path)
    for port in range(4681, 4694):  # 13 saves, within a second or two
        store.apply({("server", "port"): port})
    backups = store.backups()
    assert len(backups) == 10
    assert len({b.path for b in backups}) == 10
    assert all(b.path.parent == tmp_path / "backups" for b in backups)
    assert all(b.path.name.startswith("config-") for b in backups)
    # Newest first: the newest backup holds the state before the last save.
    assert config.parse(backups[0].path.read_text()).server.port == 4692
    assert config.parse(backups[-1].path.read_text()).server.port == 4683
    # Saving an unchanged value writes nothing and keeps no copy.
    assert store.apply({("server", "port"): 4693}).backup is None
    assert len(store.backups()) == 10


def test_saves_and_edits_on_disk_are_announced(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    store = SettingsStore(path)
    heard: list[SettingsChange] = []
    unsubscribe = store.subscribe(heard.append)

    saved = store.apply({("server", "port"): 4681})
    assert [(c.origin, c.changed) for c in heard] == [("save", (("server", "port"),))]
    assert heard[0].settings == saved.settings and heard[0].backup == saved.backup
    assert store.check_disk() is None  # our own write is no outside change

    # An edit in a text editor (a new file renamed over the old one).
    edited = (
        path.read_text().replace("4681", "4690") + "\n[chat]\nmax_image_bytes = 5\n"
    )
    (tmp_path / "edit.tmp").write_text(edited)
    os.replace(tmp_path / "edit.tmp", path)
    change = store.check_disk()
    assert change is not None and change.origin == "disk"
    assert set(change.changed) == {("server", "port"), ("chat", "max_image_bytes")}
    assert change.touches("server") and not change.touches("route")
    assert heard[-1] is change and store.settings.server.port == 4690
    assert store.check_disk() is None

    # A touch without a change in content is no change.
    os.utime(path, ns=(1, 1))
    assert store.check_disk() is None

    # A broken edit is reported once; the last valid settings stay.
    path.write_text("[server\n")
    with pytest.raises(config.ConfigError):
        store.check_disk()
    assert store.check_disk() is None
    assert store.settings.server.port == 4690
    with pytest.raises(SettingsInvalid, match="not valid TOML"):
        store.apply({("server", "port"): 4682})
    assert path.read_text() == "[server\n"

    unsubscribe()
    path.write_text(USER_FILE)
    assert store.check_disk() is not None
    assert len(heard) == 2


def test_a_failing_subscriber_is_logged_and_the_others_still_hear(
    tmp_path: Path, expected_errors: object
) -> None:
    assert callable(expected_errors)
    expected_errors("a settings subscriber failed")
    store = SettingsStore(tmp_path / "config.toml")

    def broken(change: SettingsChange) -> None:
        raise RuntimeError("boom")

    heard: list[SettingsChange] = []
    store.subscribe(broken)
    store.subscribe(heard.append)
    store.apply({("server", "port"): 4681})
    assert len(heard) == 1


def test_credentials_in_a_base_url_move_to_the_keyring(
    tmp_path: Path, memory_keyring: MemoryKeyring
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    store = SettingsStore(path, SecretStore())
    result = store.apply(
        {("upstream", "local", "base_url"): "http://me:s3cret-pw@192.0.2.7:1234/v1"}
    )
    assert result.secrets_moved == ("local",)
    text = path.read_text()
    assert "s3cret-pw" not in text and "me:" not in text
    assert config.load(path).upstream[0].base_url == "http://192.0.2.7:1234/v1"
    assert memory_keyring.passwords[("lmbridge", "local@base_url")] == "me:s3cret-pw"
    assert "# LM Studio's own port" in text


def test_without_a_keyring_credentials_in_a_url_are_refused(
    tmp_path: Path, no_keyring: object
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    store = SettingsStore(path, SecretStore())
    with pytest.raises(SettingsInvalid) as caught:
        store.apply({("upstream", "local", "base_url"): "http://me:pw@192.0.2.7:1/"})
    assert list(caught.value.problems) == ["upstream[local].base_url"]
    assert (
        "remove them from the URL" in caught.value.problems["upstream[local].base_url"]
    )
    assert path.read_text() == USER_FILE


def test_the_app_service_saves_through_the_store(tmp_path: Path) -> None:
    """SettingsService.save (the pages' old entry point) keeps comments and
    the keys the pages did not change, and keeps dated backups."""
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    service = SettingsService(path)
    changed = service.merged(service.store.settings, {"server": {"port": 4681}})
    old, new = service.preview(changed)
    assert old == USER_FILE and "port = 4681  # the proxy's port" in new
    saved = service.save(changed)
    assert saved.backup is not None and saved.backup.parent.name == "backups"
    assert path.read_text() == new
    with pytest.raises(config.ConfigError, match=r"server\.port"):
        service.save(with_port(saved.settings, 1234))


def test_a_backup_is_restored_and_the_restore_can_be_undone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    store = SettingsStore(path)
    heard: list[SettingsChange] = []
    store.subscribe(heard.append)
    store.apply({("server", "port"): 4681})
    restored = store.restore(store.backups()[0])
    assert path.read_text() == USER_FILE
    assert restored.changed == (("server", "port"),)
    assert heard[-1].settings.server.port == 4680
    assert restored.backup is not None and "4681" in restored.backup.read_text()
    broken = tmp_path / "broken.toml"
    broken.write_text("[server]\nport = 'x'\n")
    with pytest.raises(SettingsInvalid):
        store.restore(broken)
    assert path.read_text() == USER_FILE


WRITER = """
import sys
from pathlib import Path
from lmbridge.settings_store import SettingsStore
store = SettingsStore(Path(sys.argv[1]))
for i in range(12):
    name = f"{sys.argv[2]}-{i}*"
    store.apply({("route", name): {"model": name, "upstream": "local"}})
"""


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    """The app and the CLI each re-read, change and write: with the folder
    lock their saves do not interleave, so every route of both is kept."""
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), who])
        for who in ("app", "cli")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    models = {r.model for r in config.load(path).route}
    assert models == {f"{who}-{i}*" for who in ("app", "cli") for i in range(12)}
    assert path.read_text().startswith(USER_FILE)


# -- any change, over any concurrent change: both are in the file ----------

_models = st.sampled_from(["a*", "b*", "c*", "d*", "e*"])
_routes = st.lists(
    st.builds(
        config.RouteSettings,
        model=_models,
        upstream=st.just("local"),
        target=st.one_of(st.none(), st.sampled_from(["x", "y"])),
    ),
    max_size=4,
    unique_by=lambda r: r.model,
)


def _variant(draw_port: int, routes: list[config.RouteSettings], ctx: int) -> str:
    settings = config.Settings(route=routes)
    settings.server.port = draw_port
    settings.lmstudio.min_context = ctx
    return "# a comment of the user\n" + config.dump(settings).decode()


@settings(max_examples=25, deadline=None)
@given(
    start_routes=_routes,
    page_routes=_routes,
    page_port=st.integers(4000, 4100),
    other_ctx=st.integers(1000, 90000),
)
def test_a_writer_applies_only_its_own_change(
    tmp_path_factory: pytest.TempPathFactory,
    start_routes: list[config.RouteSettings],
    page_routes: list[config.RouteSettings],
    page_port: int,
    other_ctx: int,
) -> None:
    path = tmp_path_factory.mktemp("prop") / "config.toml"
    path.write_text(_variant(4680, start_routes, 32768))
    store = SettingsStore(path)
    snapshot = store.settings
    # Another writer changes a key the page does not touch.
    SettingsStore(path).apply({("lmstudio", "min_context"): other_ctx})
    wanted = msgspec.structs.replace(with_port(snapshot, page_port), route=page_routes)
    store.save(wanted, base=snapshot)
    saved = config.load(path)
    assert saved.server.port == page_port
    assert saved.route == page_routes
    assert saved.lmstudio.min_context == other_ctx
    assert path.read_text().startswith("# a comment of the user\n")


def test_added_tables_are_laid_out_like_the_users(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE + "\n[lmstudio]\nmin_context = 1000\n")
    store = SettingsStore(path)
    store.apply(
        {
            ("route", "b*"): {"model": "b*", "upstream": "local"},
            ("route", "c*"): {"model": "c*", "upstream": "local"},
            ("chat", "default_text_model"): "qwen3",
        }
    )
    base = store.settings
    first = config.RouteSettings(model="a*", upstream="local")
    store.save(msgspec.structs.replace(base, route=[first, *base.route]), base=base)
    assert path.read_text() == USER_FILE + (
        "\n[lmstudio]\nmin_context = 1000\n"
        '\n[[route]]\nmodel = "a*"\nupstream = "local"\n'
        '\n[[route]]\nmodel = "b*"\nupstream = "local"\n'
        '\n[[route]]\nmodel = "c*"\nupstream = "local"\n'
        '\n[chat]\ndefault_text_model = "qwen3"\n'
    )
