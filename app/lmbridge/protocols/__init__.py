"""Pure codecs: bytes <-> IR. No I/O here (see docs/ARCHITECTURE.md section 2)."""
