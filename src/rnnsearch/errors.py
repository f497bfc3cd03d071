"""Exceptions raised by rnnsearch."""


class ModelError(ValueError):
    """A model directory (config, weights or vocabulary) is missing, corrupt or inconsistent."""


class EngineError(RuntimeError):
    """The compiled engine reported an error (out of memory, an internal check failed)."""
