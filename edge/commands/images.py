"""The image loop shared by ``fashion-edge detect`` and ``classify``.

An unreadable image prints one error line naming it on stderr; the other images are still
processed, and the exit code is 1 at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np


def read_image(path: str):
    """``(BGR image, None)`` or ``(None, why)``."""
    if not Path(path).is_file():
        return None, "image file not found"
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None or not image.size:
        return None, "cannot decode image"
    return image, None


def for_each_image(command: str, paths: list[str], handle: Callable[[str, np.ndarray], None]) -> int:
    """Calls ``handle(path, image)`` for every readable image; returns the exit code."""
    failed = 0
    for path in paths:
        image, why = read_image(path)
        if image is None:
            print(f"fashion-edge {command}: error: {path}: {why}", file=sys.stderr)
            failed += 1
            continue
        handle(path, image)
    return 1 if failed else 0
