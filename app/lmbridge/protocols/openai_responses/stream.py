"""IR stream events rendered as the Responses SSE grammar.

    response.created, response.in_progress
    per item:  output_item.added
               message:   content_part.added, output_text.delta*,
                          output_text.done, content_part.done
               function:  function_call_arguments.delta*, ...arguments.done
               custom:    custom_tool_call_input.delta*, ...input.done
               reasoning: [reasoning_summary_part.added,
                          reasoning_summary_text.delta*, ...text.done,
                          reasoning_summary_part.done]
               output_item.done
    response.completed | response.incomplete | (error, response.failed)

Each IR block becomes one output item. A call of a tool the client declared
in a namespace or as a freeform tool goes back in that shape (tools.py):
a `function_call` with `namespace`, or a `custom_tool_call` whose input
streams as the model's JSON arguments arrive. Every event carries `type` and a
strictly increasing `sequence_number`; frames are `event: T\\ndata: J\\n\\n`.
Nothing follows a terminal event. Anthropic thinking signatures have no
place in this protocol and are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from lmbridge.core import ir
from lmbridge.protocols import sse
from lmbridge.protocols.openai_responses import answer, wire
from lmbridge.protocols.openai_responses import events as ev
from lmbridge.protocols.openai_responses.freeform import InputStream
from lmbridge.protocols.openai_responses.response import (
    new_id,
    now,
    reasoning_item,
    response_id_for,
    status_for,
    stream_error_code,
    usage_wire,
    web_search_call,
)
from lmbridge.protocols.openai_responses.tools import ClientTools
from lmbridge.protocols.openai_responses.upstream import tool_choice_wire

PING = b": ping\n\n"


@dataclass
class _OpenItem:
    """An output item whose IR block has started and not stopped."""

    kind: ir.BlockKind
    output_index: int
    item_id: str
    call_id: str = ""
    name: str = ""
    chunks: list[str] = field(default_factory=list)
    summary_open: bool = False
    tools: ClientTools | None = None  # the request's, for tool calls
    custom: InputStream | None = None  # set for a call of a freeform tool

    def text(self) -> str:
        return "".join(self.chunks)

    def item(self, status: str) -> answer.OutputItem:
        """The item as it stands, with `status` (reasoning items have none)."""
        text = self.text()
        if self.kind is ir.BlockKind.TEXT:
            content: list[wire.OutputText | wire.Refusal] = []
            if status != "in_progress":
                content.append(wire.OutputText(text))
            return answer.OutputMessage(self.item_id, status, content)
        if self.kind is ir.BlockKind.TOOL_CALL:
            if status == "completed":
                text = text or "{}"
            if self.tools is not None:
                return self.tools.output_item(
                    self.item_id, self.call_id, self.name, text, status
                )
            return answer.FunctionCall(
                self.item_id, self.call_id, self.name, text, status
            )
        return reasoning_item(self.item_id, text, None)


class ResponsesStreamEncoder:
    """State machine from IR events to Responses SSE bytes.

    After the terminal event, `response` holds the final Response object and
    `response_id` its id, so the server can store the turn for a later
    `previous_response_id`.
    """

    content_type = "text/event-stream"

    def __init__(self, request: ir.Request) -> None:
        self._request = request
        self._tools = ClientTools(request.tools)
        self._sequence = 0
        self._template: answer.ResponseObject | None = None
        self._output: list[answer.OutputItem] = []
        self._open: dict[int, _OpenItem] = {}
        self._closed: set[int] = set()
        self._searches: dict[int, int] = {}  # IR index -> output index
        self._input_tokens = 0
        self.response: answer.ResponseObject | None = None

    @property
    def response_id(self) -> str:
        """The id of the response being streamed ("" before it starts)."""
        return self._template.id if self._template is not None else ""

    @property
    def output_items(self) -> list[answer.OutputItem]:
        """The output items so far, by output index; open ones as added."""
        return list(self._output)

    @property
    def finished(self) -> bool:
        """True once a terminal event has been written."""
        return self.response is not None

    def encode(self, event: ir.Event) -> bytes:
        """The SSE bytes for one IR event (empty once the stream is over)."""
        if self.response is not None:
            return b""
        if isinstance(event, ir.Ping):
            return PING
        out: list[bytes] = []
        if self._template is None:
            self._start(out, event if isinstance(event, ir.MessageStart) else None)
        match event:
            case ir.BlockStart():
                if event.index not in self._open and event.index not in self._closed:
                    self._open_item(out, event)
            case ir.TextDelta():
                self._delta(out, event.index, ir.BlockKind.TEXT, event.text)
            case ir.ThinkingDelta():
                self._delta(out, event.index, ir.BlockKind.THINKING, event.text)
            case ir.ToolArgsDelta():
                self._delta(
                    out, event.index, ir.BlockKind.TOOL_CALL, event.partial_json
                )
            case ir.BlockStop():
                self._close_item(out, event.index)
            case ir.Finish():
                self._finish(out, event)
            case ir.StreamError():
                self._fail(out, event)
            case ir.WebSearchStarted() | ir.WebSearchDone():
                self._web_search(out, event)
            case _:  # MessageStart (handled above), SignatureDelta
                pass
        return b"".join(out)

    # ----------------------------------------------------------------- helpers

    def _emit(self, out: list[bytes], event: ev.EmittedEvent) -> None:
        tag = str(event.__struct_config__.tag)
        out.append(sse.frame(msgspec.json.encode(event), tag))

    def _next(self) -> int:
        number = self._sequence
        self._sequence += 1
        return number

    def _snapshot(
        self, status: str, output: list[answer.OutputItem]
    ) -> answer.ResponseObject:
        assert self._template is not None
        return msgspec.structs.replace(self._template, status=status, output=output)

    def _start(self, out: list[bytes], start: ir.MessageStart | None) -> None:
        request = self._request
        if start is not None:
            self._input_tokens = start.input_tokens
        reasoning = None
        if request.reasoning is not None:
            reasoning = wire.ReasoningConfig(effort=request.reasoning.effort)
        previous = request.extras.get("previous_response_id")
        self._template = answer.ResponseObject(
            id=response_id_for(start.id if start is not None else ""),
            created_at=now(),
            model=(start.model if start is not None else "") or request.model,
            status="in_progress",
            output=[],
            max_output_tokens=request.max_tokens,
            parallel_tool_calls=request.parallel_tool_calls is not False,
            previous_response_id=previous if isinstance(previous, str) else None,
            reasoning=reasoning,
            temperature=request.temperature,
            top_p=request.top_p,
            tool_choice=tool_choice_wire(request.tool_choice),
            tools=[
                wire.FunctionTool(t.name, t.description or None, t.parameters)
                for t in request.tools
            ],
        )
        self._emit(
            out, ev.ResponseCreated(self._next(), self._snapshot("in_progress", []))
        )
        self._emit(
            out, ev.ResponseInProgress(self._next(), self._snapshot("in_progress", []))
        )

    def _open_item(self, out: list[bytes], start: ir.BlockStart) -> _OpenItem:
        prefix = {ir.BlockKind.TEXT: "msg", ir.BlockKind.THINKING: "rs"}
        call = start.kind is ir.BlockKind.TOOL_CALL
        custom = call and self._tools.is_custom(start.name)
        item = _OpenItem(
            kind=start.kind,
            output_index=len(self._output),
            item_id=new_id("ctc" if custom else prefix.get(start.kind, "fc")),
            call_id=start.call_id or (new_id("call") if call else ""),
            name=start.name,
            tools=self._tools if call else None,
            custom=InputStream() if custom else None,
        )
        self._open[start.index] = item
        self._output.append(item.item("in_progress"))
        self._emit(
            out,
            ev.OutputItemAdded(
                self._next(), item.output_index, item.item("in_progress")
            ),
        )
        if item.kind is ir.BlockKind.TEXT:
            self._emit(
                out,
                ev.ContentPartAdded(
                    self._next(),
                    item.item_id,
                    item.output_index,
                    0,
                    wire.OutputText(""),
                ),
            )
        return item

    def _delta(
        self, out: list[bytes], index: int, kind: ir.BlockKind, text: str
    ) -> None:
        item = self._open.get(index)
        if item is None:
            if index in self._closed:
                return
            item = self._open_item(out, ir.BlockStart(index, kind))
        if item.kind is not kind or not text:
            return
        item.chunks.append(text)
        if item.custom is not None:
            # The JSON arguments arrive; the client gets the raw input.
            text = item.custom.feed(text)
            if not text:
                return
        seq, item_id, output_index = self._next(), item.item_id, item.output_index
        if kind is ir.BlockKind.TEXT:
            self._emit(out, ev.OutputTextDelta(seq, item_id, output_index, 0, text))
        elif item.custom is not None:
            self._emit(
                out, ev.CustomToolCallInputDelta(seq, item_id, output_index, text)
            )
        elif kind is ir.BlockKind.TOOL_CALL:
            self._emit(
                out, ev.FunctionCallArgumentsDelta(seq, item_id, output_index, text)
            )
        else:
            if not item.summary_open:
                item.summary_open = True
                part = ev.ReasoningSummaryPartAdded(
                    seq, item_id, output_index, 0, wire.SummaryText("")
                )
                self._emit(out, part)
                seq = self._next()
            self._emit(
                out, ev.ReasoningSummaryTextDelta(seq, item_id, output_index, 0, text)
            )

    def _close_item(self, out: list[bytes], index: int) -> None:
        item = self._open.pop(index, None)
        if item is None:
            return
        self._closed.add(index)
        text, item_id, output_index = item.text(), item.item_id, item.output_index
        if item.kind is ir.BlockKind.TEXT:
            self._emit(
                out, ev.OutputTextDone(self._next(), item_id, output_index, 0, text)
            )
            self._emit(
                out,
                ev.ContentPartDone(
                    self._next(), item_id, output_index, 0, wire.OutputText(text)
                ),
            )
        elif item.custom is not None:
            whole, rest = item.custom.finish(text or "{}")
            if rest:
                delta = ev.CustomToolCallInputDelta(
                    self._next(), item_id, output_index, rest
                )
                self._emit(out, delta)
            self._emit(
                out,
                ev.CustomToolCallInputDone(self._next(), item_id, output_index, whole),
            )
        elif item.kind is ir.BlockKind.TOOL_CALL:
            done = ev.FunctionCallArgumentsDone(
                self._next(), item_id, output_index, text or "{}"
            )
            self._emit(out, done)
        elif item.summary_open:
            self._emit(
                out,
                ev.ReasoningSummaryTextDone(
                    self._next(), item_id, output_index, 0, text
                ),
            )
            self._emit(
                out,
                ev.ReasoningSummaryPartDone(
                    self._next(), item_id, output_index, 0, wire.SummaryText(text)
                ),
            )
        final = item.item("completed")
        self._output[output_index] = final
        self._emit(out, ev.OutputItemDone(self._next(), output_index, final))

    def _web_search(
        self, out: list[bytes], event: ir.WebSearchStarted | ir.WebSearchDone
    ) -> None:
        """A search LM Bridge runs: a `web_search_call` item, added with
        `in_progress` and `searching` when it starts, `completed` (or
        failed) when it ends."""
        if isinstance(event, ir.WebSearchStarted):
            index = len(self._output)
            self._searches[event.index] = index
            item = web_search_call(event.call_id, event.query, "in_progress")
            self._output.append(item)
            self._emit(out, ev.OutputItemAdded(self._next(), index, item))
            for kind in (ev.WebSearchCallInProgress, ev.WebSearchCallSearching):
                self._emit(out, kind(self._next(), index, event.call_id))
            return
        search = event.search
        index = self._searches.pop(event.index, -1)
        if index < 0:
            return
        done = ev.WebSearchCallCompleted(self._next(), index, search.call_id)
        self._emit(out, done)
        status = "failed" if search.error is not None else "completed"
        item = web_search_call(search.call_id, search.query, status)
        self._output[index] = item
        self._emit(out, ev.OutputItemDone(self._next(), index, item))

    def _finish(self, out: list[bytes], finish: ir.Finish) -> None:
        for index in sorted(self._open):
            self._close_item(out, index)
        status, incomplete = status_for(finish.stop_reason)
        usage = finish.usage
        if not usage.input_tokens and self._input_tokens:
            usage = msgspec.structs.replace(usage, input_tokens=self._input_tokens)
        response = msgspec.structs.replace(
            self._snapshot(status, list(self._output)),
            incomplete_details=incomplete,
            usage=usage_wire(usage),
            completed_at=now() if status == "completed" else None,
        )
        self.response = response
        if status == "incomplete":
            self._emit(out, ev.ResponseIncomplete(self._next(), response))
        else:
            self._emit(out, ev.ResponseCompleted(self._next(), response))

    def _fail(self, out: list[bytes], error: ir.StreamError) -> None:
        code = stream_error_code(error.kind)
        for item in self._open.values():
            self._output[item.output_index] = item.item("incomplete")
        self._open.clear()
        self._emit(out, ev.ErrorEvent(self._next(), error.message, code))
        response = msgspec.structs.replace(
            self._snapshot("failed", list(self._output)),
            error=answer.ResponseErrorBody(code, error.message),
        )
        self.response = response
        self._emit(out, ev.ResponseFailed(self._next(), response))
