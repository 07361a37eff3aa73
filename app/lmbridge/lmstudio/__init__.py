"""LM Studio model management over the official `lmstudio` SDK.

`LMStudioService` (`service.py`: loading) is the entry point; it extends
`ModelCatalog` (`catalog.py`: listing, the loaded cache, unloading). Beneath
them: discovery (`discovery.py`), one SDK client kept connected across
LM Studio restarts (`connection.py`), typed calls over the SDK
(`sdk_calls.py`), and the one place SDK errors become LM Bridge errors
(`errors.py`). Only the structs in `structs.py` leave this
package; events go out on the bus under the `TOPIC_*` names.
"""

from .catalog import ModelCatalog
from .discovery import discover
from .service import LMStudioService
from .structs import (
    DEFAULT_ADDRESS,
    DEFAULT_MIN_CONTEXT,
    TOPIC_LOAD_PROGRESS,
    TOPIC_LOADED,
    TOPIC_STATE,
    ConnectionState,
    ConnectionStatus,
    ContextPolicy,
    Discovery,
    DiscoverySource,
    DownloadedModel,
    DownloadedModels,
    EnsureAction,
    EnsureResult,
    GpuOffload,
    LMStudioOptions,
    LoadedModel,
    LoadProgress,
    ModelKind,
)

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_MIN_CONTEXT",
    "TOPIC_LOADED",
    "TOPIC_LOAD_PROGRESS",
    "TOPIC_STATE",
    "ConnectionState",
    "ConnectionStatus",
    "ContextPolicy",
    "Discovery",
    "DiscoverySource",
    "DownloadedModel",
    "DownloadedModels",
    "EnsureAction",
    "EnsureResult",
    "GpuOffload",
    "LMStudioOptions",
    "LMStudioService",
    "LoadProgress",
    "LoadedModel",
    "ModelCatalog",
    "ModelKind",
    "discover",
]
