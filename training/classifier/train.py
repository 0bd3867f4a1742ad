"""Two-stage transfer learning on in-memory uint8 images.

Stage 1 (head): the backbone is frozen, so its pooled features are computed once (original and
mirrored image) and only dropout + softmax are trained on them - seconds instead of minutes on a
2-core CPU. Stage 2 (fine-tune): the top of the backbone is unfrozen and the whole network
trains on augmented images at a lower, cosine-decayed learning rate. Both stages stop early on
validation accuracy and keep the best weights. The small CNN has no backbone and trains in one
stage with the fine-tune settings.
"""

from __future__ import annotations

import math
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from edge.preprocess import NORMALISATIONS

from .config import AugmentConfig, ClassifierConfig
from .models import backbone_of, build_model, set_trainable_from


def configure_threads(threads: int) -> None:
    """Bound TensorFlow's thread pools (2 cores shared with other jobs); must run before TF ops."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised in this process (tests); the first setting stays


def class_weights(labels: np.ndarray, n_classes: int, max_weight: float = 5.0) -> dict[int, float]:
    """'Balanced' weights n / (k * count_c), clipped so a rare class does not dominate."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return {i: float(min(max_weight, w)) for i, w in enumerate(weights)}


def normalise_tf(images: tf.Tensor, normalisation: str) -> tf.Tensor:
    offset, divisor = NORMALISATIONS[normalisation]
    return (tf.cast(images, tf.float32) - offset) / divisor


def augmenter(config: AugmentConfig, seed: int) -> keras.Sequential | None:
    """Augmentations on float pixels in [0, 255]; padding is the letterbox grey (114)."""
    fill = 114.0
    layers = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation_deg:
        layers.append(keras.layers.RandomRotation(config.rotation_deg / 360, fill_mode="constant", fill_value=fill, seed=seed + 1))
    if config.zoom:
        layers.append(keras.layers.RandomZoom((-config.zoom, config.zoom), fill_mode="constant", fill_value=fill, seed=seed + 2))
    if config.translate:
        layers.append(keras.layers.RandomTranslation(config.translate, config.translate, fill_mode="constant", fill_value=fill, seed=seed + 3))
    if config.brightness:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed + 4))
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed + 5))
    if config.saturation:
        layers.append(keras.layers.RandomSaturation((0.5 - config.saturation / 2, 0.5 + config.saturation / 2), value_range=(0, 255), seed=seed + 6))
    return keras.Sequential(layers, name="augment") if layers else None


def make_dataset(images, targets, batch_size, normalisation, augment=None, shuffle_seed=None):
    """Batches of (normalised, optionally augmented image, target probability vector)."""
    ds = tf.data.Dataset.from_tensor_slices((images, targets.astype(np.float32)))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(targets), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = tf.clip_by_value(augment(x, training=True), 0.0, 255.0)
        offset, divisor = NORMALISATIONS[normalisation]
        return (x - offset) / divisor, y

    return ds.map(prepare, num_parallel_calls=1).prefetch(2)


def _verbose() -> int:
    return 1 if sys.stdout.isatty() else 2  # progress bar on a terminal, one line per epoch in logs


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.monotonic() - self._t


def predict(model: keras.Model, images: np.ndarray, normalisation: str, batch_size: int = 64) -> np.ndarray:
    ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(lambda x: normalise_tf(x, normalisation))
    return model.predict(ds, verbose=0)


def train_classifier(config: ClassifierConfig, data, n_classes: int, log=print, soft_targets=None) -> tuple[keras.Model, dict]:
    """Train on ``data.train``, early-stop on ``data.validation``; returns the model and its history.

    ``soft_targets`` (N, n_classes), aligned with ``data.train``, replaces the one-hot targets
    (distillation); validation always scores the true labels.
    """
    configure_threads(config.train.threads)
    tc = config.train
    norm = config.model.normalisation
    seed = config.seed
    keras.utils.set_random_seed(seed)
    model = build_model(config.model, n_classes, seed)
    weights = class_weights(data.train.labels, n_classes) if tc.class_weights else None
    history: dict[str, list] = {"stage": [], "accuracy": [], "val_accuracy": [], "loss": [], "val_loss": [], "epoch_seconds": []}
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=tc.label_smoothing)
    x_val, y_val = data.validation.images, data.validation.labels
    train_targets = keras.utils.to_categorical(data.train.labels, n_classes) if soft_targets is None else soft_targets
    val_targets = keras.utils.to_categorical(y_val, n_classes)
    backbone = backbone_of(model)

    if backbone is not None and tc.head.epochs > 0:
        log(f"stage 1: head on frozen {model.name} features ({len(data.train.labels)} images{' + mirrors' if tc.head_mirror else ''})")
        backbone.trainable = False
        t0 = time.monotonic()
        features_model = keras.Model(model.input, model.get_layer("dropout").input)
        f_train, t_train = predict(features_model, data.train.images, norm), train_targets
        if tc.head_mirror:
            f_flip = predict(features_model, data.train.images[:, :, ::-1, :], norm)
            f_train, t_train = np.concatenate([f_train, f_flip]), np.concatenate([t_train, t_train])
        f_val = predict(features_model, x_val, norm)
        log(f"  features in {time.monotonic() - t0:.0f}s")
        feat_in = keras.Input(f_train.shape[1:])
        head = keras.Model(feat_in, model.get_layer("probabilities")(model.get_layer("dropout")(feat_in)))
        head.compile(keras.optimizers.Adam(tc.head.learning_rate), loss=loss, metrics=["accuracy"])
        h = head.fit(
            f_train, t_train, validation_data=(f_val, val_targets),
            epochs=tc.head.epochs, batch_size=64, class_weight=weights, verbose=0,
            callbacks=[keras.callbacks.EarlyStopping("val_accuracy", patience=max(tc.patience, 5), restore_best_weights=True), _EpochTimer()],
        )
        _append(history, h.history, "head")
        log(f"  head: best val accuracy {max(h.history['val_accuracy']):.4f} after {len(h.history['loss'])} epochs")

    if tc.finetune.epochs > 0:
        if backbone is not None:
            n = set_trainable_from(backbone, tc.unfreeze_from, config.model.bn_trainable)
            log(f"stage 2: fine-tune from {tc.unfreeze_from or 'the first layer'} ({n} weighted layers trainable)")
        else:
            log(f"training {model.name} from scratch")
        steps = math.ceil(len(data.train.labels) / tc.batch_size)
        schedule = keras.optimizers.schedules.CosineDecay(tc.finetune.learning_rate, decay_steps=max(1, steps * tc.finetune.epochs), alpha=0.05)
        model.compile(
            keras.optimizers.AdamW(schedule, weight_decay=tc.weight_decay),
            loss=loss,
            metrics=["accuracy"],
        )
        train_ds = make_dataset(data.train.images, train_targets, tc.batch_size, norm, augmenter(tc.augment, seed), shuffle_seed=seed)
        val_ds = make_dataset(x_val, val_targets, 64, norm)
        h = model.fit(
            train_ds, validation_data=val_ds, epochs=tc.finetune.epochs, class_weight=weights, verbose=_verbose(),
            shuffle=False,  # the dataset shuffles itself (seeded)
            callbacks=[keras.callbacks.EarlyStopping("val_accuracy", patience=tc.patience, restore_best_weights=True), _EpochTimer()],
        )
        _append(history, h.history, "finetune")
    return model, history


def _append(history: dict, new: dict, stage: str) -> None:
    n = len(new["loss"])
    history["stage"] += [stage] * n
    for key in ("accuracy", "val_accuracy", "loss", "val_loss", "epoch_seconds"):
        history[key] += [float(v) for v in new.get(key, [math.nan] * n)]
