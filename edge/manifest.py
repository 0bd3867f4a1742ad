"""Model manifests: the JSON that says what a TFLite file's outputs mean (labels, layout, input).

Lookup order for a model ``dir/foo.tflite``:

1. an explicit manifest path (config ``detector.manifest`` / ``classifier.manifest``);
2. ``dir/foo.json`` beside the model (what ``export/`` writes for the project's own models);
3. a manifest shipped with the package (``edge/data/manifests/``, in a checkout a link to
   ``models/manifests/``) whose ``files`` object lists the model's file name with the same SHA-256
   (third-party models in ``../shared`` that we may not write beside);
4. otherwise ``ModelError``.

Used by both the detector and the classifier stage.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelError
from .runtime import manifest_path as beside_manifest_path
from .resources import MANIFESTS_DIR as SHIPPED_MANIFESTS
from .runtime import read_manifest_file, sha256_file


def shipped_manifest(model_path: str | Path) -> Path | None:
    """The shipped manifest (edge/data/manifests/) that lists this exact file (name and SHA-256), if any."""
    model_path = Path(model_path)
    if not SHIPPED_MANIFESTS.is_dir() or not model_path.is_file():
        return None
    digest = None
    for candidate in sorted(SHIPPED_MANIFESTS.glob("*.json")):
        try:
            files = json.loads(candidate.read_text()).get("files") or {}
        except (OSError, json.JSONDecodeError, AttributeError):
            continue
        if model_path.name not in files:
            continue
        digest = digest or sha256_file(model_path)
        if files[model_path.name] == digest:
            return candidate
    return None


def load_manifest(model_path: str | Path, manifest_path: str | Path | None = None) -> tuple[dict, Path]:
    """``(manifest, its path)`` following the lookup order above; checks ``labels``."""
    if manifest_path is not None:
        path = Path(manifest_path)
        if not path.is_file():
            raise ModelError("manifest file not found", path=path)
    else:
        path = beside_manifest_path(model_path)
        if not path.is_file():
            path = shipped_manifest(model_path)
            if path is None:
                raise ModelError(
                    f"no manifest for this model: none beside it ({beside_manifest_path(model_path).name}) "
                    "and no manifest shipped with fashion-edge lists it; pass one (detector.manifest / classifier.manifest)",
                    path=model_path,
                )
    data = read_manifest_file(path)
    labels = data.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelError("'labels' must be a non-empty list of names", path=path, field="labels")
    return data, path
