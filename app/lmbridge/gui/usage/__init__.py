"""Usage: the request history over days as charts (`manager` reads it,
`data` shapes it, `charts` draws it, `view` is the page)."""
