"""`lmbridge launch`: a coding CLI on LM Bridge for one run.

- `clients.py`: the table of clients, and what each is given for a run
  (environment, leading arguments, a file in the run's temporary
  directory where a client reads some setting only from a file);
- `models.py`: the model chosen, loaded in LM Studio with the context the
  client needs, and the window the client compacts within;
- `bridge.py`: the LM Bridge running at the configured address, or one
  started in this process for the session (`ProxyServer`, as `serve`);
- `runner.py`: the client's process, signals and exit status;
- `terminal.py`: the terminal emulator command line the tray menu and the
  Integrations page open `lmbridge launch <client>` in.

The command itself is `cli/launch.py`.
"""
