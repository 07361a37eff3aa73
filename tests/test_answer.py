"""A translated answer takes one path whole or streamed (server/answer.py):
a whole answer is its stream assembled, so the client reads the same
answer, the record says the same of it, and what the exchange keeps is
what the client got, turn after turn."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import aiohttp
import anthropic
import openai
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
from fakes.prompt_door import PromptProtocol, TextLines
from lmbridge.core import ir
from lmbridge.protocols import registry
from lmbridge.protocols.base import FrontDoor, Wire
from support import RunningProxy, oai, running, settings_for

SCRIPT = Script(
    text="Two plus two is four.",
    reasoning="Adding the numbers.",
    prompt_tokens=40,
    completion_tokens=9,
    cached_tokens=16,
)


def claude(proxy: RunningProxy) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key="x", max_retries=0)


async def claude_session(proxy: RunningProxy, stream: bool) -> list[str]:
    """Two turns through the Messages door (translated to Chat); the text
    of each answer as the client read it."""
    history: list[anthropic.types.MessageParam] = []
    texts: list[str] = []
    async with claude(proxy) as client:
        for turn in range(2):
            history.append({"role": "user", "content": f"question {turn}"})
            ask = {"model": "claude-x", "max_tokens": 200, "messages": history}
            if stream:
                async with client.messages.stream(**ask) as events:  # type: ignore[arg-type]
                    answer = await events.get_final_message()
            else:
                answer = await client.messages.create(**ask)  # type: ignore[call-overload]
            text = "".join(
                b.text
                for b in answer.content
                if isinstance(b, anthropic.types.TextBlock)
            )
            texts.append(text)
            history.append({"role": "assistant", "content": text})
    return texts


async def responses_session(proxy: RunningProxy, stream: bool) -> list[str]:
    """Two turns through the Responses door, the second continuing the
    first by `previous_response_id` (answered from LM Bridge's memory: the
    answer kept must be under the id its client got)."""
    texts: list[str] = []
    previous: str | openai.Omit = openai.omit
    async with oai(proxy) as client:
        for turn in range(2):
            question = f"question {turn}"
            if stream:
                async with client.responses.stream(
                    model="claude-x", input=question, previous_response_id=previous
                ) as events:
                    answer: openai.types.responses.Response = (
                        await events.get_final_response()
                    )
            else:
                answer = await client.responses.create(
                    model="claude-x", input=question, previous_response_id=previous
                )
            texts.append(answer.output_text)
            previous = answer.id
    return texts


SESSIONS = {"anthropic": claude_session, "responses": responses_session}


@pytest.mark.parametrize("door", SESSIONS)
async def test_a_whole_answer_is_its_stream_assembled(
    fake_upstream: FakeOpenAIUpstream, door: str
) -> None:
    fake_upstream.script = SCRIPT
    async with running(settings_for(fake_upstream.url)) as proxy:
        streamed = await SESSIONS[door](proxy, True)
        whole = await SESSIONS[door](proxy, False)
        await proxy.record(4)
    assert streamed == whole == [SCRIPT.text] * 2
    records = proxy.records
    assert [r.stream for r in records] == [True, True, False, False]
    for record in records:
        assert record.status == 200 and record.error is None
        assert (record.tokens_in, record.tokens_out) == (40, 9)
        assert record.cached_tokens == 16
        assert record.first_token is not None
        assert record.bytes_out > 0
    # Turn 2 carried turn 1's answer upstream, whole as streamed (for
    # Responses: expanded from the answer LM Bridge kept under its id).
    seconds = [fake_upstream.requests[i].body["messages"] for i in (1, 3)]
    assert seconds[0] == seconds[1]
    said = [m for m in seconds[0] if m["role"] == "assistant"]
    assert said and SCRIPT.text in str(said[0]["content"])


@pytest.mark.parametrize("stream", [True, False])
async def test_an_answer_that_breaks_off_ends_the_same_whole_or_streamed(
    fake_upstream: FakeOpenAIUpstream, stream: bool
) -> None:
    """The upstream closes the connection mid-answer: a stream ends in an
    error event, a whole answer is that error; the record says the same.
    (A Responses upstream streams every answer; Chat answers whole.)"""
    fake_upstream.script = Script(text="a b c d e f", close_after_chunks=3)
    settings = settings_for(fake_upstream.url, upstream_extra='api = "responses"')
    async with running(settings) as proxy:
        async with claude(proxy) as client:
            ask = {
                "model": "claude-x",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi"}],
            }
            if stream:
                with pytest.raises(anthropic.APIStatusError) as failed:
                    async with client.messages.stream(**ask) as events:  # type: ignore[arg-type]
                        await events.get_final_message()
            else:
                with pytest.raises(anthropic.APIStatusError) as failed:
                    await client.messages.create(**ask)  # type: ignore[call-overload]
        record = await proxy.record()
    assert record.error is not None
    assert record.error_kind == "upstream_error"
    assert record.error in str(failed.value)


# ------------------------------------------- LM Bridge failing mid-answer


class BrittleLines(TextLines):
    """The toy door's JSON lines; the second delta of an answer breaks
    them, as a bug in an encoder would."""

    def __init__(self) -> None:
        self.deltas = 0

    def encode(self, event: ir.Event) -> bytes:
        if isinstance(event, ir.TextDelta):
            self.deltas += 1
            if self.deltas == 2:
                raise RuntimeError("the encoder broke")
        return super().encode(event)


class BrittleDoor(PromptProtocol):
    """The toy front door (fakes/prompt_door.py), registered the way every
    door is, whose stream encoder breaks mid-answer."""

    name = "brittle"
    wire = Wire(path="/v1/brittle")
    paths: tuple[str, ...] = ("/v1/brittle",)

    def stream_encoder(self, request: ir.Request) -> BrittleLines:
        return BrittleLines()


@pytest.fixture
def brittle_door() -> Iterator[FrontDoor]:
    door: FrontDoor = BrittleDoor()
    registry.register(door)
    yield door
    registry.unregister(door.name)


@pytest.mark.parametrize("reads", ["one read", "a read per delta"])
async def test_a_stream_that_lm_bridge_breaks_ends_in_an_error_event(
    brittle_door: FrontDoor,
    fake_upstream: FakeOpenAIUpstream,
    expected_errors: Callable[[str], None],
    reads: str,
) -> None:
    """Once the headers are out, LM Bridge's own failure is the stream's
    last event in the client's protocol (never a second response, never a
    stream that just stops), turn after turn: whether it breaks on a read
    before the answer's end or on the read that ends it."""
    expected_errors("a streamed answer failed after its headers")
    delay = 0.02 if reads == "a read per delta" else 0.0
    fake_upstream.script = Script(text="one two three four", chunk_delay=delay)
    async with running(settings_for(fake_upstream.url)) as proxy:
        async with aiohttp.ClientSession() as http:
            for turn in range(2):
                body = {"model": "claude-x", "prompt": f"turn {turn}", "stream": True}
                async with http.post(proxy.url + "/v1/brittle", json=body) as r:
                    assert r.status == 200
                    lines = [json.loads(x) for x in (await r.text()).splitlines()]
                if delay:
                    assert lines[0] == {"text": "one "}
                assert lines[-1] == {
                    "failed": "LM Bridge failed mid-answer; see its log for details"
                }
        await proxy.record(2)
    for record in proxy.records:
        assert record.error == lines[-1]["failed"]
        assert record.bytes_out > 0
