"""Pages follow what happens without a Refresh, on a real X server: a
request made with curl appears on Usage (open at the time) and on Requests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from desktop.xdesktop import DesktopApp, until

MODEL = "qwen/qwen3-coder-30b"  # one of the fake LM Studio's models


def curl_chat(port: int) -> dict[str, object]:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "30",
            f"http://127.0.0.1:{port}/v1/chat/completions",
            "-H",
            "content-type: application/json",
            "-d",
            json.dumps(body),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_a_curl_request_appears_on_usage_and_requests_without_refresh(
    desktop_app: DesktopApp, screenshot: Callable[[str], Path]
) -> None:
    until(desktop_app.main_window, what="the app's window")
    status = f"Running on http://127.0.0.1:{desktop_app.port}"
    until(lambda: desktop_app.visible(text=status), what=status)
    desktop_app.click(view="sidebar", text="Usage")
    until(
        lambda: desktop_app.visible(contains="No requests in the last 7 days yet."),
        what="Usage's empty state",
    )
    answer = curl_chat(desktop_app.port)
    assert "choices" in answer, answer
    # Nothing is clicked: the open page follows the request.
    until(
        lambda: desktop_app.visible(name="usage-summary", contains="1 request, "),
        what="Usage to count the request",
    )
    assert not desktop_app.visible(contains="No requests in the last 7 days yet.")
    screenshot("desktop-usage-live")
    desktop_app.click(view="sidebar", text="Requests")
    until(
        lambda: desktop_app.visible(view="requests-table", text="200"),
        what="the request's row on Requests",
    )
    route = f"{MODEL} → lmstudio/{MODEL}"
    assert desktop_app.visible(view="requests-table", text=route)
    screenshot("desktop-requests-live")
