"""The one SSE framer: line endings, chunk boundaries, stray blank lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbridge.protocols import sse
from lmbridge.protocols.sse import SSEEvent, SSEParser


def parse_all(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out + parser.flush()


@pytest.mark.parametrize(
    "stream",
    [
        b"data: a\n\n\ndata: b\n\n",  # an odd blank line between frames
        b"data: a\n\n\n\n\ndata: b\n\n\n",
        b"data: a\r\n\r\n\r\ndata: b\r\n\r\n",
        b"data: a\r\r\rdata: b\r\r",
        b"data: a\n\ndata: b",  # the last frame lacks its blank line
    ],
)
def test_blank_lines_and_line_endings(stream: bytes) -> None:
    assert [e.data for e in parse_all([stream])] == [b"a", b"b"]


def test_frames_keep_their_bytes() -> None:
    frames = SSEParser().feed_frames(b"event: x\ndata: 1\n\n\ndata: 2\n\n")
    assert [raw for raw, _ in frames.events] == [
        b"event: x\ndata: 1\n\n",
        b"data: 2\n\n",
    ]
    assert frames.events[0][1] == SSEEvent("x", b"1")


_LINE_END = st.sampled_from([b"\n", b"\r\n", b"\r"])


@settings(max_examples=200, deadline=None)
@given(
    datas=st.lists(st.binary(max_size=20).filter(lambda b: not set(b) & {10, 13})),
    end=_LINE_END,
    extra=st.integers(0, 3),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_any_chunking_gives_the_same_events(
    datas: list[bytes], end: bytes, extra: int, cuts: list[int]
) -> None:
    stream = b"".join(b"data: " + d + end + end + end * extra for d in datas)
    chunks, last = [], 0
    for cut in sorted({min(c, len(stream)) for c in cuts}):
        chunks.append(stream[last:cut])
        last = cut
    chunks.append(stream[last:])
    assert [e.data for e in parse_all(chunks)] == datas


@given(st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")))
def test_a_one_line_data_frame_reads_as_any_frame(value: bytes) -> None:
    """The parser's shortcut for `data: ...` frames gives what the general
    line-by-line reading gives."""
    block = b"data: " + value
    assert sse._parse(block) == sse._parse_lines(block)


@given(
    st.lists(
        st.sampled_from(
            [
                b"data: x",
                b"data:y",
                b"\n",
                b"event: e",
                b": c",
                b"zz",
                b"data: {}",
                b"\n\n",
            ]
        ),
        max_size=12,
    )
)
def test_frames_split_as_the_stream_reads(parts: list[bytes]) -> None:
    """Frames with their bytes (the relay's reading) hold the events that
    `feed` (the decoders' reading) gives, each frame's bytes ending in a
    blank line."""
    stream = b"\n".join(parts) + b"\n\n"
    framed = sse.SSEParser().feed_frames(stream)
    plain = sse.SSEParser().feed(stream)
    assert [event for _raw, event in framed.events] == plain
    assert all(raw.endswith(b"\n\n") for raw, _event in framed.events)
