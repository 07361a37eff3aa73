"""State writes that fail cost speed, never an answer, and say so.

A session chain whose save failed (another process holds the database's
lock) makes its next turn send the full history, noted on that turn's
record; once saves work again the chain resumes. A history batch that
cannot be written is retried, then dropped with a note on each record. And
every request is kept in the history under the model it was for, refused
or not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from faults.dbfaults import held_lock
from lmbridge.store.dbjobs import background_jobs
from lmbridge.store.usage_recorder import NOT_KEPT
from support import RunningProxy, settings_for, start_proxy

HEADERS = {"X-Claude-Code-Session-Id": "chain-1"}
MODEL = "claude-sonnet-4-6"


async def turn(
    http: aiohttp.ClientSession, proxy: RunningProxy, messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    body = {"model": MODEL, "max_tokens": 50, "messages": messages}
    async with http.post(proxy.url + "/v1/messages", json=body, headers=HEADERS) as r:
        assert r.status == 200, await r.text()
        reply = await r.json()
    return [*messages, {"role": "assistant", "content": reply["content"]}]


def said(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


async def test_an_unsaved_chain_sends_the_full_history_then_resumes(
    fake_upstream: FakeOpenAIUpstream, lmbridge_home: Path
) -> None:
    proxy = await start_proxy(
        settings_for(fake_upstream.url, upstream_extra='api = "responses"')
    )
    services = proxy.server.services
    assert services is not None
    try:
        async with aiohttp.ClientSession() as http:
            async with held_lock(lmbridge_home / "data" / "lmbridge.db"):
                history = await turn(http, proxy, [said("one")])
                await services.sessions.writer.drain()
            first = proxy.records[-1]
            assert any("chain not saved" in n for n in first.note_texts), (
                first.note_texts
            )

            history = await turn(http, proxy, [*history, said("two")])
            sent = fake_upstream.requests[-1].body
            assert "previous_response_id" not in sent
            assert len(sent["input"]) == 3  # everything, again
            second = proxy.records[-1]
            assert any("full history sent" in n for n in second.note_texts), (
                second.note_texts
            )
            await services.sessions.writer.drain()

            await turn(http, proxy, [*history, said("three")])
            sent = fake_upstream.requests[-1].body
            assert sent.get("previous_response_id")  # chained again
            assert len(sent["input"]) == 1
    finally:
        await proxy.server.stop()


async def test_a_history_batch_that_cannot_be_written_is_noted_on_its_records(
    fake_upstream: FakeOpenAIUpstream, lmbridge_home: Path
) -> None:
    proxy = await start_proxy(settings_for(fake_upstream.url))
    services = proxy.server.services
    assert services is not None
    recorder = services.recorder
    try:
        async with aiohttp.ClientSession() as http:
            async with held_lock(lmbridge_home / "data" / "lmbridge.db"):
                await turn(http, proxy, [said("hi")])
                record = await proxy.record()
                with background_jobs():
                    for _ in range(recorder.attempts):
                        await recorder.flush()
            assert any(n.startswith(NOT_KEPT) for n in record.note_texts), (
                record.note_texts
            )
            # Writing works again afterwards.
            await turn(http, proxy, [said("again")])
            await proxy.record(2)
            assert await recorder.flush() >= 1
    finally:
        await proxy.server.stop()


async def test_every_request_is_kept_under_its_model_refused_or_not(
    fake_upstream: FakeOpenAIUpstream,
) -> None:
    proxy = await start_proxy(settings_for(fake_upstream.url))
    services = proxy.server.services
    assert services is not None
    cases: list[tuple[str, dict[str, Any], int | None]] = [
        ("/v1/messages", {"max_tokens": 5, "messages": [said("hi")]}, None),
        ("/v1/messages", {"max_tokens": 5, "messages": [said("hi")]}, 400),
        ("/v1/chat/completions", {"messages": [said("hi")]}, 400),
        ("/v1/responses", {"input": "hi"}, 400),
        # Refused by LM Bridge itself, before routing.
        ("/v1/messages", {"max_tokens": "many", "messages": []}, None),
    ]
    try:
        async with aiohttp.ClientSession() as http:
            for path, body, upstream_status in cases:
                fake_upstream.script = Script(status=upstream_status or 0)
                async with http.post(proxy.url + path, json={"model": MODEL, **body}):
                    pass
            await proxy.record(len(cases))
        await services.recorder.flush()
        stored = await services.usage.recent(limit=10)
    finally:
        await proxy.server.stop()
    assert len(stored) == len(cases)
    assert all(r.model == MODEL for r in stored), [r.model for r in stored]
    statuses = sorted(r.status for r in stored)
    assert statuses == [200, 400, 400, 400, 400]
    routed = [r for r in stored if r.target]
    assert len(routed) == 4 and all(r.target == "fake-model" for r in routed)
    ok = next(r for r in stored if r.status == 200)
    assert ok.tokens_in and ok.tokens_out
