"""A web page in a real browser cannot drive the proxy (issue 9).

Headless Chromium (Debian's `chromium`, installed by `make sysdeps`) opens a
page served from another local port. The page tries `fetch()` against the
proxy: CORS-simple requests (text/plain and form POSTs, a GET) and
preflighted JSON POSTs, to the model front doors, the chat store and the
model manager. The fake upstream must see zero requests, and the page must
not be able to read any answer.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from fakes.openai_upstream import FakeOpenAIUpstream
from support import RunningProxy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (make sysdeps)"
)

PAGE = """<!doctype html>
<html><body><pre id="out">running</pre><script>
const proxy = "PROXY";
const body = JSON.stringify({model: "m", max_tokens: 5,
  messages: [{role: "user", content: "hi"}]});
const attempts = [
  ["simple text/plain chat", "/v1/chat/completions",
   {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body}],
  ["simple form messages", "/v1/messages",
   {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "application/x-www-form-urlencoded"}, body}],
  ["preflighted JSON chat", "/v1/chat/completions",
   {method: "POST", headers: {"Content-Type": "application/json"}, body}],
  ["preflighted JSON messages", "/v1/messages",
   {method: "POST", headers: {"Content-Type": "application/json",
    "x-api-key": "k"}, body}],
  ["read chats", "/store/chats", {method: "GET"}],
  ["load model", "/models/load",
   {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
    body: JSON.stringify({model_key: "x"})}],
];
(async () => {
  const results = {};
  for (const [name, path, init] of attempts) {
    try {
      const r = await fetch(proxy + path, init);
      let text = "";
      try { text = await r.text(); } catch (e) {}
      results[name] = {type: r.type, status: r.status, readable: text.length > 0};
    } catch (e) {
      results[name] = {error: String(e)};
    }
  }
  document.getElementById("out").textContent = "RESULT" + JSON.stringify(results);
})();
</script></body></html>"""


@pytest.fixture
async def page_server(proxy: RunningProxy) -> AsyncIterator[str]:
    app = web.Application()

    async def page(_: web.Request) -> web.Response:
        return web.Response(
            text=PAGE.replace("PROXY", proxy.url), content_type="text/html"
        )

    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/"
    await runner.cleanup()


async def test_web_page_cannot_drive_the_proxy(
    proxy: RunningProxy, fake_upstream: FakeOpenAIUpstream, page_server: str
) -> None:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={Path(profile)}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page_server,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
    dom = out.decode()
    assert "RESULT" in dom, dom[-2000:]
    results = json.loads(
        dom.split("RESULT", 1)[1]
        .split("</pre>", 1)[0]
        .replace("&quot;", '"')
        .replace("&amp;", "&")
    )
    assert len(results) == 6
    for name, result in results.items():
        # Either the browser refused (preflight failed) or the answer is
        # opaque/unreadable; never a readable answer.
        assert result.get("error") or not result.get("readable"), (name, result)
        if "status" in result and result.get("type") != "opaque":
            assert result["status"] == 403, (name, result)
    assert fake_upstream.requests == []
    assert proxy.records == [] or all(r.status in (0, 403) for r in proxy.records)
