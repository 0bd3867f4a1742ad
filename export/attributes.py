"""int8 TFLite export of the person-attribute model, with its manifest.

Full-integer quantisation: uint8 pixels in (``unit`` normalisation: scale 1/255, so a pixel maps
onto itself), uint8 sigmoid scores out as output 0, and the pooled 1280-d features as output 1
(``export.embedding``: the person embedding, kept in memory only). Calibration uses training
crops framed like the daemon, never validation crops.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from edge.preprocess import COLOR_ORDER, normalise
from edge.runtime import TFLiteModel, manifest_path, sha256_file


def _calibration(images_rgb: np.ndarray):
    h, w = images_rgb.shape[1:3]
    # a 0..255 ramp first pins the input range to the whole pixel range (exact uint8 input)
    ramp = np.broadcast_to(np.linspace(0, 255, h * w).reshape(h, w, 1), (h, w, 3)).astype(np.uint8)
    yield [normalise(ramp, "unit")[None]]
    for image in images_rgb:
        yield [normalise(image, "unit")[None]]


def export_int8(model, calibration_rgb: np.ndarray, out_path: Path) -> Path:
    import tensorflow as tf

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.export(os.path.join(tmp, "saved"), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(tmp, "saved"))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _calibration(calibration_rgb)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
        data = converter.convert()
    tmp_path = out_path.with_suffix(".tflite.tmp")
    tmp_path.write_bytes(data)
    tmp_path.replace(out_path)
    from export.embedding import add_embedding_output

    try:
        add_embedding_output(out_path)
    except ModelError:
        pass  # no FULLY_CONNECTED head: ships without the embedding
    return out_path


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
