"""Durable state in one SQLite database: conversations, sessions, history."""
