"""Secrets on the Settings page: upstream API keys, the web search
provider's key and the proxy's access token, all kept in the OS keyring
(never in config.toml) and shown masked.

The widgets reach the keyring through the page's `SettingsManager`; a
change applies when the proxy restarts, which the page offers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

from lmbridge import config
from lmbridge.gui import message
from lmbridge.gui.settings.manager import SettingsManager
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import button, hint_label


def masked(key: str) -> str:
    """A stored key as the page shows it: dots and the last four characters."""
    return "•" * 8 + (key[-4:] if len(key) >= 12 else "")


@dataclass(frozen=True)
class KeyEntry:
    """A key the API keys box keeps: its keyring entry, its row's label,
    how messages name it, and what a change needs."""

    entry: str
    label: str
    what: str
    applies: str
    tip: str = ""


def upstream_key(name: str) -> KeyEntry:
    """The API key of the upstream `name` (its keyring entry is its name)."""
    return KeyEntry(
        name, name, name, "Restart the proxy so the upstream uses the new key."
    )


WEB_SEARCH_KEY = KeyEntry(
    config.WEB_SEARCH_SECRET,
    "Web search",
    "the web search provider",
    "Restart the proxy so web search uses the new key.",
    "The Brave Search or Tavily key for [web_search] (SearXNG needs none);"
    " the same entry as `lmbridge keys set web-search`.",
)


class KeyRow:
    """One key: its state, a masked entry, Save and Remove."""

    def __init__(self, key: KeyEntry) -> None:
        self.key = key
        self.name = key.entry
        self.title = QLabel(key.label)
        self.title.setToolTip(key.tip)
        self.state = QLabel("checking…")
        self.entry = QLineEdit()
        self.entry.setEchoMode(QLineEdit.EchoMode.Password)
        self.entry.setPlaceholderText("paste a new key")
        self.save = button("Save key")
        self.remove = button("Remove")


class KeysBox(QGroupBox):
    """API keys of the upstreams that take one, and the web search
    provider's."""

    def __init__(
        self,
        manager: SettingsManager,
        tasks: Tasks,
        on_changed: Callable[[str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("API keys", parent)
        self.manager = manager
        self.tasks = tasks
        self.on_changed = on_changed
        self.grid = QGridLayout(self)
        self.rows: dict[str, KeyRow] = {}
        self.upstream_names: list[str] = []
        # Bumped by every change, so a slow keyring read never overwrites it.
        self.seen = 0

    def show_names(self, names: list[str]) -> None:
        """A row for each upstream of `names`, then the web search row."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.rows = {}
        self.upstream_names = list(names)
        self.seen += 1
        status = self.manager.keyring_status()
        note = (
            "Keys go to the system keyring; LM Bridge never writes them to a file."
            if status.secure
            else f"Keys entered here last for this session only: {status.reason}."
        )
        self.grid.addWidget(hint_label(note), 0, 0, 1, 5)
        keys = [upstream_key(name) for name in names] + [WEB_SEARCH_KEY]
        for i, key in enumerate(keys, start=1):
            row = self.rows[key.entry] = KeyRow(key)
            row.save.clicked.connect(lambda _=False, r=row: self._save(r))
            row.remove.clicked.connect(lambda _=False, r=row: self._remove(r))
            for column, widget in enumerate(
                (row.title, row.state, row.entry, row.save, row.remove)
            ):
                self.grid.addWidget(widget, i, column)
        self.tasks.start(self._read(), what="Reading the keyring")

    def _state_text(self, row: KeyRow, key: str | None) -> str:
        text = masked(key) if key else "no key stored"
        env = self.manager.settings.web_search.api_key_env
        if row.key is WEB_SEARCH_KEY and env:
            text += f"; ${env} is used instead"
        return text

    async def _read(self) -> None:
        seen = self.seen
        for row in list(self.rows.values()):
            key = await self.manager.api_key(row.name)
            if self.seen == seen:
                row.state.setText(self._state_text(row, key))
                row.remove.setEnabled(key is not None)

    def _save(self, row: KeyRow) -> None:
        key = row.entry.text().strip()
        if not key:
            message.warning(f"Type or paste the key of {row.key.what} first")
            return
        what = f"Saving the key of {row.key.what}"
        self.tasks.start(self._store(row, key), what=what)

    async def _store(self, row: KeyRow, key: str) -> None:
        stored = await self.manager.set_api_key(row.name, key)
        self.seen += 1
        row.entry.clear()
        row.state.setText(self._state_text(row, key))
        row.remove.setEnabled(True)
        if stored.where == "keyring":
            message.info(f"The key of {row.key.what} is in the keyring")
        else:
            message.warning(
                f"The key of {row.key.what} is kept for this session only: "
                f"{stored.reason}"
            )
        self.on_changed(row.key.applies)

    def _remove(self, row: KeyRow) -> None:
        what = f"Removing the key of {row.key.what}"
        self.tasks.start(self._delete(row), what=what)

    async def _delete(self, row: KeyRow) -> None:
        await self.manager.delete_api_key(row.name)
        self.seen += 1
        row.state.setText(self._state_text(row, None))
        row.remove.setEnabled(False)
        message.info(f"Removed the key of {row.key.what}")
        self.on_changed(row.key.applies)


class AccessTokenRow(QWidget):
    """The token clients must send, kept in the keyring: state, entry, Save,
    Remove. A token set in the file or through an environment variable is
    shown as such and wins."""

    def __init__(
        self,
        manager: SettingsManager,
        tasks: Tasks,
        on_changed: Callable[[str], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.manager = manager
        self.tasks = tasks
        self.on_changed = on_changed
        self.state = QLabel()
        self.entry = QLineEdit()
        self.entry.setEchoMode(QLineEdit.EchoMode.Password)
        self.entry.setPlaceholderText("a new token clients must send")
        self.save = button("Save token")
        self.remove = button("Remove")
        self.save.clicked.connect(self._save)
        self.remove.clicked.connect(self._remove)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.state)
        layout.addWidget(self.entry, 1)
        layout.addWidget(self.save)
        layout.addWidget(self.remove)
        self.refresh()

    def refresh(self) -> None:
        server = self.manager.settings.server
        token = self.manager.access_token
        if server.access_token_env:
            self.state.setText(f"from ${server.access_token_env}")
        elif server.access_token:
            self.state.setText(f"{masked(server.access_token)} (in the file)")
        else:
            self.state.setText(masked(token) if token else "none (not required)")
        self.remove.setEnabled(bool(token))

    def _save(self) -> None:
        token = self.entry.text().strip()
        if len(token) < 8:
            message.warning("Use an access token of 8 characters or more")
            return
        self.tasks.start(self._store(token), what="Saving the access token")

    async def _store(self, token: str) -> None:
        stored = await self.manager.set_access_token(token)
        self.entry.clear()
        self.refresh()
        if stored.where == "keyring":
            message.info("The access token is in the keyring")
        else:
            message.warning(
                f"The access token is kept for this session only: {stored.reason}"
            )
        self.on_changed("Restart the proxy so it asks clients for the new token.")

    def _remove(self) -> None:
        self.tasks.start(self._delete(), what="Removing the access token")

    async def _delete(self) -> None:
        await self.manager.delete_access_token()
        self.refresh()
        message.info("Removed the access token")
        self.on_changed("Restart the proxy so it stops asking for the token.")
