"""LM Studio model management over the official `lmstudio` SDK.

`LMStudioService` (`service.py`: loading) is the entry point; it extends
`ModelCatalog` (`catalog.py`: listing, the loaded cache, unloading) and
exposes `ModelDownloads` (`downloads.py`: catalog search and downloads) as
`service.downloads`. Beneath them: discovery (`discovery.py`), one SDK
client kept connected across LM Studio restarts (`connection.py`), typed
calls over the SDK (`sdk_calls.py`, `sdk_repository.py`), single-flight
tasks (`flights.py`), and the one place SDK errors become LM Bridge errors
(`errors.py`). Only the structs in `structs.py` leave this package; events
go out on the bus under the `TOPIC_*` names.
"""

from .catalog import ModelCatalog
from .context_rule import below_minimum, context_target
from .discovery import discover
from .downloads import ModelDownloads, pick_download
from .service import LMStudioService
from .structs import (
    DEFAULT_ADDRESS,
    DEFAULT_MIN_CONTEXT,
    TOPIC_DOWNLOAD_PROGRESS,
    TOPIC_LOAD_PROGRESS,
    TOPIC_LOAD_WARNING,
    TOPIC_LOADED,
    TOPIC_STATE,
    CatalogModel,
    CatalogSource,
    ConnectionState,
    ConnectionStatus,
    ContextPolicy,
    Discovery,
    DiscoverySource,
    DownloadedModel,
    DownloadedModels,
    DownloadOption,
    DownloadProgress,
    DownloadResult,
    DownloadState,
    EnsureAction,
    EnsureResult,
    FitEstimate,
    GpuOffload,
    KvCacheType,
    LMStudioOptions,
    LoadedModel,
    LoadOptions,
    LoadProgress,
    LoadWarning,
    ModelKind,
    check_gpu_offload,
)

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_MIN_CONTEXT",
    "TOPIC_DOWNLOAD_PROGRESS",
    "TOPIC_LOADED",
    "TOPIC_LOAD_PROGRESS",
    "TOPIC_LOAD_WARNING",
    "TOPIC_STATE",
    "CatalogModel",
    "CatalogSource",
    "ConnectionState",
    "ConnectionStatus",
    "ContextPolicy",
    "Discovery",
    "DiscoverySource",
    "DownloadOption",
    "DownloadProgress",
    "DownloadResult",
    "DownloadState",
    "DownloadedModel",
    "DownloadedModels",
    "EnsureAction",
    "EnsureResult",
    "FitEstimate",
    "GpuOffload",
    "KvCacheType",
    "LMStudioOptions",
    "LMStudioService",
    "LoadOptions",
    "LoadProgress",
    "LoadWarning",
    "LoadedModel",
    "ModelCatalog",
    "ModelDownloads",
    "ModelKind",
    "below_minimum",
    "check_gpu_offload",
    "context_target",
    "discover",
    "pick_download",
]
