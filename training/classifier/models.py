"""Classifier networks. Every model takes the *normalised* image (edge.preprocess.normalise).

* ``mobilenet_v1``: Keras MobileNet v1 (width ``alpha``), ImageNet weights from a local .h5
  (never ``weights='imagenet'``: no network here), global average pooling, dropout, softmax.
  MobileNet expects [-1, 1]; a fixed affine layer inside the graph maps the configured
  normalisation onto that, so the int8 model can take raw uint8 pixels.
* ``mobilenet_v2``: Keras MobileNetV2 (width ``alpha``, 1.0 for the recovered weights); its
  ImageNet weights are recovered from the quantised TFLite classifier named by ``weights``
  (``training/recover_imagenet.py``: dequantised, batch-norm folded, identity batch-norm), or
  read from a Keras ``.h5``. Same head and [-1, 1] input mapping as ``mobilenet_v1``.
* ``small_cnn``: the seeds' baseline, Conv32-Pool-Conv64-Pool-Dense128-softmax.
"""

from __future__ import annotations

from pathlib import Path

import keras

from edge.errors import ModelError
from edge.preprocess import NORMALISATIONS

from .config import ModelConfig

BACKBONE_NAME = "backbone"


def _to_symmetric(normalisation: str) -> keras.layers.Layer:
    """Affine layer: configured normalisation -> MobileNet's [-1, 1]."""
    offset, divisor = NORMALISATIONS[normalisation]
    # x_model = (p - offset) / divisor  =>  p = x * divisor + offset  =>  (p - 127.5) / 127.5
    scale = divisor / 127.5
    shift = (offset - 127.5) / 127.5
    return keras.layers.Rescaling(scale=scale, offset=shift, name="to_symmetric")


def build_model(config: ModelConfig, n_classes: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    size = config.image_size
    inputs = keras.Input((size, size, 3), name="image")
    if config.backbone == "small_cnn":
        x = keras.layers.Conv2D(32, 3, activation="relu", name="conv32")(inputs)
        x = keras.layers.MaxPooling2D(name="pool1")(x)
        x = keras.layers.Conv2D(64, 3, activation="relu", name="conv64")(x)
        x = keras.layers.MaxPooling2D(name="pool2")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(128, activation="relu", name="dense128")(x)
        x = keras.layers.Dropout(config.dropout, name="dropout")(x)
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
        return keras.Model(inputs, outputs, name="small_cnn")

    if config.backbone == "mobilenet_v2":
        backbone = keras.applications.MobileNetV2(
            input_shape=(size, size, 3), alpha=config.alpha, include_top=False, weights=None, pooling="avg"
        )
    else:
        backbone = keras.applications.MobileNet(
            input_shape=(size, size, 3), alpha=config.alpha, include_top=False, weights=None, pooling="avg"
        )
    backbone.name = BACKBONE_NAME
    if config.weights is not None and Path(config.weights).suffix == ".tflite":
        if config.backbone != "mobilenet_v2" or config.alpha != 1.0:
            raise ModelError("weights from a .tflite file are recovered for mobilenet_v2 alpha 1.0 only",
                             field="model.weights")
        from training.recover_imagenet import load_into

        load_into(backbone, Path(config.weights))  # raises ModelError naming the file
    elif config.weights is not None:
        if not Path(config.weights).is_file():
            raise ModelError("ImageNet weights not found", path=config.weights)
        try:
            # by_name: the stock 224 px weights fit any input size (convolutions only)
            backbone.load_weights(str(config.weights), by_name=True, skip_mismatch=False)
        except Exception as exc:  # h5py/keras raise many kinds; one line for the user
            raise ModelError(f"cannot load weights for alpha={config.alpha} ({type(exc).__name__})", path=config.weights) from None
    x = _to_symmetric(config.normalisation)(inputs)
    # training=False keeps BatchNorm in inference mode even when the backbone is unfrozen:
    # with a few thousand images, updating BN statistics hurts more than it helps.
    x = backbone(x) if config.bn_trainable else backbone(x, training=False)
    x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"{config.backbone}_{config.alpha:g}")


def backbone_of(model: keras.Model) -> keras.Model | None:
    try:
        return model.get_layer(BACKBONE_NAME)
    except ValueError:
        return None


def set_trainable_from(backbone: keras.Model, first_layer: str | None, bn_trainable: bool = False) -> int:
    """Freeze the backbone below ``first_layer``; returns the number of trainable layers."""
    names = [layer.name for layer in backbone.layers]
    if first_layer is not None and first_layer not in names:
        raise ModelError(f"no layer {first_layer!r} in the backbone", field="train.unfreeze_from")
    start = 0 if first_layer is None else names.index(first_layer)
    backbone.trainable = True
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= start and (bn_trainable or not isinstance(layer, keras.layers.BatchNormalization))
    return sum(1 for layer in backbone.layers if layer.trainable and layer.weights)


def flip_averaged(model: keras.Model) -> keras.Model:
    """The same classifier answering the mean of the image's and its mirror image's probabilities.

    Garments are left-right symmetric in meaning, so test-time flipping is free accuracy for 2x
    the compute; it lives inside the graph so the edge code needs no change.
    """
    inputs = keras.Input(model.input_shape[1:], name="image")
    mirrored = keras.layers.Lambda(lambda x: keras.ops.flip(x, axis=2), name="mirror")(inputs)
    outputs = keras.layers.Average(name="probabilities_mean")([model(inputs), model(mirrored)])
    return keras.Model(inputs, outputs, name=f"{model.name}_flipavg")
