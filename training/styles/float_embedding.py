"""A float re-computation of the shipped classifier's embedding, for the int8-vs-float comparison.

The float Keras model of the shipped classifier was not kept, so this rebuilds it from the int8
file: every CONV_2D / DEPTHWISE_CONV_2D weight and bias is dequantised into Keras'
``MobileNetV2(alpha=1.0)`` with identity batch-norms (``training/recover_imagenet.load_into``'s
method; the layer names here are the exporter's Keras names, ``.../backbone_1/block_3_expand_1/...``),
and the head's FULLY_CONNECTED weights go into a Dense softmax. What stays: the int8 *weight*
rounding. What goes: every int8 *activation* rounding, which is what the comparison is about.
The input is the daemon's letterboxed uint8 RGB crop mapped to [-1, 1] like the graph's
``to_symmetric`` layer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edge.errors import ModelError
from training.recover_coco import _dequant, _interpreter
from training.recover_imagenet import BN_EPSILON, _batchnorm_of, _keras_kernel


def keras_layer_name(tensor_name: str) -> str | None:
    """``mobilenet_v2_1_1/backbone_1/block_3_expand_1/convolution`` -> ``block_3_expand``."""
    parts = tensor_name.split(";")[0].split("/")
    if len(parts) < 3 or not parts[1].startswith("backbone"):
        return None
    return re.sub(r"_\d+$", "", parts[2])


def build_float(tflite_path: Path):
    """(Keras model image[-1,1] -> (embedding, probabilities), number of convs loaded)."""
    import keras

    interp = _interpreter(Path(tflite_path))
    details = {d["index"]: d for d in interp.get_tensor_details()}
    convs, head = {}, None
    for op in interp._get_ops_details():  # noqa: SLF001 - the public API has no op list
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _, w, b = list(op["inputs"])[:3]
            name = keras_layer_name(details[w]["name"])
            if name is None:
                raise ModelError(f"weight {details[w]['name']!r} is not a backbone layer", path=tflite_path)
            convs[name] = (op["op_name"], _dequant(details[w], interp.get_tensor(w)),
                           _dequant(details[b], interp.get_tensor(b)).astype(np.float32))
        elif op["op_name"] == "FULLY_CONNECTED":
            _, w, b = list(op["inputs"])[:3]
            head = (_dequant(details[w], interp.get_tensor(w)), _dequant(details[b], interp.get_tensor(b)))
    if head is None:
        raise ModelError("no FULLY_CONNECTED head", path=tflite_path)
    backbone = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, include_top=False, weights=None,
                                              pooling="avg")
    loaded = 0
    for layer in backbone.layers:
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            continue
        op_name, weight, bias = convs.pop(layer.name)
        layer.set_weights([_keras_kernel(op_name, weight)])
        bn = _batchnorm_of(backbone, layer.name)
        n = bias.shape[0]
        bn.set_weights([np.ones(n, np.float32), bias, np.zeros(n, np.float32), np.full(n, 1.0 - BN_EPSILON, np.float32)])
        loaded += 1
    if convs:
        raise ModelError(f"TFLite convs without a Keras layer: {sorted(convs)[:3]}", path=tflite_path)
    dense = keras.layers.Dense(head[0].shape[0], activation="softmax")
    outputs = dense(backbone.output)
    dense.set_weights([head[0].T.astype(np.float32), head[1].astype(np.float32)])
    return keras.Model(backbone.input, [backbone.output, outputs]), loaded


def float_embeddings(model, images_rgb_uint8: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(L2-normalised embeddings, probabilities) of letterboxed uint8 RGB crops."""
    embeddings, probabilities = [], []
    for start in range(0, len(images_rgb_uint8), batch):
        x = images_rgb_uint8[start:start + batch].astype(np.float32) / 127.5 - 1.0
        e, p = model.predict_on_batch(x)
        embeddings.append(np.asarray(e))
        probabilities.append(np.asarray(p))
    e = np.concatenate(embeddings)
    return (e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)).astype(np.float32), np.concatenate(probabilities)


def embed_items_float(model, items, cache_dir: Path, name: str, model_sha256: str, batch: int = 32) -> np.ndarray:
    """Float embeddings of ``training.styles.data`` items (whole photo, or its boxes pooled), cached."""
    import cv2
    from tqdm import tqdm

    from edge.classify.classifier import l2_normalise
    from edge.preprocess import classifier_input
    from training.styles.data import _cache_path, crop

    cache = _cache_path(cache_dir, f"float-{name}", items, model_sha256)
    if cache.is_file():
        with np.load(cache) as data:
            return data["embeddings"]
    crops, owner = [], []
    vectors = []
    pending: list[tuple[int, np.ndarray]] = []
    pooled: dict[int, list[np.ndarray]] = {}

    def flush():
        if not pending:
            return
        e, _ = float_embeddings(model, np.stack([c for _, c in pending]), batch=len(pending))
        for (i, _), v in zip(pending, e):
            pooled.setdefault(i, []).append(v)
        pending.clear()

    for i, item in enumerate(tqdm(items, desc=f"float {name}", unit="photo", mininterval=2)):
        image = cv2.imread(str(item.path))
        pieces = [image] if item.boxes is None else [crop(image, b) for b in item.boxes]
        pieces = [p for p in pieces if p.size and min(p.shape[:2]) >= 8] or [image]
        for piece in pieces:
            pending.append((i, classifier_input(piece, 224)))
        if len(pending) >= batch:
            flush()
    flush()
    vectors = np.stack([l2_normalise(np.mean(pooled[i], axis=0)) for i in range(len(items))]).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "wb") as fh:
        np.savez(fh, embeddings=vectors)
    return vectors
