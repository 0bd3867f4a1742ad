"""The figures both training reports use: confusion matrices (counts beside the row-normalised
rates) and PR curves (one fixed colour per class, the same as in `fashion-edge report`)."""

from __future__ import annotations

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from edge.plot_style import LABEL_COLOURS, distinct_colours, label_colour  # noqa: E402
from training.plots import confusion_figure, plot_confusion_matrix, pr_figure  # noqa: E402


def test_confusion_matrix_png(tmp_path):
    counts = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 0]])  # an empty row must not divide by zero
    path = tmp_path / "sub" / "confusion.png"
    plot_confusion_matrix(counts, ["dress", "skirt", "background"], path, "test")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 400  # two panels side by side


def test_confusion_figure_shows_counts_beside_row_normalised_rates():
    counts = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 0]])
    fig = confusion_figure(counts, ["dress", "skirt", "background"], "test")
    try:
        ax_counts, ax_rates = fig.axes[:2]
        shown_counts = np.asarray(ax_counts.images[0].get_array())
        shown_rates = np.asarray(ax_rates.images[0].get_array())
        assert np.array_equal(shown_counts, counts)
        sums = shown_rates.sum(axis=1)
        assert np.allclose(sums[:2], 1.0) and sums[2] == 0  # rows with samples sum to 1, the empty row is 0
        assert shown_rates[1, 1] == pytest.approx(0.7)
        assert {t.get_text() for t in ax_counts.texts} >= {"5", "7", "2"}
        assert "0.70" in {t.get_text() for t in ax_rates.texts}
        assert "counts" in ax_counts.get_title() and "normalised" in ax_rates.get_title()
        assert ax_rates.get_xlabel() == "predicted class" and ax_rates.get_ylabel() == "true class"
    finally:
        plt.close(fig)


def test_confusion_matrix_shape_must_match_labels(tmp_path):
    with pytest.raises(ValueError, match=r"shape \(2, 2\) does not match 3 labels"):
        plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "x.png", "test")


def _evaluators():
    """Two real DetectionEvaluators with boxes of every detector class."""
    from training.detector.metrics import DetectionEvaluator
    from training.detector_data import PRODUCT_CLASSES

    rng = np.random.default_rng(0)
    evaluators = {}
    for name in ("float", "int8"):
        evaluator = DetectionEvaluator(len(PRODUCT_CLASSES))
        for _ in range(8):
            classes = np.arange(len(PRODUCT_CLASSES))
            gt = np.stack([classes * 50.0, classes * 10.0, classes * 50.0 + 40, classes * 10.0 + 80], axis=1)
            pred = gt + rng.normal(0, 6, gt.shape)
            evaluator.add(pred, rng.uniform(0.3, 1.0, len(classes)), classes, gt, classes)
        evaluators[name] = evaluator
    return evaluators, list(PRODUCT_CLASSES)


def test_pr_curves_have_one_distinct_fixed_colour_per_class():
    from training.detector.evaluate import pr_curves

    evaluators, labels = _evaluators()
    fig = pr_figure(pr_curves(evaluators, labels), "PR curves at IoU 0.5")
    try:
        colours_by_panel = []
        for ax in fig.axes:
            lines = {line.get_label().split(" AP50")[0]: to_hex(line.get_color()) for line in ax.get_lines()}
            assert set(lines) == set(labels)
            assert len(set(lines.values())) == len(labels)  # no two classes share a colour
            assert all(colour == label_colour(label) for label, colour in lines.items())
            colours_by_panel.append(lines)
            assert "recall" in ax.get_xlabel() and "precision" in ax.get_ylabel()
        assert colours_by_panel[0] == colours_by_panel[1]  # float and int8 panels agree
    finally:
        plt.close(fig)


def test_label_colours_are_fixed_and_distinct():
    from training.detector_data import PRODUCT_CLASSES

    classifier = ["blazer", "dress", "hat", "hoodie", "longsleeve", "outwear", "pants", "polo", "shirt", "shoes",
                  "shorts", "skirt", "t-shirt"]
    for labels in (list(PRODUCT_CLASSES), classifier):
        assert len({label_colour(label) for label in labels}) == len(labels), labels
        assert all(label.lower() in LABEL_COLOURS for label in labels)
    assert label_colour("Dress") == label_colour("dress") == LABEL_COLOURS["dress"]
    assert label_colour("entrance") == label_colour("entrance")  # unknown labels: stable by name
    spare = distinct_colours([f"camera-{i}" for i in range(8)])
    assert len(set(spare.values())) == 8


def test_report_figures_redraw_from_metrics_json(tmp_path, repo_dir):
    """scripts/replot_reports.py: the committed classifier report's figures from its metrics.json,
    and a detector report's confusion matrices from the counts its evaluation now stores."""
    import importlib.util
    import json
    import shutil

    spec = importlib.util.spec_from_file_location("replot_reports", repo_dir / "scripts" / "replot_reports.py")
    replot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(replot)

    classifier = tmp_path / "classifier"
    classifier.mkdir()
    shutil.copy(repo_dir / "models" / "reports" / "classifier" / "metrics.json", classifier)
    written = replot.replot(classifier)
    assert sorted(p.name for p in written) == ["confusion_float.png", "confusion_int8.png", "training_curves.png"]
    image = cv2.imread(str(classifier / "confusion_int8.png"))
    assert image.shape[1] > 1.5 * image.shape[0]  # counts and rates side by side

    detector = tmp_path / "detector"
    detector.mkdir()
    labels = ["dress", "pants", "background"]
    (detector / "metrics.json").write_text(json.dumps(
        {"val_images": 2, "int8": {"confusion": {"labels": labels, "counts": [[3, 0, 1], [0, 2, 0], [1, 0, 0]]}}}))
    assert [p.name for p in replot.replot_detector(detector)] == ["confusion_int8.png"]
    assert cv2.imread(str(detector / "confusion_int8.png")) is not None
