"""LM Bridge: one local endpoint for every AI tool on a developer's machine."""

__version__ = "0.1.0"
