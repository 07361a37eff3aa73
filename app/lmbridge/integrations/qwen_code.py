"""Qwen Code: OPENAI_BASE_URL, OPENAI_API_KEY and OPENAI_MODEL in ~/.qwen/.env.

Qwen Code speaks Chat Completions to any OpenAI-compatible server given by
those variables (its `openai` auth type), reading them from the
environment or the first .env it finds (the project's, then ~/.qwen/.env).
"""

from __future__ import annotations

from pathlib import Path

from lmbridge.integrations.base import Endpoint, ModelChoice
from lmbridge.integrations.envfile import EnvFileTool

ID = "qwen-code"
EXAMPLE_MODEL = "qwen/qwen3-coder-30b"


def env_path(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".qwen" / ".env"


def variables(endpoint: Endpoint, choice: ModelChoice) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": endpoint.v1,
        "OPENAI_API_KEY": endpoint.key,
        "OPENAI_MODEL": choice.model or EXAMPLE_MODEL,
    }


TOOL = EnvFileTool(
    id=ID,
    name="Qwen Code",
    protocol="openai",
    path=env_path,
    variables=variables,
    url_variable="OPENAI_BASE_URL",
    model_variable="OPENAI_MODEL",
    steps=(
        "Run `qwen`; if it asks how to authenticate, choose OpenAI (the "
        'variables are filled in). `qwen -p "..."` runs one prompt.',
    ),
)
