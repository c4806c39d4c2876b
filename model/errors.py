"""Plain exceptions of the model package; ``api.errors`` maps each to one HTTP status."""

from __future__ import annotations

from typing import Any


class ModelError(Exception):
    """Base: a message for people and keyword details for machines (``extra``)."""

    def __init__(self, message: str, **extra: Any):
        super().__init__(message)
        self.message, self.extra = message, extra


class NotFound(ModelError):
    """No such model version or alias."""


class IntegrityError(ModelError):
    """An artifact whose bytes do not match the digest the registry recorded: never unpickled."""


class NoModel(ModelError):
    """Nothing is behind the alias yet (train, then promote)."""


class Unscorable(ModelError):
    """The model cannot score these inputs (for example a feature set the stream does not compute)."""
