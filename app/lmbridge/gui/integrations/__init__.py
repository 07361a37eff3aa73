"""Integrations: each tool's settings for this proxy, tested and written
(`manager`: the tools' knowledge and the proxy; `view`: the page)."""
