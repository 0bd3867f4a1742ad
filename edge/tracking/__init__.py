"""Multi-object tracking: ``ByteTracker`` (ByteTrack-class, numpy only)."""

from .bytetrack import ByteTracker, TrackEvent

__all__ = ["ByteTracker", "TrackEvent"]
