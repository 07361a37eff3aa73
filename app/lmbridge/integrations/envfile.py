"""Tools pointed at LM Bridge by the variables of a `.env` file they read:
Qwen Code (~/.qwen/.env) and Gemini CLI (~/.gemini/.env).

`EnvFileTool` holds what differs between them; `describe`, `plan` and
`current` are the same for both (dotenv.py edits the file in place).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lmbridge.integrations import dotenv, files
from lmbridge.integrations.base import (
    ClientProtocol,
    Configured,
    Endpoint,
    Integration,
    IntegrationError,
    ModelChoice,
    Snippet,
    WritePlan,
    env_snippets,
)


@dataclass(frozen=True)
class EnvFileTool:
    """One tool: its id and name, protocol, the .env it reads, the variables
    that point it at `endpoint`, and which of them hold the URL and model."""

    id: str
    name: str
    protocol: ClientProtocol
    path: Callable[[Path | None], Path]
    variables: Callable[[Endpoint, ModelChoice], dict[str, str]]
    url_variable: str
    model_variable: str
    steps: tuple[str, ...]

    def describe(
        self, endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
    ) -> Integration:
        path = self.path(home)
        env = self.variables(endpoint, choice)
        return Integration(
            id=self.id,
            name=self.name,
            protocols=(self.protocol,),
            base_url=env[self.url_variable],
            env=env,
            snippets=(
                *env_snippets(env),
                Snippet(str(path), "sh", dotenv.merge(None, env)),
            ),
            steps=(
                f"Write the variables into {path} (`lmbridge integrate {self.id} "
                "--write`), or export them in the shell that runs it.",
                *self.steps,
            ),
            config_path=path,
        )

    def plan(
        self, endpoint: Endpoint, choice: ModelChoice, home: Path | None = None
    ) -> WritePlan:
        path = self.path(home)
        old = files.read_text(path)
        return WritePlan(
            tool=self.id,
            path=path,
            old_text=old,
            new_text=dotenv.merge(old, self.variables(endpoint, choice)),
            newline=files.detect_newline(path),
        )

    def current(self, home: Path | None = None) -> Configured | None:
        path = self.path(home)
        try:
            values = dotenv.read(files.read_text(path))
        except IntegrationError:  # unreadable: not configured by us
            return None
        if self.url_variable not in values:
            return None
        return Configured(
            tool=self.id,
            path=path,
            base_url=values[self.url_variable],
            choice=ModelChoice(model=values.get(self.model_variable, "")),
        )
