"""edge/boxes.py: the one box-overlap module (NMS, tracker, crop ownership, appearance, scoring,
training evaluation all use it)."""

from __future__ import annotations

import numpy as np

from edge.boxes import box_iou, containment, iou_matrix, overlap_fraction

A = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)


def test_iou_of_pairs_and_of_one_box():
    iou = iou_matrix(A[:1], A)
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(box_iou(A[0], A), iou[0], rtol=1e-6)
    assert iou_matrix(A, A, np.float64).dtype == np.float64 and iou_matrix(A, A).dtype == np.float32
    assert iou_matrix(np.zeros((0, 4)), A).shape == (0, 3) and iou_matrix(A, []).shape == (3, 0)
    degenerate = np.array([[3, 3, 3, 3]], np.float32)  # an empty box overlaps nothing, no division by zero
    assert np.isfinite(iou_matrix(degenerate, degenerate)).all()


def test_containment_and_overlap_are_fractions_of_the_inner_box():
    person = np.array([[0, 0, 10, 20]], np.float32)
    jacket = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)
    np.testing.assert_allclose(containment(jacket, person), [[1.0], [0.5]])
    # for each box the most of it another box covers; a lone box is uncovered
    np.testing.assert_allclose(overlap_fraction(A), [0.5, 0.5, 0.0])
    assert overlap_fraction(A[:1]).tolist() == [0.0]
