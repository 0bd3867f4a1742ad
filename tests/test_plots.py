"""The one confusion-matrix figure both training reports use."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.plots import plot_confusion_matrix


def test_confusion_matrix_png(tmp_path):
    counts = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 0]])  # an empty row must not divide by zero
    path = tmp_path / "sub" / "confusion.png"
    plot_confusion_matrix(counts, ["dress", "skirt", "background"], path, "test")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 200


def test_confusion_matrix_shape_must_match_labels(tmp_path):
    with pytest.raises(ValueError, match=r"shape \(2, 2\) does not match 3 labels"):
        plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "x.png", "test")
