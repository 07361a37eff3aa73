"""The desktop app: Qt lives here and nowhere else in LM Bridge.

One package per feature (a page and what it owns), each with its manager
(state, and the calls to services and stores), its Qt item model(s) and
thin view(s): `overview`, `models`, `requests`, `usage`, `sessions`,
`conversations`, `azure`, `settings`, `setup`, `integrations`. Features do
not import each other (import-linter checks it); where one shows another's
state it takes it as a small protocol and the shell passes the object.

The shell and shared pieces stay at this level:

- `app`: `LMBridgeApp` wires everything and owns the one shutdown path;
  `run()` is what `lmbridge` calls where a display exists.
- `controller`: the proxy as the GUI sees it (start / stop, bus events as
  Qt signals, LM Studio state, loads in progress); `health`: upstream
  reachability.
- `window` holds the pages, `tray` and `notifications` reach the user
  outside it; `single_instance`, `prefs` (the app's own preferences).
- `message`: the one channel for messages to the user; `tasks`: owned
  background work; `widgets`, `icons`: shared drawing; `tablemodel`: the
  table models' base with columns found by key; `formats`, `stats`: pure
  helpers several features share; `qtfix`: PySide workarounds.
"""
