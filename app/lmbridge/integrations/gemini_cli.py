"""Gemini CLI: GOOGLE_GEMINI_BASE_URL and GEMINI_API_KEY in ~/.gemini/.env.

Gemini CLI speaks the Gemini API (`/v1beta/models/{model}:streamGenerate
Content`) through Google's SDK, which takes its base URL, without
/v1beta, from GOOGLE_GEMINI_BASE_URL, and sends GEMINI_API_KEY as
`x-goog-api-key`. GEMINI_MODEL is the default model. It reads them from
the environment or the first .env it finds (the project's, then
~/.gemini/.env). LM Bridge answers it on its Gemini API front door.
"""

from __future__ import annotations

from pathlib import Path

from lmbridge.integrations.base import Endpoint, ModelChoice
from lmbridge.integrations.envfile import EnvFileTool

ID = "gemini-cli"


def env_path(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".gemini" / ".env"


def variables(endpoint: Endpoint, choice: ModelChoice) -> dict[str, str]:
    env = {"GOOGLE_GEMINI_BASE_URL": endpoint.root, "GEMINI_API_KEY": endpoint.key}
    if choice.model:
        env["GEMINI_MODEL"] = choice.model
    return env


TOOL = EnvFileTool(
    id=ID,
    name="Gemini CLI",
    protocol="gemini",
    path=env_path,
    variables=variables,
    url_variable="GOOGLE_GEMINI_BASE_URL",
    model_variable="GEMINI_MODEL",
    steps=(
        'Run `gemini`; choose "Use Gemini API key" if it asks how to sign '
        "in. Without GEMINI_MODEL it asks for Google's model names "
        '(gemini-…): route them with a `[[route]] model = "gemini-*"`.',
    ),
)
