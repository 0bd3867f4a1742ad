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
        except (OSError, ValueError, RecursionError, AttributeError):  # ValueError: bad JSON or UTF-8
            continue
        if not isinstance(files, dict):
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
    validate_manifest(data, path)
    return data, path


# -- the one schema of every manifest (detector, classifier, person attributes) --------------------
# Types of the keys the stages read; other keys (metrics, training, notes) are free. Value rules that
# need the model (input_size against the input tensor, known normalisations) stay in the stages.

def _names(value) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) and x for x in value)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value) -> bool:
    return isinstance(value, str)


MANIFEST_SCHEMA: dict[str, tuple[object, str]] = {
    "task": (_text, "a string (detect, classify, person_attributes)"),
    "labels": (lambda v: _names(v) and len(v) > 0, "a non-empty list of names"),
    "input_size": (_positive_int, "a positive whole number of pixels"),
    "input_height": (_positive_int, "a positive whole number of pixels"),
    "input_width": (_positive_int, "a positive whole number of pixels"),
    "layout": (_text, "a string (nhwc or nchw)"),
    "garment_labels": (_names, "a list of label names"),
    "normalisation": (_text, "a string"),
    "color_order": (_text, "a string (RGB or BGR)"),
    "output": (lambda v: v is None or _text(v), "a string"),
    "garment_map": (lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str)
                                                           for k, x in v.items()), "an object of name: garment"),
    "embedding": (lambda v: isinstance(v, dict) and _positive_int(v.get("size"))
                  and isinstance(v.get("output"), int) and not isinstance(v.get("output"), bool),
                  "{output: index, size: n}"),
    "files": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
              "an object of file name: sha256"),
    "attributes": (_names, "a list of attribute names"),
    "thresholds": (lambda v: isinstance(v, dict) and all(_number(x) for x in v.values()),
                   "an object of name: number"),
    "margin": (_number, "a number"),
    "dress_or_skirt": (lambda v: v is None or (_names(v) and len(v) == 2), "two attribute names"),
}


def validate_manifest(data: dict, path: str | Path) -> None:
    """ModelError naming the file and the first key whose value has the wrong type."""
    for key, (valid, wanted) in MANIFEST_SCHEMA.items():
        if key == "labels" or key in data:
            if not valid(data.get(key)):
                shown = json.dumps(data.get(key))
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise ModelError(f"'{key}' must be {wanted}, not {shown}", path=path, field=key)
    garments = data.get("garment_labels")
    if garments is not None and not set(garments) <= set(data["labels"]):
        unknown = sorted(set(garments) - set(data["labels"]))
        raise ModelError(f"'garment_labels' names {unknown}, which are not in 'labels'", path=path,
                         field="garment_labels")
