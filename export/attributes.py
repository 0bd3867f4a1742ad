"""int8 TFLite export of the person-attribute model, with its manifest.

Full-integer quantisation: uint8 pixels in (``unit`` normalisation: scale 1/255, so a pixel maps
onto itself), uint8 sigmoid scores out as output 0, and the pooled 1280-d features as output 1
(``export.embedding``: the person embedding, kept in memory only). Calibration uses training
crops framed like the daemon, never validation crops.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from edge.preprocess import COLOR_ORDER
from edge.runtime import TFLiteModel, manifest_path, sha256_file


def export_int8(model, calibration_rgb: np.ndarray, out_path: Path) -> Path:
    """The garment classifier's int8 conversion ('unit' normalisation, uint8 in/out, the pooled
    features as output 1), on the person-attribute model's 2:1 input."""
    from export.classifier import export_int8 as convert

    return convert(model, calibration_rgb, "unit", out_path, with_embedding=True)


def write_manifest(model_path: Path, attributes: list[str], input_height: int, input_width: int, margin: float,
                   thresholds: dict[str, float], extra: dict) -> Path:
    model = TFLiteModel(model_path)
    if model.input.shape[1:3] != (input_height, input_width) or int(np.prod(model.outputs[0].shape)) != len(attributes):
        raise ModelError(f"model shapes {model.input.shape} -> {model.outputs[0].shape} do not match "
                         f"{input_height}x{input_width} / {len(attributes)} attributes", path=model_path)
    scale, zero_point = model.input.quant or (0.0, 0)
    embedding = None
    if len(model.outputs) == 2:
        from export.embedding import add_embedding_output

        embedding = add_embedding_output(model_path)  # reads the entry back; the file is unchanged
    manifest = {
        "task": "person_attributes",  # edge.attributes.model.PersonAttributeModel
        "attributes": list(attributes),
        "labels": list(attributes),  # the key every manifest carries (edge.manifest)
        "dress_or_skirt": ["dress", "skirt"] if {"dress", "skirt"} <= set(attributes) else None,
        "input_height": int(input_height),
        "input_width": int(input_width),
        "color_order": COLOR_ORDER,
        "letterbox": True,
        "normalisation": "unit",
        "margin": float(margin),
        "input": {"dtype": model.input.dtype.name, "scale": float(scale), "zero_point": int(zero_point)},
        "output": "sigmoid",
        "thresholds": {k: round(float(v), 4) for k, v in thresholds.items()},
        **({"embedding": embedding} if embedding else {}),
        "sha256": sha256_file(model_path),
        "size_bytes": Path(model_path).stat().st_size,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
    }
    path = manifest_path(model_path)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
