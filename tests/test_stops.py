"""The proxy-side stop-sequence filter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lmbridge.core import ir
from lmbridge.protocols.stops import StopSequenceFilter


def run(stops: list[str], pieces: list[str]) -> tuple[str, list[ir.Event]]:
    f = StopSequenceFilter(stops)
    out: list[ir.Event] = []
    out += f.feed(ir.BlockStart(0, ir.BlockKind.TEXT))
    for piece in pieces:
        out += f.feed(ir.TextDelta(0, piece))
    out += f.feed(ir.BlockStop(0))
    out += f.feed(ir.Finish(ir.StopReason.END_TURN, ir.Usage()))
    text = "".join(e.text for e in out if isinstance(e, ir.TextDelta))
    return text, out


def test_cuts_before_stop_split_across_deltas() -> None:
    text, out = run(["END"], ["one E", "N", "D two"])
    assert text == "one "
    finish = [e for e in out if isinstance(e, ir.Finish)]
    assert finish == [ir.Finish(ir.StopReason.STOP_SEQUENCE, ir.Usage(), "END")]
    assert sum(isinstance(e, ir.BlockStop) for e in out) == 1


def test_false_start_is_released() -> None:
    text, out = run(["END"], ["a E", "Nx", " b"])
    assert text == "a ENx b"
    assert out[-1] == ir.Finish(ir.StopReason.END_TURN, ir.Usage())


def test_held_text_flushed_before_block_stop() -> None:
    text, out = run(["STOP"], ["abc ST"])
    assert text == "abc ST"
    kinds = [type(e).__name__ for e in out]
    assert kinds == ["BlockStart", "TextDelta", "TextDelta", "BlockStop", "Finish"]


def test_earliest_of_several_stops_wins() -> None:
    text, out = run(["zz", "b"], ["a b zz"])
    assert text == "a "
    assert isinstance(out[-1], ir.Finish)
    assert out[-1].stop_sequence == "b"


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="abE ND", max_size=40),
    st.lists(st.integers(1, 5), max_size=20),
)
def test_equals_cutting_the_whole_text(text: str, cuts: list[int]) -> None:
    pieces, i = [], 0
    for n in cuts:
        pieces.append(text[i : i + n])
        i += n
    pieces.append(text[i:])
    got, _ = run(["END"], pieces)
    expected = text.split("END")[0]
    assert got == expected
