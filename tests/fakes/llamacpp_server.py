"""A fake llama.cpp server (`llama-server`): the fake OpenAI upstream plus the
routes llama.cpp adds, `GET /props` and `GET /health`.

`n_ctx` is one slot's context as `/props` reports it
(`default_generation_settings.n_ctx`); `loading` makes `/health` answer 503
as the real server does while it loads its model; `props_status` other than
200 makes `/props` fail (an older server, or a proxy in front of one).
"""

from __future__ import annotations

from aiohttp import web

from fakes.openai_upstream import FakeOpenAIUpstream


class FakeLlamaCppServer(FakeOpenAIUpstream):
    """`llama-server` as LM Bridge sees it: Chat, `/props`, `/health`."""

    def __init__(self, n_ctx: int = 4096, total_slots: int = 1) -> None:
        super().__init__()
        self.n_ctx = n_ctx
        self.total_slots = total_slots
        self.loading = False
        self.props_status = 200
        self.props_calls = 0
        self.app.router.add_get("/props", self._props)
        self.app.router.add_get("/health", self._health)

    async def _props(self, request: web.Request) -> web.Response:
        self.props_calls += 1
        if self.props_status != 200:
            return web.json_response(
                {"error": {"code": self.props_status, "message": "no props"}},
                status=self.props_status,
            )
        return web.json_response(
            {
                "default_generation_settings": {"n_ctx": self.n_ctx, "params": {}},
                "total_slots": self.total_slots,
                "model_alias": "fake-model",
                "model_path": "/models/fake.gguf",
                "build_info": "b0-fake",
            }
        )

    async def _health(self, request: web.Request) -> web.Response:
        if self.loading:
            return web.json_response(
                {"error": {"code": 503, "message": "Loading model"}}, status=503
            )
        return web.json_response({"status": "ok"})
