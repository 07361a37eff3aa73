"""The desktop app on a real X server (Xvfb, openbox, tint2's tray),
started as `make run` starts it; every check reads the X server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from desktop.conftest import LaunchApp
from desktop.xdesktop import DesktopApp, XSession, port_is_free, until


def test_the_window_appears_and_the_tray_icon_is_embedded(
    desktop_app: DesktopApp,
    x_session: XSession,
    screenshot: Callable[[str], Path],
) -> None:
    window = until(desktop_app.main_window, what="the app's window")
    assert x_session.viewable(window)
    info = x_session.info(window)
    assert int(info["Width"]) >= 800 and int(info["Height"]) >= 500
    assert x_session.prop(window, "WM_CLASS") == '"lmbridge", "LM Bridge"'
    icon = until(desktop_app.tray_icon, what="the tray icon in tint2's tray")
    assert x_session.viewable(icon)
    # The window shows the proxy running on its port.
    status = f"Running on http://127.0.0.1:{desktop_app.port}"
    until(lambda: desktop_app.visible(text=status), what=status)
    until(
        lambda: desktop_app.visible(contains="LM Studio) — connected"),
        what="the fake LM Studio connected on the Overview",
    )
    screenshot("desktop-overview")
    # Pages not opened yet cost nothing: their modules are not even imported
    # (azure-identity alone is 24 MB).
    assert desktop_app.modules("lmbridge.gui.usage") == []
    assert desktop_app.modules("azure.identity") == []
    # Pages change with a real click on the sidebar.
    desktop_app.click(view="sidebar", text="Models")
    until(lambda: desktop_app.visible(text="Load…"), what="the Models page")
    screenshot("desktop-models")
    desktop_app.click(view="sidebar", text="Usage")
    until(lambda: desktop_app.visible(text="Usage"), what="the Usage page")
    assert "lmbridge.gui.usage.view" in desktop_app.modules("lmbridge.gui.usage")
    # Its charts are painted with Qt: no plotting library, no numpy.
    assert desktop_app.modules("pyqtgraph") == desktop_app.modules("numpy") == []


def test_a_second_launch_brings_the_first_forward(
    desktop_app: DesktopApp, x_session: XSession
) -> None:
    window = until(desktop_app.main_window, what="the app's window")
    x_session.x("xdotool", "windowactivate", "--sync", str(window))
    x_session.x("xdotool", "key", "--clearmodifiers", "alt+F4")
    # With a tray, closing the window keeps the app in the tray.
    until(lambda: not x_session.viewable(window), what="the window to close")
    assert desktop_app.poll_running()
    assert x_session.viewable(desktop_app.tray_icon())
    # Said once, on a real screen: recorded as seen.
    gui_ini = desktop_app.lmbridge_home / "gui.ini"
    until(lambda: "tray=true" in gui_ini.read_text(), what="the tray notice")

    again = desktop_app.launch_again()
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    until(lambda: x_session.viewable(window), what="the window to come back")
    until(lambda: x_session.active_window() == window, what="the window to be active")


def test_quit_from_the_tray_menu_frees_the_port(
    launch_app: LaunchApp, x_session: XSession, screenshot: Callable[[str], Path]
) -> None:
    app = launch_app()
    until(app.main_window, what="the app's window")
    until(lambda: not port_is_free(app.port), what="the proxy to listen")
    until(lambda: app.visible(contains="LM Studio) — connected"), what="LM Studio")
    icon = until(app.tray_icon, what="the tray icon")
    x, y = x_session.center(icon)
    x_session.x("xdotool", "mousemove", str(x), str(y), "click", "3")
    until(lambda: app.visible(text="Quit LM Bridge"), what="the tray menu")
    screenshot("desktop-tray-menu")
    app.click(text="Quit LM Bridge")
    assert app.wait_exit(timeout=5) == 0
    assert port_is_free(app.port)
    assert not app.main_window()
