"""Tools configured in their own UI or by environment: Void, Cline, the SDKs.

No file to merge here: each description carries the values to enter, the
steps to get there, and code or variables to copy.
"""

from __future__ import annotations

from lmbridge.integrations.base import (
    Endpoint,
    Integration,
    ModelChoice,
    Snippet,
    env_snippets,
)

EXAMPLE_MODEL = "qwen/qwen3-coder-30b"


def void(endpoint: Endpoint, choice: ModelChoice) -> Integration:
    """Void: its LM Studio provider, or OpenAI-Compatible when a token is needed.

    Void's LM Studio provider takes the server's root URL, appends /v1 and
    lists the models itself, but sends no key of ours; with an access token
    configured, the OpenAI-Compatible provider (baseURL with /v1, API Key)
    is the one to use.
    """
    model = choice.model or "the model name (as LM Bridge lists it)"
    if endpoint.token:
        steps = (
            "Open Void's settings (the gear in the Void sidebar) and go to the "
            "model providers.",
            f"Under OpenAI-Compatible set baseURL to {endpoint.v1} and API Key "
            "to LM Bridge's access token.",
            f"Add a model: provider OpenAI-Compatible, model name {model}.",
            "Choose that model for Chat, Quick Edit and Apply.",
        )
        fields = f"baseURL: {endpoint.v1}\nAPI Key: {endpoint.key}\n"
        base = endpoint.v1
    else:
        steps = (
            "Open Void's settings (the gear in the Void sidebar) and go to the "
            "local model providers.",
            f"Set LM Studio's Endpoint to {endpoint.root} (Void adds /v1 itself); "
            "Void then lists every model LM Bridge offers.",
            "Switch on the models to use and choose one for Chat, Quick Edit "
            "and Apply.",
            f"Alternatively: OpenAI-Compatible with baseURL {endpoint.v1} and any "
            "API Key, adding model names by hand.",
        )
        fields = f"LM Studio › Endpoint: {endpoint.root}\n"
        base = endpoint.root
    return Integration(
        id="void",
        name="Void",
        protocols=("openai",),
        base_url=base,
        snippets=(Snippet("Void settings", "text", fields),),
        steps=steps,
    )


def cline(endpoint: Endpoint, choice: ModelChoice) -> Integration:
    """Cline: the OpenAI Compatible API provider."""
    model = choice.model or EXAMPLE_MODEL
    fields = (
        "API Provider: OpenAI Compatible\n"
        f"Base URL: {endpoint.v1}\n"
        f"API Key: {endpoint.key}\n"
        f"Model ID: {model}\n"
    )
    return Integration(
        id="cline",
        name="Cline",
        protocols=("openai",),
        base_url=endpoint.v1,
        snippets=(Snippet("Cline settings", "text", fields),),
        steps=(
            "Open Cline's settings (the gear in the Cline panel).",
            "API Provider: choose OpenAI Compatible.",
            f"Base URL: {endpoint.v1}; API Key: "
            + ("LM Bridge's access token" if endpoint.token else "any value")
            + f"; Model ID: {model} (a name LM Bridge routes).",
            "Save, and start a task: Cline's requests show in LM Bridge's log.",
        ),
    )


def openai_sdk(endpoint: Endpoint, choice: ModelChoice) -> Integration:
    """The OpenAI SDKs (Python, TypeScript, ...): OPENAI_BASE_URL, OPENAI_API_KEY."""
    env = {"OPENAI_BASE_URL": endpoint.v1, "OPENAI_API_KEY": endpoint.key}
    model = choice.model or EXAMPLE_MODEL
    python = (
        "from openai import OpenAI\n\n"
        "client = OpenAI()  # reads OPENAI_BASE_URL and OPENAI_API_KEY\n"
        f'# or: OpenAI(base_url="{endpoint.v1}", api_key="{endpoint.key}")\n'
        "chat = client.chat.completions.create(\n"
        f'    model="{model}", messages=[{{"role": "user", "content": "Hello"}}]\n'
        ")\n"
        f'reply = client.responses.create(model="{model}", input="Hello")\n'
    )
    typescript = (
        'import OpenAI from "openai";\n\n'
        "const client = new OpenAI(); // reads OPENAI_BASE_URL and OPENAI_API_KEY\n"
        "const chat = await client.chat.completions.create({\n"
        f'  model: "{model}",\n'
        '  messages: [{ role: "user", content: "Hello" }],\n'
        "});\n"
    )
    return Integration(
        id="openai-sdk",
        name="OpenAI SDKs",
        protocols=("openai", "responses"),
        base_url=endpoint.v1,
        env=env,
        snippets=(
            *env_snippets(env),
            Snippet("Python", "python", python),
            Snippet("TypeScript", "typescript", typescript),
        ),
        steps=(
            "Export the variables, or pass base_url and api_key to the client.",
            "Chat Completions and Responses both work; the model name is routed "
            "by LM Bridge.",
        ),
    )


def anthropic_sdk(endpoint: Endpoint, choice: ModelChoice) -> Integration:
    """The Anthropic SDKs: ANTHROPIC_BASE_URL (no /v1), ANTHROPIC_API_KEY."""
    env = {"ANTHROPIC_BASE_URL": endpoint.root, "ANTHROPIC_API_KEY": endpoint.key}
    model = choice.model or choice.sonnet or "claude-sonnet-5-5"
    python = (
        "import anthropic\n\n"
        "# reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY\n"
        "client = anthropic.Anthropic()\n"
        f'# or: anthropic.Anthropic(base_url="{endpoint.root}",\n'
        f'#                         api_key="{endpoint.key}")\n'
        "message = client.messages.create(\n"
        f'    model="{model}",\n'
        "    max_tokens=1024,\n"
        '    messages=[{"role": "user", "content": "Hello"}],\n'
        ")\n"
    )
    return Integration(
        id="anthropic-sdk",
        name="Anthropic SDKs",
        protocols=("anthropic",),
        base_url=endpoint.root,
        env=env,
        snippets=(*env_snippets(env), Snippet("Python", "python", python)),
        steps=(
            "Export the variables, or pass base_url and api_key to the client; "
            "the SDK adds /v1/messages to the base URL itself.",
        ),
    )
