"""Requests: the live request log (`manager`: history, replay, curl; table
`model`), the page (`view`) and its detail pane (`detail_view`, with
`bodies`: pure helpers for request and response bodies)."""
