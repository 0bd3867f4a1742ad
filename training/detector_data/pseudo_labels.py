"""Garment boxes for store frames that carry only teacher person boxes (issue 10, round 2).

The store frames in the detector's training data are labelled with persons only (the COCO
teacher). Ultralytics treats every unlabelled pixel as background, so without garment labels
each store frame teaches the garment classes "this jacket on a store-camera person is nothing",
on exactly the footage the daemon sees. Here a garment teacher (an int8 garment detector through
the daemon's decode) labels the garments the way the daemon looks for them: on each person's
crop (the person box clipped to the frame, no margin: ``edge/pipeline.py``
``_garments_on_persons``), keeping boxes scored >= ``conf`` with sides of at least ``min_side_px``.
Lower-scored garments stay unlabelled (background), as before: a high threshold trades missed
garments for few wrong labels.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# (image) -> (xyxy [N, 4] float pixels, scores [N], class ids [N]) as training.detector.evaluate's predictors
Predict = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def garment_pseudo_labels(image: np.ndarray, person_xyxy: np.ndarray, predict: Predict, conf: float,
                          person_class: int = 0, min_side_px: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Garment boxes (frame pixels) and class ids the teacher finds on each person crop of ``image``."""
    h, w = image.shape[:2]
    found_xyxy, found_cls = [], []
    for x1, y1, x2, y2 in np.asarray(person_xyxy, float).reshape(-1, 4):
        left, top, right, bottom = max(0, int(x1)), max(0, int(y1)), min(w, int(x2)), min(h, int(y2))
        if right - left < 8 or bottom - top < 8:
            continue
        xyxy, scores, classes = predict(image[top:bottom, left:right])
        keep = (classes != person_class) & (scores >= conf)
        # boxes come from the person's own crop, so they already lie on that person
        xyxy = xyxy[keep].astype(float) + [left, top, left, top]
        big = ((xyxy[:, 2] - xyxy[:, 0]) >= min_side_px) & ((xyxy[:, 3] - xyxy[:, 1]) >= min_side_px)
        found_xyxy.append(xyxy[big])
        found_cls.append(classes[keep][big].astype(np.int64))
    if not found_xyxy:
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    return np.concatenate(found_xyxy), np.concatenate(found_cls)
