"""Rolling per-stage latency and frame-rate figures for the stats topic and the benchmark."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

import numpy as np


class StageTimer:
    """Keeps the last ``window`` durations (ms) of each named stage; thread-safe."""

    def __init__(self, window: int = 500):
        self._samples: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._samples[stage].append(seconds * 1000.0)

    def summary(self) -> dict[str, dict[str, float]]:
        """{stage: {"p50_ms", "p95_ms", "n"}} over the rolling window."""
        with self._lock:
            items = {k: np.array(v) for k, v in self._samples.items() if v}
        return {
            stage: {
                "p50_ms": round(float(np.percentile(v, 50)), 2),
                "p95_ms": round(float(np.percentile(v, 95)), 2),
                "n": int(v.size),
            }
            for stage, v in sorted(items.items())
        }


class RateMeter:
    """Frames per second since the last ``read()``."""

    def __init__(self):
        self._count = 0
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def tick(self, n: int = 1) -> None:
        with self._lock:
            self._count += n

    def read(self) -> float:
        with self._lock:
            now = time.monotonic()
            fps = self._count / max(now - self._since, 1e-6)
            self._count, self._since = 0, now
        return round(fps, 2)
