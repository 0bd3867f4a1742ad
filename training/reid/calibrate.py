"""Measure the identity stage's thresholds for a freshly trained embedding and write them into its
manifest (``identity_calibration``, edge/identity/calibration.py), through
``scripts/reid_distances.py --write-manifest``: the training commands call this so that a retrained
attribute model or a refitted head never runs with another embedding's thresholds."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

from edge.paths import repo_root


def _script():
    path = repo_root() / "scripts" / "reid_distances.py"
    spec = importlib.util.spec_from_file_location("reid_distances", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def calibrate(model: Path, peta: Path, val_fraction: float, split_seed: int, out_dir: Path,
              head: Path | None = None, log=print) -> bool:
    """Measure on the PETA validation identities of the attribute model's split (``val_fraction``,
    ``split_seed``) and write the calibration into the model's manifest (the head's, with ``head``).
    Returns whether it was written; the script's tables go to ``out_dir``/calibration.log."""
    argv = ["--model", str(model), "--peta", str(peta), "--val-fraction", str(val_fraction),
            "--split-seed", str(split_seed), "--bootstrap", "0", "--out", str(out_dir), "--write-manifest"]
    if head is not None:
        argv += ["--head", str(head)]
    out_dir.mkdir(parents=True, exist_ok=True)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = _script().main(argv)
    (out_dir / "calibration.log").write_text(printed.getvalue())
    if code == 0:
        log(f"identity calibration measured on PETA validation identities: written into "
            f"{(head or model).with_suffix('.json').name} ({out_dir / 'reid.json'})")
    return code == 0
