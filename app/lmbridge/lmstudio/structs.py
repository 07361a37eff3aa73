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
TOPIC_LOAD_WARNING = "lmstudio.load_warning"
"""Payload: `LoadWarning`, when LM Studio loaded less context than asked."""
TOPIC_DOWNLOAD_PROGRESS = "lmstudio.download_progress"
"""Payload: `DownloadProgress`, while a model downloads and once when it ends."""

DEFAULT_MIN_CONTEXT = 32768
DEFAULT_ADDRESS = "127.0.0.1:1234"


GpuOffload = float | str
"""GPU offload: a ratio 0.0 ... 1.0, or LM Studio's "max" / "off"."""

GPU_OFFLOAD_WORDS = ("max", "off")


def check_gpu_offload(value: GpuOffload) -> GpuOffload:
    """`value` if LM Studio accepts it as a GPU offload, else ValueError."""
    if isinstance(value, str):
        if value not in GPU_OFFLOAD_WORDS:
            raise ValueError(f"GPU offload must be 0.0 ... 1.0, max or off: {value!r}")
        return value
    if isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"GPU offload must be 0.0 ... 1.0, max or off: {value!r}")
    return float(value)


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
    `context_length` is what LM Studio reports it loaded with;
    `requested_context_length` what LM Bridge asked for (None: not asked, or
    loaded outside LM Bridge). `size_bytes` is the model's size on disk, about
    what its weights take in memory (None: not reported).
    """

    identifier: str
    key: str
    kind: ModelKind
    context_length: int
    max_context_length: int | None = None
    ttl_seconds: int | None = None
    display_name: str = ""
    requested_context_length: int | None = None
    size_bytes: int | None = None

    @property
    def context_shortfall(self) -> int:
        """Tokens of context asked for but not given (0: got what was asked)."""
        if self.requested_context_length is None:
            return 0
        return max(0, self.requested_context_length - self.context_length)


class KvCacheType(enum.StrEnum):
    """llama.cpp KV-cache quantization types LM Studio accepts."""

    F32 = "f32"
    F16 = "f16"
    Q8_0 = "q8_0"
    Q5_1 = "q5_1"
    Q5_0 = "q5_0"
    Q4_1 = "q4_1"
    Q4_0 = "q4_0"
    IQ4_NL = "iq4_nl"


class LoadOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How to load a model; every field None means LM Studio's own default.

    `gpu_offload` is a ratio 0.0 ... 1.0 or "max" / "off"; `ttl_seconds`
    unloads the model after that much idle time. Flash attention and the
    KV-cache types apply to LLMs only (embedding models ignore them).
    Quantizing the V cache needs flash attention in llama.cpp.
    """

    context_length: int | None = None
    gpu_offload: GpuOffload | None = None
    flash_attention: bool | None = None
    k_cache_type: KvCacheType | None = None
    v_cache_type: KvCacheType | None = None
    ttl_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.context_length is not None and self.context_length < 1:
            raise ValueError(f"context length must be positive: {self.context_length}")
        if self.ttl_seconds is not None and self.ttl_seconds < 1:
            raise ValueError(f"TTL must be at least 1 second: {self.ttl_seconds}")
        if self.gpu_offload is not None:
            check_gpu_offload(self.gpu_offload)

    def over(self, base: LoadOptions) -> LoadOptions:
        """These options, with `base` filling in every field left unset."""
        mine = msgspec.structs.asdict(self)
        theirs = msgspec.structs.asdict(base)
        return LoadOptions(
            **{k: theirs[k] if v is None else v for k, v in mine.items()}
        )


class LoadWarning(msgspec.Struct, frozen=True, kw_only=True):
    """LM Studio loaded a model with less context than asked for."""

    model_key: str
    identifier: str
    requested_context_length: int
    context_length: int
    message: str


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
    stays loaded), never LM Studio's JIT defaults. `load_defaults` fills in
    what a load does not set (GPU offload, flash attention, KV-cache types).
    """

    address: str | None = None
    min_context: int = DEFAULT_MIN_CONTEXT
    context_policy: ContextPolicy = ContextPolicy.AUTO
    load_context_length: int = DEFAULT_MIN_CONTEXT
    load_ttl_seconds: int | None = None
    load_defaults: LoadOptions = msgspec.field(default_factory=LoadOptions)
    load_timeout: float = 300.0
    probe_timeout: float = 0.5
    connect_timeout: float = 5.0
    health_interval: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 10.0


# -- LM Studio's model catalog and downloads --------------------------------


class CatalogSource(enum.StrEnum):
    """Where a search result comes from: LM Studio's catalog or Hugging Face."""

    CATALOG = "catalog"
    HUGGING_FACE = "hf"


class CatalogModel(msgspec.Struct, frozen=True, kw_only=True):
    """One search result: a model that can be downloaded.

    `name` is what `lmbridge models download` takes; `source` and
    `identifier` are how LM Studio finds it again for its download options.
    """

    name: str
    source: CatalogSource
    identifier: str
    exact: bool = False
    staff_pick: bool = False


class FitEstimate(enum.StrEnum):
    """LM Studio's verdict on whether a download fits this machine."""

    FULL_GPU = "fullGPUOffload"
    PARTIAL_GPU = "partialGPUOffload"
    CPU_ONLY = "fitWithoutGPU"
    WILL_NOT_FIT = "willNotFit"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        """A few words for a table or a badge."""
        return _FIT_LABELS[self]


_FIT_LABELS = {
    FitEstimate.FULL_GPU: "fits in GPU",
    FitEstimate.PARTIAL_GPU: "partly in GPU",
    FitEstimate.CPU_ONLY: "CPU only",
    FitEstimate.WILL_NOT_FIT: "will not fit",
    FitEstimate.UNKNOWN: "unknown",
}


class DownloadOption(msgspec.Struct, frozen=True, kw_only=True):
    """One file of a search result (usually one quantization) to download.

    `key` (`<model>@<quantization>`) names it for `lmbridge models download`,
    for progress events and for `cancel_download`; `download_identifier` is
    LM Studio's handle for it. `fit` and `recommended` are LM Studio's verdict
    for this machine.
    """

    key: str
    model: str
    name: str
    size_bytes: int
    fit: FitEstimate
    download_identifier: str
    quantization: str | None = None
    recommended: bool = False


class DownloadState(enum.StrEnum):
    """Where a download stands; the last three end it."""

    DOWNLOADING = "downloading"
    FINALIZING = "finalizing"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class DownloadProgress(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a download; published on `TOPIC_DOWNLOAD_PROGRESS`.

    `model_key` (what `load` takes) is set once DONE; `error` once FAILED.
    """

    key: str
    state: DownloadState
    fraction: float = 0.0
    downloaded_bytes: int = 0
    total_bytes: int = 0
    speed_bytes_per_second: float = 0.0
    model_key: str | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        """True once the download is done, cancelled or failed."""
        return self.state in (
            DownloadState.DONE,
            DownloadState.CANCELLED,
            DownloadState.FAILED,
        )


class DownloadResult(msgspec.Struct, frozen=True, kw_only=True):
    """A finished download: the key to load it by, and its listing if known."""

    key: str
    model_key: str
    model: DownloadedModel | None = None
