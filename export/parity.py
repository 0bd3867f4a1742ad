"""int8 vs float parity: does quantisation change the answers?

The int8 model runs exactly as on the edge (``edge.runtime.TFLiteModel`` +
``edge.preprocess.to_model_input``); the float model's probabilities come from training. The
check fails when the int8 accuracy is more than ``max_drop`` below the float accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge.errors import ModelError
from edge.preprocess import to_model_input
from edge.runtime import TFLiteModel


class ParityError(ModelError):
    """The int8 model lost more accuracy than allowed."""


def tflite_probabilities(model_path: Path, images_rgb: np.ndarray, normalisation: str, threads: int = 2) -> np.ndarray:
    """Probabilities of a TFLite classifier on letterboxed RGB uint8 squares (edge code path)."""
    model = TFLiteModel(model_path, threads=threads)
    output = model.outputs[0]
    out = np.empty((len(images_rgb), output.shape[-1]), dtype=np.float32)
    for i, image in enumerate(tqdm(images_rgb, desc="int8 inference", unit="img", leave=False)):
        tensor = to_model_input(image, normalisation, model.input.dtype, model.input.quant)
        out[i] = output.dequantize(model.run(tensor)[0])[0]
    return out


def parity_report(float_probs: np.ndarray, int8_probs: np.ndarray, truth: np.ndarray, max_drop: float) -> dict:
    float_top1 = float_probs.argmax(axis=1)
    int8_top1 = int8_probs.argmax(axis=1)
    float_acc = float((float_top1 == truth).mean())
    int8_acc = float((int8_top1 == truth).mean())
    return {
        "n": int(len(truth)),
        "top1_agreement": float((float_top1 == int8_top1).mean()),
        "float_accuracy": float_acc,
        "int8_accuracy": int8_acc,
        "accuracy_drop": float_acc - int8_acc,
        "max_accuracy_drop": max_drop,
        "mean_abs_probability_diff": float(np.abs(float_probs - int8_probs).mean()),
        "passed": bool(float_acc - int8_acc <= max_drop + 1e-12),
    }


def check_parity(report: dict, model_path: Path) -> None:
    if not report["passed"]:
        raise ParityError(
            f"int8 accuracy {report['int8_accuracy']:.4f} is {report['accuracy_drop'] * 100:.2f} points below float "
            f"{report['float_accuracy']:.4f} (allowed {report['max_accuracy_drop'] * 100:.2f})",
            path=model_path,
        )
