"""Usage: the Usage page's one way to the request history in the database
(`UsageStore`, there when LM Bridge's database could be opened)."""

from __future__ import annotations

from lmbridge.gui.controller import ProxyController
from lmbridge.gui.usage.data import UsageData, load_usage


class UsageManager:
    """Reads the last days of usage, after writing out what is pending."""

    def __init__(self, controller: ProxyController) -> None:
        self.controller = controller

    @property
    def available(self) -> bool:
        """False when LM Bridge's database could not be opened."""
        return self.controller.usage is not None

    async def load(self, days: int) -> UsageData | None:
        """The last `days` days; None when the history is unavailable."""
        await self.controller.flush_usage()
        store = self.controller.usage
        if store is None:
            return None
        return await load_usage(store, days)
