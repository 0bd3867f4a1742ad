"""The detections record passed between stages (detector -> tracker -> garments -> rules).

Like supervision's ``Detections``: parallel numpy arrays, cheap to filter with a mask.
Boxes are ``xyxy`` in pixels of the original frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Detections.data key: True for a person box found by the second look (edge/detect/second_look.py)
# in a crop around where the tracker expected someone, False for one of the whole-frame pass
FROM_SECOND_LOOK = "second_look"


@dataclass
class Detections:
    xyxy: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int32
    labels: list[str] = field(default_factory=list)  # class names, index = class id
    track_ids: np.ndarray | None = None  # (N,) int64 once tracked
    # per-box extras, each (N, ...), filtered with the boxes: e.g. "origin", the row of the person
    # whose crop a garment box was found on (as supervision's Detections.data)
    data: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def empty(cls, labels: list[str] | None = None) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), list(labels or []))

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> "Detections":
        """Filter by boolean mask, index array or slice."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index].reshape(-1, 4),
            np.atleast_1d(self.scores[index]),
            np.atleast_1d(self.class_ids[index]),
            self.labels,
            None if self.track_ids is None else np.atleast_1d(self.track_ids[index]),
            {key: np.atleast_1d(values[index]) for key, values in self.data.items()},
        )

    def names(self) -> list[str]:
        """Label of each detection."""
        return [self.labels[c] if 0 <= c < len(self.labels) else str(c) for c in self.class_ids]

    def with_label(self, *names: str) -> "Detections":
        wanted = {self.labels.index(n) for n in names if n in self.labels}
        return self[np.isin(self.class_ids, list(wanted))]

    def to_json(self) -> list[dict]:
        return [
            {"label": name, "score": round(float(s), 4), "box": [round(float(v), 1) for v in box]}
            for name, s, box in zip(self.names(), self.scores, self.xyxy)
        ]
