"""Redraw the classifier reports' figures from their metrics.json (no model run, no retraining).

    python scripts/replot_reports.py [REPORT_DIR ...]

Without arguments: every ``models/reports/classifier*/**/metrics.json`` whose folder already has a
``confusion_float.png`` (a report committed with figures). Writes ``confusion_float.png``,
``confusion_int8.png`` (counts beside row-normalised rates) and ``training_curves.png`` with the
current plotting code. Detector reports (``models/reports/detector*/**/metrics.json``) get their
``confusion_{float,int8}.png`` redrawn when their metrics.json holds the counts (evaluations since
issue 13 store them); older ones and the PR curves need the evaluation run
(``python -m training.detector --steps evaluate``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root  # noqa: E402

from training.classifier.evaluate import plot_confusion, plot_history  # noqa: E402

REPO = repo_root()


def replot(report_dir: Path) -> list[Path]:
    metrics = json.loads((report_dir / "metrics.json").read_text())
    training = metrics.get("training", {})
    title = f"{training.get('backbone', 'classifier')} {training.get('image_size', '?')}px"
    written = []
    if metrics.get("history"):
        plot_history(metrics["history"], report_dir / "training_curves.png", f"{title}: training curves")
        written.append(report_dir / "training_curves.png")
    for name in ("float", "int8"):
        if "confusion" in metrics.get(name, {}):
            path = report_dir / f"confusion_{name}.png"
            plot_confusion(metrics[name], path, f"{title} {name}: validation confusion")
            written.append(path)
    return written


def replot_detector(report_dir: Path) -> list[Path]:
    from training.plots import plot_confusion_matrix

    metrics = json.loads((report_dir / "metrics.json").read_text())
    written = []
    for name in ("float", "int8"):
        confusion = metrics.get(name, {}).get("confusion")
        if confusion:
            path = report_dir / f"confusion_{name}.png"
            plot_confusion_matrix(confusion["counts"], confusion["labels"], path, f"{name} model, val")
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    reports = REPO / "models" / "reports"
    dirs = [Path(a) for a in argv] or sorted(
        p.parent for p in [*reports.glob("classifier*/**/metrics.json"), *reports.glob("detector*/**/metrics.json")]
        if (p.parent / "confusion_float.png").is_file())
    for report_dir in dirs:
        metrics = json.loads((report_dir / "metrics.json").read_text())
        draw = replot_detector if "val_images" in metrics else replot  # detector reports count val images
        for path in draw(report_dir):
            print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
