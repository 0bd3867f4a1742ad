"""Recover float ImageNet weights of MobileNetV2 1.0 from the quantised TFLite classifier.

``../shared/models/imagenet/mobilenet_v2_1.0_224_quant.tflite`` (Coral test data) is the
standard TF-slim MobileNetV2 1.0 224, trained quantisation-aware, with batch-norm folded into
every convolution and uint8 per-tensor weights. Dequantising each CONV_2D / DEPTHWISE_CONV_2D
weight and int32 bias (``(q - zero_point) * scale``, per tensor or per channel) gives the float
network of the same architecture. It is loaded into Keras' ``MobileNetV2(alpha=1.0)`` with an
**identity batch-norm** after each conv (Keras' convs have no bias): ``gamma = 1``,
``beta = folded bias``, ``moving_mean = 0``, ``moving_var = 1 - eps`` (so ``sqrt(var + eps) = 1``);
in inference mode (how ``training/classifier`` runs the backbone, also while fine-tuning) that
is exactly ``conv + bias``. The approach is the one ``training/recover_coco.py`` uses for the
COCO detector, whose interpreter helpers are reused here.

Which TFLite op is which Keras layer? The converter keeps TF-slim's scope names in each weight
tensor's name (``MobilenetV2/expanded_conv_5/project/...``), so layers are matched **by name**
(``expanded_conv_5/project`` -> Keras ``block_5_project``) and every weight shape is checked;
the TF-slim graph pads like Keras' MobileNetV2 (SAME for stride 1, one extra pixel bottom/right
for stride 2), which the verification confirms.

The 1001-way top (index 0 = background) is a 1x1 conv on the pooled features; it becomes a
``Dense(1001)`` logits layer for the verification only (training uses the backbone).

``python -m training.recover_imagenet [--images N] [--out runs/recover/mobilenet_v2_imagenet.npz]``
verifies the recovered float model against the TFLite file on real clothing photos (top-1
agreement, max |logit difference|), prints the report and writes it beside ``--out``;
the classifier training loads the weights straight from the ``.tflite`` (``model.weights``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ModelError
from edge.paths import repo_root, shared_dir
from edge.preprocess import classifier_input
from edge.runtime import tensor_info
from edge.preprocess import to_model_input
from training.recover_coco import _dequant, _interpreter

DEFAULT_TFLITE = "models/imagenet/mobilenet_v2_1.0_224_quant.tflite"  # under ../shared
BN_EPSILON = 1e-3  # keras.applications.MobileNetV2's batch-norm epsilon
LOGITS = "logits"  # Keras name of the recovered 1001-way top


def slim_to_keras(scope: str) -> str | None:
    """TF-slim scope ``MobilenetV2/expanded_conv_3/expand`` -> Keras layer ``block_3_expand``."""
    parts = scope.split("/")
    if parts[0] != "MobilenetV2" or len(parts) < 2:
        return None
    if parts[1] == "Conv":
        return "Conv1"
    if parts[1] == "Conv_1":
        return "Conv_1"
    if parts[1] == "Logits":
        return LOGITS
    m = re.fullmatch(r"expanded_conv(?:_(\d+))?", parts[1])
    if m and len(parts) >= 3 and parts[2] in ("expand", "depthwise", "project"):
        return f"expanded_conv_{parts[2]}" if m.group(1) is None else f"block_{m.group(1)}_{parts[2]}"
    return None


def read_tflite_weights(path: Path) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """Keras layer name -> (op name, dequantised weight in TFLite layout, dequantised bias)."""
    interp = _interpreter(Path(path))
    details = {d["index"]: d for d in interp.get_tensor_details()}
    layers: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    for op in interp._get_ops_details():  # noqa: SLF001 - the public API has no op list
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        _, w_idx, b_idx = list(op["inputs"])[:3]
        scope = details[w_idx]["name"].split(";")[0]
        name = slim_to_keras("/".join(scope.split("/")[:3]))
        if name is None:
            raise ModelError(f"TFLite weight {scope!r} has no MobileNetV2 layer", path=path)
        if name in layers:
            raise ModelError(f"two TFLite ops map to Keras layer {name!r}", path=path)
        weight = _dequant(details[w_idx], interp.get_tensor(w_idx))
        bias = _dequant(details[b_idx], interp.get_tensor(b_idx))
        layers[name] = (op["op_name"], weight, bias.astype(np.float32))
    return layers


def _keras_kernel(op_name: str, weight: np.ndarray) -> np.ndarray:
    # CONV_2D [out, kh, kw, in] -> [kh, kw, in, out]; DEPTHWISE_CONV_2D [1, kh, kw, C] -> [kh, kw, C, 1]
    return weight.transpose(1, 2, 3, 0)


def _batchnorm_of(model, conv_name: str):
    import keras

    name = {"Conv1": "bn_Conv1", "Conv_1": "Conv_1_bn"}.get(conv_name, f"{conv_name}_BN")
    layer = model.get_layer(name)
    if not isinstance(layer, keras.layers.BatchNormalization):
        raise ModelError(f"{name} is not a batch-norm layer")
    return layer


def load_into(backbone, tflite_path: Path, logits=None) -> dict:
    """Set every conv (and its identity batch-norm) of a Keras ``MobileNetV2(alpha=1.0)`` from
    the TFLite file; ``logits``: an optional ``Dense(1001)`` that receives the 1001-way top.
    Returns counts for the report. Works at any input size (convolutions only)."""
    import keras

    tflite_path = Path(tflite_path)
    weights = read_tflite_weights(tflite_path)
    convs = [layer for layer in backbone.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    for layer in convs:
        if layer.name not in weights:
            raise ModelError(f"no TFLite weights for Keras layer {layer.name!r}", path=tflite_path)
        op_name, weight, bias = weights.pop(layer.name)
        kernel = _keras_kernel(op_name, weight)
        is_dw = isinstance(layer, keras.layers.DepthwiseConv2D)
        if is_dw != (op_name == "DEPTHWISE_CONV_2D") or tuple(layer.kernel.shape) != kernel.shape:
            raise ModelError(f"{layer.name}: Keras kernel {tuple(layer.kernel.shape)} vs TFLite {op_name} "
                             f"{kernel.shape}", path=tflite_path)
        layer.set_weights([kernel])
        bn = _batchnorm_of(backbone, layer.name)
        if bn.epsilon != BN_EPSILON:
            raise ModelError(f"{bn.name}: epsilon {bn.epsilon} (expected {BN_EPSILON})")
        n = bias.shape[0]
        bn.set_weights([np.ones(n, np.float32), bias, np.zeros(n, np.float32), np.full(n, 1.0 - bn.epsilon, np.float32)])
    top = weights.pop(LOGITS, None)
    if logits is not None:
        if top is None:
            raise ModelError("the TFLite file has no Logits layer", path=tflite_path)
        _, weight, bias = top
        logits.set_weights([weight.reshape(weight.shape[0], -1).T, bias])  # [1001,1,1,1280] -> [1280,1001]
    if weights:
        raise ModelError(f"TFLite layers left without a Keras layer: {sorted(weights)}", path=tflite_path)
    return {"convs": len(convs), "top": logits is not None}


def build_recovered(tflite_path: Path, image_size: int = 224):
    """Keras MobileNetV2 1.0 + logits with the recovered weights; input in [-1, 1]."""
    import keras

    backbone = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3), alpha=1.0, include_top=False, weights=None, pooling="avg"
    )
    logits = keras.layers.Dense(1001, name=LOGITS)
    model = keras.Model(backbone.input, logits(backbone.output), name="mobilenet_v2_recovered")
    stats = load_into(backbone, tflite_path, logits)
    return model, stats


NORMALISATION = "symmetric"  # the graph's float input is [-1, 1] (models/manifests/imagenet-mobilenet-v2.json)


def quantised_input(interp, rgb: np.ndarray) -> np.ndarray:
    """The interpreter's input tensor for a letterboxed RGB image: the daemon's own conversion."""
    info = tensor_info(interp.get_input_details()[0])
    return to_model_input(rgb, NORMALISATION, info.dtype, info.quant)


def _tflite_logits(interp, tensor: np.ndarray) -> np.ndarray:
    """Dequantised logits (the RESHAPE before SOFTMAX) of one quantised input tensor."""
    interp.set_tensor(interp.get_input_details()[0]["index"], tensor)
    interp.invoke()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    softmax = next(op for op in interp._get_ops_details() if op["op_name"] == "SOFTMAX")  # noqa: SLF001
    idx = softmax["inputs"][0]
    return _dequant(details[idx], interp.get_tensor(idx)).reshape(-1)


def verify(model, tflite_path: Path, images: list[Path], min_agreement: float = 0.95, log=None) -> dict:
    """Top-1 agreement and logit differences of the recovered float model vs the TFLite file.

    Both see the daemon's classifier input (``edge.preprocess.classifier_input``, 224 px
    letterbox, 'symmetric' [-1, 1] as in the baseline's manifest); TFLite gets it quantised by
    the interpreter's own input parameters, the float model exactly those values dequantised."""
    from tqdm import tqdm

    interp = _interpreter(Path(tflite_path))
    info = interp.get_input_details()[0]
    scale, zero = info["quantization"]
    size = int(info["shape"][1])
    ref, inputs = [], []
    for path in tqdm(images, desc="tflite", unit="img", leave=False, disable=log is None):
        bgr = cv2.imread(str(path))
        if bgr is None:
            raise ModelError("cannot read image", path=path)
        tensor = quantised_input(interp, classifier_input(bgr, size))
        inputs.append(tensor[0])
        ref.append(_tflite_logits(interp, tensor))
    ref = np.stack(ref)
    x = (np.stack(inputs).astype(np.float32) - zero) * scale
    got = model.predict(x, batch_size=32, verbose=0)
    diff = np.abs(got - ref)
    agreement = float((got.argmax(1) == ref.argmax(1)).mean())
    top5 = np.argsort(-ref, axis=1)[:, :5]
    # where TFLite's own top-1 leads its runner-up by < 2 steps of its int8 logits, the two
    # models' answers are within int8 noise of a tie: reported separately, never instead
    step = _logit_scale(interp)
    ordered = np.sort(ref, axis=1)
    clear = (ordered[:, -1] - ordered[:, -2]) >= 2 * step
    report = {
        "tflite": str(tflite_path),
        "images": len(images),
        "top1_agreement": agreement,
        "float_top1_in_tflite_top5": float((top5 == got.argmax(1)[:, None]).any(1).mean()),
        "clear_margin_images": int(clear.sum()),
        "top1_agreement_clear_margin": float((got.argmax(1) == ref.argmax(1))[clear].mean()) if clear.any() else None,
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "tflite_logit_range": [float(ref.min()), float(ref.max())],
        "tflite_logit_step": float(step),
        "min_agreement": min_agreement,
        "passed": agreement >= min_agreement,
    }
    return report


def layer_errors(model, tflite_path: Path, image: Path) -> dict[str, float]:
    """Per conv layer: mean |Keras output - TFLite output| / mean |TFLite output| on one image.

    Each Keras layer's output (after its identity batch-norm and ReLU6, where it has one) is
    compared with the dequantised output tensor of the matching TFLite op, both fed the same
    input: a wrong weight layout or padding shows as a large error at the first affected layer,
    int8 activation noise as a few per cent that grows slowly with depth."""
    import keras

    interp = _interpreter(Path(tflite_path))
    bgr = cv2.imread(str(image))
    if bgr is None:
        raise ModelError("cannot read image", path=image)
    size = int(interp.get_input_details()[0]["shape"][1])
    tensor = quantised_input(interp, classifier_input(bgr, size))
    interp.set_tensor(interp.get_input_details()[0]["index"], tensor)
    interp.invoke()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    reference = {}
    for op in interp._get_ops_details():  # noqa: SLF001
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            name = slim_to_keras("/".join(details[op["inputs"][1]]["name"].split(";")[0].split("/")[:3]))
            if name != LOGITS:
                out = op["outputs"][0]
                reference[name] = _dequant(details[out], interp.get_tensor(out))
    names = [layer.name for layer in model.layers]
    probes = []
    for conv in reference:
        i = names.index(_batchnorm_of(model, conv).name)
        after = model.layers[i + 1] if i + 1 < len(names) else None
        probes.append(after.name if after is not None and isinstance(after, keras.layers.ReLU) else names[i])
    scale, zero = interp.get_input_details()[0]["quantization"]
    x = (tensor.astype(np.float32) - zero) * scale
    outs = keras.Model(model.input, [model.get_layer(n).output for n in probes]).predict(x, verbose=0)
    return {conv: float(np.abs(o - reference[conv]).mean() / (np.abs(reference[conv]).mean() + 1e-9))
            for conv, o in zip(reference, outs)}


def _logit_scale(interp) -> float:
    details = {d["index"]: d for d in interp.get_tensor_details()}
    softmax = next(op for op in interp._get_ops_details() if op["op_name"] == "SOFTMAX")  # noqa: SLF001
    return float(details[softmax["inputs"][0]]["quantization_parameters"]["scales"][0])


def clothing_images(n: int, seed: int = 0) -> list[Path]:
    """``n`` real photos of ../shared/datasets/clothing/images (seeded sample, sorted)."""
    paths = sorted((shared_dir() / "datasets/clothing/images").glob("*.jpg"))
    rng = np.random.default_rng(seed)
    return [paths[i] for i in sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False))]


def save_weights(backbone, out: Path) -> None:
    """Backbone weights as ``layer/i`` arrays in an .npz (the training reads the .tflite itself)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{layer.name}/{i}": w for layer in backbone.layers for i, w in enumerate(layer.get_weights())}
    np.savez(out, **arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflite", type=Path, default=shared_dir() / DEFAULT_TFLITE)
    parser.add_argument("--images", type=int, default=300, help="clothing photos used for the verification")
    parser.add_argument("--min-agreement", type=float, default=0.95)
    parser.add_argument("--out", type=Path, default=repo_root() / "runs/recover/mobilenet_v2_imagenet.npz")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    try:
        model, stats = build_recovered(args.tflite)
        images = clothing_images(args.images)
        report = verify(model, args.tflite, images, args.min_agreement, log=print)
        errors = layer_errors(model, args.tflite, images[0])
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report.update(stats)
    report["layer_relative_error"] = {"image": images[0].name, "first": errors["Conv1"],
                                      "median": float(np.median(list(errors.values()))),
                                      "max": max(errors.values()), "last": errors["Conv_1"]}
    report["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(report, indent=1))
    if not report["passed"]:
        print("recovery did NOT verify against the TFLite file", file=sys.stderr)
        return 1
    save_weights(model, args.out)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
