"""A translated answer takes one path whole or streamed (server/answer.py):
a whole answer is its stream assembled, so the client reads the same
answer, the record says the same of it, and what the exchange keeps is
what the client got, turn after turn."""

from __future__ import annotations

import anthropic
import openai
import pytest

from fakes.openai_upstream import FakeOpenAIUpstream, Script
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
