"""Upstream clients (one per upstream kind) and the router that picks them."""
