"""Memory of the desktop app (RSS), measured on a real X server.

Starts the real `lmbridge` under Xvfb + openbox + tint2's tray (the desktop
tier's harness, tests/desktop/xdesktop.py) against the fake LM Studio,
then reads VmRSS from /proc/<pid>/status:

1. idle in the tray: the window shown at start, then closed (alt+F4, as a
   user closes it; the app stays in the tray), after the app settled;
2. after the Usage page (its six charts) was opened with a real click on
   the sidebar.

It also lists which heavy modules the app had imported at each point
(asked through the automation hook): pyqtgraph and numpy, which the charts
once used, must stay out. Targets (issue 20): idle <= 150 MB,
after Usage < 180 MB; the script exits 1 if a target is missed.

Run: .venv/bin/python bench/bench_desktop_memory.py   (needs `make sysdeps`)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "app")]

from desktop.xdesktop import (  # noqa: E402
    DesktopApp,
    XSession,
    free_port,
    lmstudio_config,
    missing_tools,
    running_fake_lmstudio,
    until,
)

IDLE_TARGET_MB = 150.0
USAGE_TARGET_MB = 180.0
SETTLE_S = 8.0  # start-up work (LM Studio connection, health checks) done
HEAVY = ("pyqtgraph", "numpy")


def rss_mb(pid: int) -> float:
    """VmRSS of the process, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for {pid}")


def heavy_modules(app: DesktopApp) -> list[str]:
    return [name for name in HEAVY if app.modules(name)]


def measure(session: XSession, workdir: Path, lmstudio_url: str) -> dict[str, float]:
    port = free_port()
    app = DesktopApp(session, workdir, port, lmstudio_config(port, lmstudio_url))
    app.start()
    try:
        window = until(app.main_window, timeout=30, what="the window")
        until(app.tray_icon, what="the tray icon")
        time.sleep(SETTLE_S)
        session.x("xdotool", "windowactivate", "--sync", str(window))
        session.x("xdotool", "key", "--clearmodifiers", "alt+F4")
        until(lambda: not session.viewable(window), what="the window to close")
        time.sleep(3)
        idle = rss_mb(app.pid)
        print(
            f"idle in the tray, window closed: {idle:6.1f} MB RSS "
            f"(heavy modules: {', '.join(heavy_modules(app)) or 'none'})"
        )

        app.launch_again()  # brings the window forward
        until(lambda: session.viewable(window), what="the window to come back")
        app.click(view="sidebar", text="Usage")
        until(
            lambda: app.visible(name="usage-page") or app.visible(text="Usage"),
            what="the Usage page",
        )
        time.sleep(4)
        usage = rss_mb(app.pid)
        print(
            f"after opening Usage:             {usage:6.1f} MB RSS "
            f"(heavy modules: {', '.join(heavy_modules(app)) or 'none'})"
        )
        return {"idle": idle, "usage": usage}
    finally:
        app.stop()


def main() -> int:
    missing = missing_tools()
    if missing:
        print(
            f"bench_desktop_memory: skipped, {', '.join(missing)} not installed "
            "(`make sysdeps`)"
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="lmbridge-mem-") as tmp:
        session = XSession(Path(tmp) / "x").start()
        try:
            with running_fake_lmstudio() as fake:
                figures = measure(session, Path(tmp) / "app", fake.base_url)
        finally:
            session.stop()
    ok = figures["idle"] <= IDLE_TARGET_MB and figures["usage"] < USAGE_TARGET_MB
    print(
        f"targets: idle <= {IDLE_TARGET_MB:.0f} MB, after Usage < "
        f"{USAGE_TARGET_MB:.0f} MB: {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
