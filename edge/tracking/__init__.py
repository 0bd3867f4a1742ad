"""Multi-object tracking: ``ByteTracker`` (ByteTrack-class, numpy only)."""

from .bytetrack import ByteTracker

__all__ = ["ByteTracker"]
