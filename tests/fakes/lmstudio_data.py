"""What the fake LM Studio knows: models on disk, its catalog, error frames.

`DEFAULT_DOWNLOADED` are `listDownloadedModels` entries; `DEFAULT_CATALOG`
are search results (`searchModels`) with their download options
(`getModelDownloadOptions`) and the model each download adds to the disk.
Frames follow lmstudio==1.5.0 (`_sdk_models`: `LlmInfo`,
`ModelSearchResultEntryData`, `ModelSearchResultDownloadOptionData`).
"""

from __future__ import annotations

from typing import Any

NOT_FOUND_CODE = "generic.noModelMatchingQuery"

DEFAULT_CONTEXT_LENGTH = 4096  # what LM Studio loads with when not told

DEFAULT_DOWNLOADED: list[dict[str, Any]] = [
    {
        "type": "llm",
        "modelKey": "qwen/qwen3-coder-30b",
        "format": "gguf",
        "displayName": "Qwen3 Coder 30B",
        "path": "lmstudio-community/Qwen3-Coder-30B-A3B-Instruct-GGUF/"
        "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf",
        "sizeBytes": 18556686752,
        "paramsString": "30B-A3B",
        "architecture": "qwen3moe",
        "vision": False,
        "trainedForToolUse": True,
        "maxContextLength": 262144,
    },
    {
        "type": "llm",
        "modelKey": "google/gemma-3-4b",
        "format": "gguf",
        "displayName": "Gemma 3 4B",
        "path": "lmstudio-community/gemma-3-4b-it-GGUF/gemma-3-4b-it-Q4_K_M.gguf",
        "sizeBytes": 3341081472,
        "paramsString": "4B",
        "architecture": "gemma3",
        "vision": True,
        "trainedForToolUse": False,
        "maxContextLength": 131072,
    },
    {
        "type": "embedding",
        "modelKey": "text-embedding-nomic-embed-text-v1.5",
        "format": "gguf",
        "displayName": "Nomic Embed Text v1.5",
        "path": "nomic-ai/nomic-embed-text-v1.5-GGUF/nomic-embed-text-v1.5.Q4_K_M.gguf",
        "sizeBytes": 84106624,
        "paramsString": None,
        "architecture": "nomic-bert",
        "maxContextLength": 2048,
    },
]

MALFORMED_ENTRY: dict[str, Any] = {
    "type": "llm",
    "modelKey": "acme/future-format-7b",
    "format": "future-format",
    "displayName": "Future Format 7B",
    "path": "acme/future-format-7b/model.ff",
    "sizeBytes": 7000000000,
    "paramsString": "7B",
    "architecture": "acme",
    "vision": False,
    "trainedForToolUse": False,
    "maxContextLength": 32768,
}

GIB = 1024**3


def _llm(key: str, name: str, path: str, size: int, params: str) -> dict[str, Any]:
    return {
        "type": "llm",
        "modelKey": key,
        "format": "gguf",
        "displayName": name,
        "path": path,
        "sizeBytes": size,
        "paramsString": params,
        "architecture": "qwen3",
        "vision": False,
        "trainedForToolUse": True,
        "maxContextLength": 262144,
    }


def _option(
    repo: str, file: str, size: int, fit: str, quant: str, recommended: bool = False
) -> dict[str, Any]:
    return {
        "name": file,
        "sizeBytes": size,
        "fitEstimation": fit,
        "downloadIdentifier": f"{repo}/{file}",
        "indexedModelIdentifier": repo,
        "quantization": quant,
        "recommended": recommended,
    }


_QWEN4_REPO = "lmstudio-community/Qwen3-4B-Instruct-2507-GGUF"
_DEVSTRAL_REPO = "lmstudio-community/Devstral-Small-2507-GGUF"

DEFAULT_CATALOG: list[dict[str, Any]] = [
    {
        "name": "qwen/qwen3-4b-2507",
        "identifier": {"type": "catalog", "identifier": "qwen/qwen3-4b-2507"},
        "staffPick": True,
        "options": [
            _option(
                _QWEN4_REPO,
                "Qwen3-4B-Instruct-2507-Q4_K_M.gguf",
                2497280256,
                "fullGPUOffload",
                "Q4_K_M",
                recommended=True,
            ),
            _option(
                _QWEN4_REPO,
                "Qwen3-4B-Instruct-2507-Q8_0.gguf",
                4280405248,
                "partialGPUOffload",
                "Q8_0",
            ),
        ],
        "model": _llm(
            "qwen/qwen3-4b-2507",
            "Qwen3 4B Instruct 2507",
            f"{_QWEN4_REPO}/Qwen3-4B-Instruct-2507-Q4_K_M.gguf",
            2497280256,
            "4B",
        ),
    },
    {
        "name": "lmstudio-community/Qwen3-4B-Instruct-2507-GGUF",
        "identifier": {"type": "hf", "identifier": _QWEN4_REPO},
        "exact": False,
        "options": [
            _option(
                _QWEN4_REPO,
                "Qwen3-4B-Instruct-2507-Q3_K_L.gguf",
                2240000000,
                "fitWithoutGPU",
                "Q3_K_L",
            ),
        ],
        "model": _llm(
            "qwen3-4b-instruct-2507",
            "Qwen3 4B Instruct 2507 (Q3_K_L)",
            f"{_QWEN4_REPO}/Qwen3-4B-Instruct-2507-Q3_K_L.gguf",
            2240000000,
            "4B",
        ),
    },
    {
        "name": "mistralai/devstral-small-2507",
        "identifier": {
            "type": "catalog",
            "identifier": "mistralai/devstral-small-2507",
        },
        "options": [
            _option(
                _DEVSTRAL_REPO,
                "Devstral-Small-2507-Q8_0.gguf",
                25054790912,
                "willNotFit",
                "Q8_0",
            ),
            _option(
                _DEVSTRAL_REPO,
                "Devstral-Small-2507-Q4_K_M.gguf",
                14333907200,
                "partialGPUOffload",
                "Q4_K_M",
            ),
        ],
        "model": _llm(
            "mistralai/devstral-small-2507",
            "Devstral Small 2507",
            f"{_DEVSTRAL_REPO}/Devstral-Small-2507-Q4_K_M.gguf",
            14333907200,
            "24B",
        ),
    },
]

ODD_OPTIONS: list[dict[str, Any]] = [
    # A verdict this SDK does not know, and an entry missing its size.
    {
        **_option(_QWEN4_REPO, "Qwen3-4B-Instruct-2507-F16.gguf", 8 * GIB, "", "F16"),
        "fitEstimation": "fitsInTheCloud",
    },
    {"name": "broken.gguf", "downloadIdentifier": "x/broken.gguf"},
]


class RpcFailure(Exception):
    """Raised inside a handler to answer with `rpcError` / `channelError`."""

    def __init__(self, title: str, *, code: str | None = None, cause: str = "") -> None:
        super().__init__(title)
        self.error: dict[str, Any] = {"title": title}
        if cause:
            self.error["cause"] = cause
        if code is not None:
            self.error["displayData"] = {"code": code}


def not_found(what: str) -> RpcFailure:
    """LM Studio's error for a model it does not have."""
    return RpcFailure(
        f"No model found that fits the query: {what}", code=NOT_FOUND_CODE
    )
