"""Pure codecs: bytes <-> IR. No I/O here (see DESIGN.md section 2)."""
