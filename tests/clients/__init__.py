"""Tests that drive the real Claude Code and Codex CLIs through LM Bridge."""
