"""Whether the person detector needs to run on this frame: the idle gate (issue 26).

A store camera shows an empty floor for much of the day, and the person detector is most of the
daemon's CPU (about 10.5 of 17 ms a frame on the demo clip when it runs on every frame;
docs/performance.md). While somebody is in view, or was found by the last detection, it runs on
every frame. While nobody is, it runs when something moves (the frame differs from the one the
last empty detection saw) and at least every ``idle_interval_s`` regardless: the same idea as
Frigate's motion-gated detection, kept simple because only the question "could somebody have come
in?" is asked.

The comparison is on a small blurred grey copy (``SMALL_WIDTH`` px wide): a pixel has moved when it
differs by at least ``threshold`` grey levels, and the frame when at least ``min_area`` of the
pixels have. A person too small to move that many pixels (a far figure in a wide view) is still
found by the periodic detection, at most ``idle_interval_s`` late. The copy is kept only while
nobody is in view, in memory, and is never written.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import cv2
import numpy as np

SMALL_WIDTH = 160


@runtime_checkable
class DetectionGate(Protocol):
    def should_detect(self, image: np.ndarray, now_s: float, in_view: bool) -> bool:
        """Run the person detector on this frame? ``in_view``: the tracker shows somebody now."""
        ...

    def detected(self, image: np.ndarray, now_s: float, found: bool) -> None:
        """The detector ran on ``image``; ``found``: it found at least one person."""
        ...


class EveryFrame:
    """No gate: the detector runs on every frame (``detector.idle_interval_s: 0``)."""

    def should_detect(self, image: np.ndarray, now_s: float, in_view: bool) -> bool:
        return True

    def detected(self, image: np.ndarray, now_s: float, found: bool) -> None:
        pass


def small_grey(image_bgr: np.ndarray) -> np.ndarray:
    """A blurred grey copy ``SMALL_WIDTH`` px wide (noise and JPEG blocks averaged out)."""
    h, w = image_bgr.shape[:2]
    size = (SMALL_WIDTH, max(1, round(h * SMALL_WIDTH / w)))
    grey = cv2.cvtColor(cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return cv2.GaussianBlur(grey, (5, 5), 0)


class MotionGate:
    def __init__(self, idle_interval_s: float, threshold: int = 25, min_area: float = 0.002):
        self.idle_interval_s = idle_interval_s
        self.threshold = threshold
        self.min_area = min_area
        self._last_detect_s: float | None = None
        self._last_found = True  # until a detection says otherwise, somebody may be there
        self._reference: np.ndarray | None = None  # the last empty detection's frame, small and grey
        # the small copy moved() made of the frame being decided, reused if the detector then runs on
        # it and finds nobody (a second copy of the same frame is ~1 ms)
        self._pending: tuple[np.ndarray, np.ndarray] | None = None
        self.skipped = 0  # frames the detector did not run on

    def moved(self, image: np.ndarray) -> bool:
        """The frame differs from the last empty detection's in at least ``min_area`` of its pixels."""
        if self._reference is None:
            return True
        small = small_grey(image)
        self._pending = (image, small)
        if small.shape != self._reference.shape:
            return True
        changed = cv2.absdiff(small, self._reference) >= self.threshold
        return float(np.count_nonzero(changed)) >= self.min_area * changed.size

    def should_detect(self, image: np.ndarray, now_s: float, in_view: bool) -> bool:
        self._pending = None
        if in_view or self._last_found or self._last_detect_s is None \
                or now_s - self._last_detect_s >= self.idle_interval_s or now_s < self._last_detect_s:
            return True
        if self.moved(image):
            return True
        self._pending = None  # skipped: no detection will follow for this frame
        self.skipped += 1
        return False

    def detected(self, image: np.ndarray, now_s: float, found: bool) -> None:
        self._last_detect_s = now_s
        self._last_found = found
        pending, self._pending = self._pending, None
        if found:
            self._reference = None
        else:
            self._reference = pending[1] if pending is not None and pending[0] is image else small_grey(image)


def build_gate(idle_interval_s: float, threshold: int, min_area: float) -> DetectionGate:
    """The gate a camera's pipeline runs (``detector.idle_interval_s``, ``motion_threshold``, ``motion_min_area``)."""
    if idle_interval_s <= 0:
        return EveryFrame()
    return MotionGate(idle_interval_s, threshold, min_area)
