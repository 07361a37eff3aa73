"""The request log's detail pane: bodies, timings, Copy as curl, Replay.

Bodies are shown redacted and pretty-printed; a streamed answer both as the
assembled text and as the raw events. Replay sends the same request through
the proxy again (`apiclient.ProxyClient`), so it appears in the log too.
"""

from __future__ import annotations

import time
from html import escape
from http import HTTPStatus

from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QRadioButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from lmbridge.apiclient import Reply, is_stream
from lmbridge.core.events import Phase, RequestRecord
from lmbridge.gui import message
from lmbridge.gui.formats import chain_text, duration, prompt_text, size_text
from lmbridge.gui.icons import ERROR_COLOR
from lmbridge.gui.requests import bodies
from lmbridge.gui.requests.bodies import redact_value
from lmbridge.gui.requests.manager import RequestLog, route_text, status_text
from lmbridge.gui.tasks import Tasks
from lmbridge.gui.widgets import button, copy_text, hint_label, mono_font
from lmbridge.protocols.registry import FRONT_DOORS
from lmbridge.server.capture import BODY_CAP

REPLAYING = "Replaying the request"


def timings_text(record: RequestRecord) -> str:
    """The Timings tab: when each step happened and what it cost."""
    received = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.received))
    rows = [
        ("Received", received),
        ("Connected", _offset(record.upstream_connected)),
        ("First token", _offset(record.first_token)),
        ("Done", _offset(record.done)),
        ("Tokens", f"in {record.tokens_in:,} · out {record.tokens_out:,}"),
        ("Prompt", prompt_text(record)),
        ("Chain", chain_text(record)),
        (
            "Bytes",
            f"in {size_text(record.bytes_in)} · out {size_text(record.bytes_out)} · "
            f"upstream {size_text(record.upstream_bytes)}",
        ),
        ("Route", f"{record.route or '—'} → {route_text(record)}"),
        ("Upstream API", record.upstream_api or "—"),
        ("Client", record.client or "—"),
        ("Session", record.session_key or "—"),
    ]
    rows += [(f"Note ({note.kind.value})", note.text) for note in record.notes]
    if record.error:
        rows.insert(0, ("Error", record.error))
    width = max(len(label) for label, _v in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def status_phrase(status: int) -> str:
    """502 -> "502 Bad Gateway"; a status without a name stays a number."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def failure_text(record: RequestRecord) -> str | None:
    """What went wrong, for the top of the Response tab: the status, the
    kind of error and the message (None: the request did not fail)."""
    if record.phase is not Phase.FINISHED or not record.error:
        return None
    if record.client_gone:
        return f"The client went away before the answer ended ({record.error})."
    first = []
    if record.status >= 400:
        first.append(status_phrase(record.status))
    elif record.status:
        first.append(f"{status_phrase(record.status)}, then the answer broke off")
    if record.error_kind:
        first.append(record.error_kind.replace("_", " "))
    head = "✗ " + (" · ".join(first) if first else "failed")
    return f"{head}\n{redact_value(record.error)}"


def _offset(seconds: float | None) -> str:
    return "—" if seconds is None else f"+{duration(seconds)}"


def request_truncated(record: RequestRecord) -> bool:
    """Whether only the start of the request body was kept.

    The proxy redacts secrets in what it keeps, so the kept body can be
    shorter than the request without being cut; a cut body has the cap's
    length. A `request_truncated` flag on the record, when the pipeline
    sets one, is the authority.
    """
    flag = getattr(record, "request_truncated", None)
    if isinstance(flag, bool):
        return flag
    return len(record.request_body.encode()) >= BODY_CAP


class RequestDetail(QWidget):
    """Everything about one request."""

    def __init__(self, log: RequestLog, parent: QWidget | None = None):
        super().__init__(parent)
        self.log = log
        self.tasks = Tasks("request-detail")
        self.record: RequestRecord | None = None
        self.last_reply: Reply | None = None

        self.header = QLabel("Select a request to see its details.")
        self.header.setWordWrap(True)
        self.request_text = self._text_view()
        self.response_text = self._text_view()
        self.timings = self._text_view()
        self.assembled = QRadioButton("Assembled text")
        self.raw = QRadioButton("Raw events")
        self.assembled.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.assembled)
        group.addButton(self.raw)
        self.assembled.toggled.connect(self._show_response)
        response_page = QWidget()
        response_layout = QVBoxLayout(response_page)
        response_layout.setContentsMargins(0, 4, 0, 0)
        self.stream_switch = QWidget()
        switch = QHBoxLayout(self.stream_switch)
        switch.setContentsMargins(0, 0, 0, 0)
        switch.addWidget(self.assembled)
        switch.addWidget(self.raw)
        switch.addStretch(1)
        response_layout.addWidget(self.stream_switch)
        response_layout.addWidget(self.response_text)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.request_text, "Request")
        self.tabs.addTab(response_page, "Response")
        self.response_page = response_page
        self._showed_failure = False
        self.tabs.addTab(self.timings, "Timings")

        self.curl_button = button("Copy as curl", "copy")
        self.replay_button = button("Replay", "send", "Send it through the proxy again")
        self.curl_button.clicked.connect(self.copy_curl)
        self.replay_button.clicked.connect(self.replay)
        self.reply_label = hint_label()
        actions = QHBoxLayout()
        actions.addWidget(self.curl_button)
        actions.addWidget(self.replay_button)
        actions.addWidget(self.reply_label, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(actions)
        self.show_record(None)

    @staticmethod
    def _text_view() -> QPlainTextEdit:
        view = QPlainTextEdit()
        view.setReadOnly(True)
        view.setFont(mono_font())
        view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        return view

    def show_record(self, record: RequestRecord | None) -> None:
        """Show `record` (None: nothing selected); call again as it changes.

        A failed request opens on its Response tab, the error first.
        """
        newly = record is not self.record
        self.record = record
        enabled = record is not None
        self.tabs.setEnabled(enabled)
        self.curl_button.setEnabled(enabled and bool(record and record.request_body))
        if not self.tasks.running(REPLAYING):
            self.replay_button.setEnabled(enabled and self._replayable())
        if record is None:
            self.header.setText("Select a request to see its details.")
            for view in (self.request_text, self.response_text, self.timings):
                view.setPlainText("")
            self.stream_switch.hide()
            return
        header = (
            f"<b>{escape(record.method)} {escape(record.path or '—')}</b> · "
            f"{escape(record.protocol)} · {escape(status_text(record))} · "
            f"{escape(route_text(record))}"
        )
        failure = failure_text(record)
        if failure:
            first = escape(failure.split("\n", 1)[0])
            header += f'<br><span style="color:{ERROR_COLOR}">{first}</span>'
        self.header.setText(header)
        if record.request_body:
            text = bodies.pretty(record.request_body)
            if request_truncated(record):
                text += "\n\n[the body was longer; only the start is kept]"
        else:
            text = "[the request body was not captured]"
        self._set_text(self.request_text, text)
        self.stream_switch.setVisible(is_stream(record.response_body))
        self._show_response()
        self._set_text(self.timings, timings_text(record))
        failed = failure_text(record) is not None
        if failed and (newly or not self._showed_failure):
            self.tabs.setCurrentIndex(self.tabs.indexOf(self.response_page))
        self._showed_failure = failed

    @staticmethod
    def _set_text(view: QPlainTextEdit, text: str) -> None:
        if view.toPlainText() != text:
            view.setPlainText(text)

    def _show_response(self) -> None:
        record = self.record
        if record is None:
            return
        body = record.response_body
        failure = failure_text(record)
        if not body:
            text = (
                "[no answer yet]"
                if record.done is None
                else "[the history keeps no bodies]"
                if not record.capture
                else ""
                if failure
                else "[the response body was not captured]"
            )
        elif is_stream(body) and self.assembled.isChecked():
            assembled = bodies.assembled_text(
                record.protocol, record.request_body, body
            )
            text = assembled if assembled is not None else bodies.raw_events(body)
        elif is_stream(body):
            text = bodies.raw_events(body)
        else:
            text = bodies.pretty(body)
        if record.response_truncated:
            text += "\n\n[the answer was longer; only the start is kept]"
        if failure and body:
            text = f"{failure}\n\n── what the client received ──\n{text}"
        elif failure:
            text = f"{failure}\n\n{text}" if text else failure
        self._set_text(self.response_text, text)

    def _replayable(self) -> bool:
        record = self.record
        return (
            record is not None
            and record.protocol in FRONT_DOORS  # a model front door's request
            and bool(record.request_body)
            and not request_truncated(record)
        )

    def curl(self) -> str:
        record = self.record
        if record is None:
            return ""
        return self.log.curl_command(record)

    def copy_curl(self) -> None:
        copy_text(self.curl())
        message.info("Copied the request as a curl command")

    def replay(self) -> None:
        """Send the request again; while that runs the button cancels it."""
        if self.tasks.running(REPLAYING):
            self.tasks.cancel(REPLAYING)
            self.reply_label.setText("Replay cancelled")
            return
        record = self.record
        if record is None or not self._replayable():
            return
        self.replay_button.setText("Cancel replay")
        self.reply_label.setText("Replaying…")
        task = self.tasks.start(self._replay(record), what=REPLAYING)
        task.add_done_callback(lambda _task: self._replay_ended())

    def _replay_ended(self) -> None:
        self.replay_button.setText("Replay")
        self.replay_button.setEnabled(self._replayable())

    async def _replay(self, record: RequestRecord) -> None:
        reply = await self.log.replay(record)
        self.last_reply = reply
        summary = reply.text.replace("\n", " ")[:160]
        self.reply_label.setText(
            f"Replay: {reply.status or 'no answer'} in {duration(reply.elapsed)} — "
            f"{summary}"
        )
        if not reply.ok:
            message.error(f"Replay failed: {reply.text}")
