"""The desktop app: Qt lives here and nowhere else in LM Bridge.

- `app`: `LMBridgeApp` wires everything and owns the one shutdown path;
  `run()` is what `lmbridge` calls where a display exists.
- `controller`: the proxy as the GUI sees it (start / stop, bus events as
  Qt signals, LM Studio state, loads in progress).
- Managers own data, Qt item models adapt it: `requests_log` (history,
  today's numbers), `lmstudio_models`, `azure_accounts`, `health`.
- Pages draw and call services: `overview`, `models_panel`,
  `requests_panel` + `request_detail`, `sessions_panel`,
  `conversations_panel`, `azure_panel`, `settings_panel` + `settings_form`,
  `integrations_panel`; `window` holds them, `tray` and `notifications`
  reach the user outside it.
- `message`: the one channel for messages to the user; `tasks`: owned
  background work; `widgets`, `icons`: shared drawing; `bodies`, `stats`:
  pure helpers; `prefs`: the app's own preferences; `qtfix`: PySide
  workarounds.
"""
