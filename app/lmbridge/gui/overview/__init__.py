"""Overview: the proxy with Start / Stop, each upstream's health, today's
numbers (`manager`: what the page shows; `view`: the page)."""
