"""The typed values the LM Studio service hands to the rest of LM Bridge.

Nothing from the `lmstudio` SDK crosses this package's boundary: routes, the
router and the GUI see only these structs, the enums and the event topics.
"""

from __future__ import annotations

import enum

import msgspec

# Event bus topics published by this package.
TOPIC_STATE = "lmstudio.state"
"""Payload: `ConnectionStatus`, on every connection state change."""
TOPIC_LOAD_PROGRESS = "lmstudio.load_progress"
"""Payload: `LoadProgress`, while a model loads (0.0 ... 1.0)."""
TOPIC_LOADED = "lmstudio.loaded"
"""Payload: `tuple[LoadedModel, ...]`, whenever the loaded list is refreshed."""

DEFAULT_MIN_CONTEXT = 32768
DEFAULT_ADDRESS = "127.0.0.1:1234"


GpuOffload = float | str
"""GPU offload: a ratio 0.0 ... 1.0, or LM Studio's "max" / "off"."""


class ConnectionState(enum.StrEnum):
    """Where the link to LM Studio stands; published on `TOPIC_STATE`."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


class DiscoverySource(enum.StrEnum):
    """How the LM Studio address was found."""

    CONFIGURED = "configured"
    SERVER_FILE = "server-file"
    SDK_DEFAULT = "sdk-default"
    FALLBACK = "fallback"


class Discovery(msgspec.Struct, frozen=True):
    """A running LM Studio: `host:port` and which discovery step found it."""

    address: str
    source: DiscoverySource


class ConnectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The connection to LM Studio as the GUI and `/health` show it."""

    state: ConnectionState
    address: str | None = None
    source: DiscoverySource | None = None
    error: str | None = None


class ModelKind(enum.StrEnum):
    """LM Studio's model domains that LM Bridge manages."""

    LLM = "llm"
    EMBEDDING = "embedding"


class DownloadedModel(msgspec.Struct, frozen=True, kw_only=True):
    """A model on disk that LM Studio can load."""

    key: str
    display_name: str
    kind: ModelKind
    format: str
    size_bytes: int
    params: str | None
    architecture: str | None
    max_context_length: int
    vision: bool = False
    trained_for_tool_use: bool = False
    path: str = ""


class DownloadedModels(msgspec.Struct, frozen=True):
    """The downloaded models, plus what could not be read.

    `skipped` names the entries LM Studio listed that the SDK cannot parse
    (an unknown `format`, a missing field): one bad entry never hides the rest.
    """

    models: tuple[DownloadedModel, ...]
    skipped: tuple[str, ...] = ()


class LoadedModel(msgspec.Struct, frozen=True, kw_only=True):
    """A model instance loaded in LM Studio's memory.

    `identifier` is what requests name (usually the key); `ttl_seconds` is the
    idle time-to-live when known (None: no TTL, or loaded outside LM Bridge).
    """

    identifier: str
    key: str
    kind: ModelKind
    context_length: int
    max_context_length: int | None = None
    ttl_seconds: int | None = None
    display_name: str = ""


class LoadProgress(msgspec.Struct, frozen=True):
    """One progress step of a model load."""

    model_key: str
    fraction: float


class ContextPolicy(enum.StrEnum):
    """What to do when a loaded model's context is below the minimum."""

    AUTO = "auto"  # reload it with the minimum
    WARN = "warn"  # only report it
    OFF = "off"  # do not look


class EnsureAction(enum.StrEnum):
    """What `ensure_context` did."""

    UNCHANGED = "unchanged"
    RELOADED = "reloaded"
    NOT_LOADED = "not_loaded"
    BELOW_MINIMUM = "below_minimum"
    SKIPPED = "skipped"


class EnsureResult(msgspec.Struct, frozen=True, kw_only=True):
    """What `ensure_context` found and did, with a sentence for the log."""

    model_key: str
    action: EnsureAction
    previous: int | None = None
    current: int | None = None
    message: str = ""


class LMStudioOptions(msgspec.Struct, frozen=True, kw_only=True):
    """The service's settings (mapped from LM Bridge's settings by the caller).

    `address` None means "discover". Loads on demand use
    `load_context_length` and `load_ttl_seconds` (None: no TTL, the model
    stays loaded), never LM Studio's JIT defaults.
    """

    address: str | None = None
    min_context: int = DEFAULT_MIN_CONTEXT
    context_policy: ContextPolicy = ContextPolicy.AUTO
    load_context_length: int = DEFAULT_MIN_CONTEXT
    load_ttl_seconds: int | None = None
    load_timeout: float = 300.0
    probe_timeout: float = 0.5
    connect_timeout: float = 5.0
    health_interval: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
