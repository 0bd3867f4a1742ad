"""Design rules from issue 25 that a refactor must not undo (no mocks: real modules, real imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def imported_modules(module: str) -> set[str]:
    """The edge.* modules a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, {module}; print('\\n'.join(m for m in sys.modules if m.startswith('edge')))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_detector_does_not_depend_on_the_crop_stage():
    loaded = imported_modules("edge.detect.yolo")
    assert "edge.labels" in loaded  # where the detector learns which labels are garments
    assert "edge.garments" not in loaded


def test_garment_vocabulary_lives_in_the_labels_module():
    import edge.garments
    from edge.detect import yolo
    from edge.labels import GARMENT_VOCABULARY

    assert yolo.GARMENT_VOCABULARY is GARMENT_VOCABULARY
    assert not hasattr(edge.garments, "GARMENT_VOCABULARY")  # one home, no stale copy
    assert {"shirt", "dress", "pants"} <= GARMENT_VOCABULARY
    assert "person" not in GARMENT_VOCABULARY and "tie" not in GARMENT_VOCABULARY
