"""First-run setup: what it writes (`plan`), what it reads from the rest
of the app (`sources`: protocols), the wizard (`wizard`) and its first
pages (`pages`)."""
