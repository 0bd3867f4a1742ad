"""Constant-velocity Kalman filter over box centre and size.

State ``[cx, cy, w, h, vcx, vcy, vw, vh]`` (pixels and pixels per frame). Width and height are
tracked separately rather than ByteTrack's aspect ratio: a walking person's aspect ratio swings
with every stride and the box is what the crops and zones use. Noise is proportional to the box
size, so a far (small) person is not smoothed like a near one.
"""

from __future__ import annotations

import numpy as np

_POSITION_STD = 1.0 / 20  # measurement / process noise, fraction of the box side
_VELOCITY_STD = 1.0 / 160

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)  # x += v each frame
_H = np.eye(4, 8)


def xyxy_to_cxcywh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dtype=np.float64)


def cxcywh_to_xyxy(state: np.ndarray) -> np.ndarray:
    cx, cy, w, h = state[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)


class BoxKalman:
    """One track's filter; ``box`` is the current (predicted or corrected) estimate as xyxy."""

    def __init__(self, box_xyxy: np.ndarray):
        z = xyxy_to_cxcywh(box_xyxy)
        self.mean = np.concatenate([z, np.zeros(4)])
        w, h = z[2], z[3]
        std = np.array([2 * _POSITION_STD * w, 2 * _POSITION_STD * h, 2 * _POSITION_STD * w, 2 * _POSITION_STD * h,
                        10 * _VELOCITY_STD * w, 10 * _VELOCITY_STD * h, 10 * _VELOCITY_STD * w, 10 * _VELOCITY_STD * h])
        self.cov = np.diag(std**2)

    def _sides(self) -> tuple[float, float]:
        return max(self.mean[2], 1.0), max(self.mean[3], 1.0)

    def predict(self) -> None:
        w, h = self._sides()
        q = np.array([_POSITION_STD * w, _POSITION_STD * h, _POSITION_STD * w, _POSITION_STD * h,
                      _VELOCITY_STD * w, _VELOCITY_STD * h, _VELOCITY_STD * w, _VELOCITY_STD * h]) ** 2
        self.mean = _F @ self.mean
        self.cov = _F @ self.cov @ _F.T + np.diag(q)

    def update(self, box_xyxy: np.ndarray) -> None:
        z = xyxy_to_cxcywh(box_xyxy)
        w, h = self._sides()
        r = np.diag(np.array([_POSITION_STD * w, _POSITION_STD * h, _POSITION_STD * w, _POSITION_STD * h]) ** 2)
        s = _H @ self.cov @ _H.T + r
        gain = np.linalg.solve(s, _H @ self.cov).T  # cov H^T S^-1 (S symmetric)
        self.mean = self.mean + gain @ (z - _H @ self.mean)
        self.cov = (np.eye(8) - gain @ _H) @ self.cov

    @property
    def box(self) -> np.ndarray:
        return cxcywh_to_xyxy(self.mean)

    def next_box(self) -> np.ndarray:
        """Where the box will be one frame on (the prediction ``predict`` will make), as xyxy."""
        return cxcywh_to_xyxy(_F @ self.mean)
