"""Keras classifier -> full-integer int8 TFLite + manifest beside it.

The TFLite input is **uint8 raw pixels** of the letterboxed RGB crop: the model's first layer
already takes the configured normalisation, and calibrating the input on images that span
0..255 makes the input quantisation the identity for 'unit' (scale 1/255, zero point 0). The
manifest records the exact values read back from the converted model, which is what
``edge.preprocess.to_model_input`` uses.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from edge.preprocess import COLOR_ORDER, NORMALISATIONS, normalise
from edge.runtime import TFLiteModel, manifest_path, sha256_file


def _calibration_batches(images_rgb: np.ndarray, normalisation: str):
    # A 0..255 ramp first pins the input range to the full pixel range, so the uint8 input
    # quantisation maps each pixel value onto itself (exact for 'unit' normalisation).
    h, w = images_rgb.shape[1:3]  # square for the classifier, 2:1 for the person-attribute model
    ramp = np.broadcast_to(np.linspace(0, 255, h * w).reshape(h, w, 1), (h, w, 3)).astype(np.uint8)
    yield [normalise(ramp, normalisation)[None]]
    for image in images_rgb:
        yield [normalise(image, normalisation)[None]]


def export_int8(model, calibration_rgb: np.ndarray, normalisation: str, out_path: Path,
                with_embedding: bool = True) -> Path:
    """Convert with full-integer quantisation (uint8 in, uint8 probabilities out as output 0; with
    ``with_embedding`` the head's input tensor as output 1, see export/embedding.py)."""
    import tensorflow as tf

    if normalisation not in NORMALISATIONS:
        raise ModelError(f"unknown normalisation {normalisation!r}", field="normalisation")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Keras 3 -> SavedModel -> converter is the route that works across TF 2.16+.
        model.export(os.path.join(tmp, "saved"), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(tmp, "saved"))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _calibration_batches(calibration_rgb, normalisation)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
        tflite_bytes = converter.convert()
    tmp_path = out_path.with_suffix(".tflite.tmp")
    tmp_path.write_bytes(tflite_bytes)
    tmp_path.replace(out_path)
    if with_embedding:
        # The head's input (global average pool) as output 1: the outfit embedding (export/embedding.py).
        from export.embedding import add_embedding_output

        try:
            add_embedding_output(out_path)
        except ModelError:  # a head without FULLY_CONNECTED: the model ships without an embedding
            pass
    return out_path


def write_manifest(
    model_path: Path,
    labels: list[str],
    input_size: int,
    normalisation: str,
    extra: dict,
) -> Path:
    """The JSON the edge classifier reads beside the model (edge.runtime.manifest_path)."""
    model = TFLiteModel(model_path)
    scale, zero_point = model.input.quant or (0.0, 0)
    embedding = None
    if len(model.outputs) == 2:  # export_int8 added the embedding output
        from export.embedding import add_embedding_output

        embedding = add_embedding_output(model_path)  # a no-op on the file: reads the entry back
    if model.input.shape[1:3] != (input_size, input_size) or model.outputs[0].shape[-1] != len(labels):
        raise ModelError(
            f"model shapes {model.input.shape} -> {model.outputs[0].shape} do not match {input_size}px / {len(labels)} labels",
            path=model_path,
        )
    manifest = {
        "task": "classify",  # what edge.classify.classifier.GarmentClassifier expects
        "labels": list(labels),
        "input_size": int(input_size),
        "color_order": COLOR_ORDER,
        "letterbox": True,
        "normalisation": normalisation,
        "input": {"dtype": model.input.dtype.name, "scale": float(scale), "zero_point": int(zero_point)},
        "output": "probabilities",
        **({"embedding": embedding} if embedding else {}),
        "sha256": sha256_file(model_path),
        "size_bytes": Path(model_path).stat().st_size,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **extra,
    }
    path = manifest_path(model_path)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
