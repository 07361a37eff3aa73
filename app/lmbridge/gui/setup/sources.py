"""What first-run setup reads from the rest of the app, as small protocols:
LM Studio's downloaded models (`models.manager.ModelsManager`) and the Azure
accounts (`azure.manager.AzureAccounts`). The shell passes the real objects;
this feature does not import the Models or Azure features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from PySide6.QtCore import SignalInstance

from lmbridge.lmstudio import DownloadedModel


class DownloadedModels(Protocol):
    """LM Studio's downloaded models, refreshed on request."""

    @property
    def downloaded(self) -> tuple[DownloadedModel, ...]: ...

    @property
    def changed(self) -> SignalInstance: ...

    def refresh(self) -> None: ...


class AzureAccountLine(Protocol):
    """One Azure account as setup lists it."""

    @property
    def title(self) -> str: ...

    @property
    def auth(self) -> str: ...

    def describe(self) -> str: ...


class AzureSignIn(Protocol):
    """The Azure accounts, and signing in to one."""

    @property
    def accounts(self) -> Mapping[str, AzureAccountLine]: ...

    def configured(self) -> bool: ...

    async def sign_in(self, name: str) -> Any: ...
