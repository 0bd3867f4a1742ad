"""One exception type for bad input: its message is the one line the operator sees.

Every loader (config, model, video, dataset) raises ``FashionEdgeError`` with a message
that names the file and, where there is one, the field, e.g.
``configs/demo.yaml: detector.conf: Input should be less than or equal to 1``.
The CLI prints it on one line and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path


class FashionEdgeError(Exception):
    """Bad input the user can fix; ``str(err)`` is a single line."""

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None):
        parts = [str(p) for p in (path, field) if p not in (None, "")]
        text = ": ".join(parts + [message]) if parts else message
        super().__init__(" ".join(text.split()))  # never more than one line


class ModelError(FashionEdgeError):
    """A model file is missing, corrupt or has the wrong shape."""


class SourceError(FashionEdgeError):
    """A video source cannot be opened or read."""


class ConfigError(FashionEdgeError):
    """A config file is missing, malformed or has a bad field."""


class DatasetError(FashionEdgeError):
    """A dataset file or label is missing or malformed."""
