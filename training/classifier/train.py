"""Two-stage transfer learning on in-memory uint8 images.

Stage 1 (head): the backbone is frozen, so its pooled features are computed once (original and
mirrored image) and only dropout + softmax are trained on them - seconds instead of minutes on a
2-core CPU. Stage 2 (fine-tune): the top of the backbone is unfrozen and the whole network
trains on augmented images at a lower, cosine-decayed learning rate. Both stages stop early on
validation accuracy and keep the best weights. The small CNN has no backbone and trains in one
stage with the fine-tune settings.

With a run folder (``output.run_dir``, e.g. ``runs/classifier/<name>/``, ignored by git) a run
survives the end of a session: the frozen backbone's stage-1 features are cached there
(``features-<hash>.npz``, keyed by backbone, weights, size and the exact image list), stage 1's
model is saved (``stage1.keras``), and stage 2 saves ``last.keras`` (weights + optimizer state)
and ``best.keras`` after every epoch with ``state.json`` (epochs done, history, best epoch,
early-stopping counter). ``resume=True`` (``--resume``) continues from there.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

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


@keras.saving.register_keras_serializable(package="fashion_edge")
class SetCrossEntropy(keras.losses.Loss):
    """Cross-entropy that also takes *partial* labels.

    A target row that sums to 1 (one-hot or soft) gets the usual label-smoothed cross-entropy.
    A row with several 1s (a set of labels the image may be, e.g. a worn "jacket": blazer or
    outwear) gets ``-log(sum of the probabilities over the set)``: the network may put the mass on
    whichever member fits, it is only punished for answers outside the set. Label smoothing
    adds ``eps * mean(-log p)`` to both, as Keras' ``label_smoothing`` does for one-hot rows.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "set_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        eps = self.label_smoothing
        p = keras.ops.clip(y_pred, 1e-7, 1.0)
        log_p = keras.ops.log(p)
        mass = keras.ops.sum(y_true, axis=-1)
        cross = -keras.ops.sum(y_true * log_p, axis=-1) / keras.ops.maximum(mass, 1e-7)
        set_loss = -keras.ops.log(keras.ops.clip(keras.ops.sum(y_true * p, axis=-1), 1e-7, 1.0))
        main = keras.ops.where(mass > 1.5, set_loss, cross)
        return (1 - eps) * main + eps * -keras.ops.mean(log_p, axis=-1)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


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


def make_dataset(images, targets, batch_size, normalisation, augment=None, shuffle_seed=None, sample_weights=None):
    """Batches of (normalised, optionally augmented image, target probability vector[, weight])."""
    tensors = (images, targets.astype(np.float32))
    if sample_weights is not None:
        tensors += (sample_weights.astype(np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(targets), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def prepare(x, y, *w):
        x = tf.cast(x, tf.float32)
        if augment is not None:
            x = tf.clip_by_value(augment(x, training=True), 0.0, 255.0)
        offset, divisor = NORMALISATIONS[normalisation]
        return ((x - offset) / divisor, y, *w)

    return ds.map(prepare, num_parallel_calls=1).prefetch(2)


def _verbose() -> int:
    return 1 if sys.stdout.isatty() else 2  # progress bar on a terminal, one line per epoch in logs


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.monotonic() - self._t


def predict(model: keras.Model, images: np.ndarray, normalisation: str, batch_size: int = 64,
            progress: str | None = None) -> np.ndarray:
    ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(lambda x: normalise_tf(x, normalisation))
    if progress is None:
        return model.predict(ds, verbose=0)
    from tqdm import tqdm

    out = [model.predict_on_batch(x) for x in tqdm(ds, desc=progress, unit="batch", total=math.ceil(len(images) / batch_size))]
    return np.concatenate(out) if out else np.zeros((0,) + tuple(model.output_shape[1:]), np.float32)


def _file_token(path) -> str:
    if path is None:
        return "none"
    p = Path(path)
    return f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" if p.is_file() else str(p)


def features_key(config: ClassifierConfig, train_keys: list[str], data, mirror: bool) -> str:
    """Hash of what the frozen-backbone features depend on (never reuse stale features)."""
    m = config.model
    digest = hashlib.sha1(f"{m.backbone}|{m.alpha}|{_file_token(m.weights)}|{m.image_size}|{m.normalisation}|{mirror}".encode())
    for key in list(train_keys) + ["|val|"] + list(data.validation.keys):
        digest.update(key.encode())
        digest.update(b"\n")
    digest.update(f"{len(train_keys)}|{len(data.validation.labels)}".encode())
    return digest.hexdigest()[:16]


def stage1_features(features_model, config: ClassifierConfig, train_images, train_keys, data, run_dir: Path | None, log=print):
    """(train features, validation features) of the frozen backbone, cached in ``run_dir``."""
    tc, norm = config.train, config.model.normalisation
    path = None
    if run_dir is not None and train_keys and data.validation.keys:
        path = Path(run_dir) / f"features-{features_key(config, train_keys, data, tc.head_mirror)}.npz"
        if path.is_file():
            cached = np.load(path)
            log(f"  features read from {path}")
            return cached["train"], cached["validation"]
    f_train = predict(features_model, train_images, norm, progress="features train")
    if tc.head_mirror:
        f_flip = predict(features_model, train_images[:, :, ::-1, :], norm, progress="features mirrored")
        f_train = np.concatenate([f_train, f_flip])
    f_val = predict(features_model, data.validation.images, norm, progress="features validation")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, train=f_train, validation=f_val)
        tmp.replace(path)
    return f_train, f_val


class _Checkpoints(keras.callbacks.Callback):
    """After every epoch: ``last.keras`` (+ optimizer), ``best.keras`` when val accuracy improves,
    ``state.json``; stops after ``patience`` epochs without improvement (resumable early stop)."""

    def __init__(self, run_dir: Path | None, patience: int, state: dict):
        super().__init__()
        self.run_dir, self.patience, self.state = run_dir, patience, state
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        st = self.state
        st["epochs_done"] = epoch + 1
        for key in ("accuracy", "val_accuracy", "loss", "val_loss", "epoch_seconds"):
            st["history"].setdefault(key, []).append(float(logs.get(key, math.nan)))
        acc = float(logs.get("val_accuracy", -1.0))
        improved = acc > st["best_val_accuracy"]
        if improved:
            st["best_val_accuracy"], st["best_epoch"], st["wait"] = acc, epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            st["wait"] += 1
        if self.run_dir is not None:
            self.model.save(self.run_dir / "last.tmp.keras")
            (self.run_dir / "last.tmp.keras").replace(self.run_dir / "last.keras")
            if improved:
                self.model.save(self.run_dir / "best.tmp.keras")
                (self.run_dir / "best.tmp.keras").replace(self.run_dir / "best.keras")
            (self.run_dir / "state.json").write_text(json.dumps(st) + "\n")
        if st["wait"] >= self.patience:
            self.model.stop_training = True


def train_classifier(config: ClassifierConfig, data, n_classes: int, log=print, soft_targets=None,
                     run_dir: Path | None = None, resume: bool = False) -> tuple[keras.Model, dict]:
    """Train on ``data.train``, early-stop on ``data.validation``; returns the model and its history.

    ``soft_targets`` (N, n_classes), aligned with ``data.train``, replaces the one-hot targets
    (distillation); validation always scores the true labels. ``run_dir``: feature cache and
    per-epoch checkpoints; ``resume``: continue the run saved there (stage 1 is not repeated).
    """
    configure_threads(config.train.threads)
    tc = config.train
    norm = config.model.normalisation
    seed = config.seed
    keras.utils.set_random_seed(seed)
    model = build_model(config.model, n_classes, seed)
    weights = class_weights(data.train.labels, n_classes) if tc.class_weights else None
    history: dict[str, list] = {"stage": [], "accuracy": [], "val_accuracy": [], "loss": [], "val_loss": [], "epoch_seconds": []}
    x_val, y_val = data.validation.images, data.validation.labels
    train_targets = keras.utils.to_categorical(data.train.labels, n_classes) if soft_targets is None else soft_targets
    val_targets = keras.utils.to_categorical(y_val, n_classes)
    train_images, train_keys, sample_weights = data.train.images, list(data.train.keys), None
    partial = getattr(data, "partial", None)
    if partial is not None and len(partial.labels):
        # partial-label images join the training side with their label sets; class weights become
        # per-sample weights (1 for the partial rows), since Keras' class_weight reads argmax(target)
        log(f"  + {len(partial.labels)} partial-label images (set loss)")
        loss = SetCrossEntropy(tc.label_smoothing)
        per_class = np.array([weights[i] for i in range(n_classes)]) if weights else np.ones(n_classes)
        sample_weights = np.concatenate([per_class[data.train.labels], np.ones(len(partial.labels))]).astype(np.float32)
        train_images = np.concatenate([data.train.images, partial.images])
        train_targets = np.concatenate([train_targets, data.partial_targets]).astype(np.float32)
        train_keys += [f"partial|{k}" for k in partial.keys]
        weights = None
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=tc.label_smoothing)
    backbone = backbone_of(model)
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    state_file = run_dir / "state.json" if run_dir is not None else None
    saved = json.loads(state_file.read_text()) if resume and state_file is not None and state_file.is_file() else None
    if resume and saved is None:
        log(f"--resume: no saved run in {run_dir}, starting from the beginning")
    if saved is not None and saved.get("stage1_history") is not None:
        _append(history, saved["stage1_history"], "head")

    if saved is not None and (run_dir / "stage1.keras").is_file() and saved.get("stage1_done"):
        log(f"stage 1: done in the saved run ({run_dir / 'stage1.keras'})")
        model = keras.models.load_model(run_dir / "stage1.keras")
        backbone = backbone_of(model)
    elif backbone is not None and tc.head.epochs > 0:
        log(f"stage 1: head on frozen {model.name} features ({len(data.train.labels)} images{' + mirrors' if tc.head_mirror else ''})")
        backbone.trainable = False
        t0 = time.monotonic()
        features_model = keras.Model(model.input, model.get_layer("dropout").input)
        f_train, f_val = stage1_features(features_model, config, train_images, train_keys, data, run_dir, log)
        t_train = np.concatenate([train_targets, train_targets]) if tc.head_mirror else train_targets
        w_train = None if sample_weights is None else (
            np.concatenate([sample_weights, sample_weights]) if tc.head_mirror else sample_weights)
        log(f"  features in {time.monotonic() - t0:.0f}s")
        feat_in = keras.Input(f_train.shape[1:])
        head = keras.Model(feat_in, model.get_layer("probabilities")(model.get_layer("dropout")(feat_in)))
        head.compile(keras.optimizers.Adam(tc.head.learning_rate), loss=loss, metrics=["accuracy"])
        h = head.fit(
            f_train, t_train, validation_data=(f_val, val_targets),
            epochs=tc.head.epochs, batch_size=64, class_weight=weights, sample_weight=w_train, verbose=0,
            callbacks=[keras.callbacks.EarlyStopping("val_accuracy", patience=max(tc.patience, 5), restore_best_weights=True), _EpochTimer()],
        )
        _append(history, h.history, "head")
        log(f"  head: best val accuracy {max(h.history['val_accuracy']):.4f} after {len(h.history['loss'])} epochs")
        if run_dir is not None:
            model.save(run_dir / "stage1.keras")
            stage1_history = {k: [float(v) for v in vals] for k, vals in h.history.items()}
            state_file.write_text(json.dumps({"stage1_done": True, "stage1_history": stage1_history}) + "\n")

    if tc.finetune.epochs > 0:
        state = {"stage1_done": True, "stage1_history": None, "epochs_done": 0, "history": {},
                 "best_val_accuracy": -1.0, "best_epoch": 0, "wait": 0}
        if state_file is not None and state_file.is_file():
            state.update({k: v for k, v in json.loads(state_file.read_text()).items() if k in ("stage1_done", "stage1_history")})
        last = run_dir / "last.keras" if run_dir is not None else None
        resumed = saved is not None and saved.get("epochs_done", 0) > 0 and last.is_file()
        if resumed:
            state.update({k: saved[k] for k in ("epochs_done", "history", "best_val_accuracy", "best_epoch", "wait")})
            log(f"stage 2: resuming after epoch {state['epochs_done']} (best val accuracy "
                f"{state['best_val_accuracy']:.4f} at epoch {state['best_epoch']})")
            model = keras.models.load_model(last)  # weights, trainable flags, optimizer state and step
        else:
            if backbone is not None:
                n = set_trainable_from(backbone, tc.unfreeze_from, config.model.bn_trainable)
                log(f"stage 2: fine-tune from {tc.unfreeze_from or 'the first layer'} ({n} weighted layers trainable)")
            else:
                log(f"training {model.name} from scratch")
            steps = math.ceil(len(train_targets) / tc.batch_size)
            schedule = keras.optimizers.schedules.CosineDecay(tc.finetune.learning_rate, decay_steps=max(1, steps * tc.finetune.epochs), alpha=0.05)
            model.compile(
                keras.optimizers.AdamW(schedule, weight_decay=tc.weight_decay),
                loss=loss,
                metrics=["accuracy"],
            )
        train_ds = make_dataset(train_images, train_targets, tc.batch_size, norm, augmenter(tc.augment, seed),
                                shuffle_seed=seed, sample_weights=sample_weights)
        val_ds = make_dataset(x_val, val_targets, 64, norm)
        checkpoints = _Checkpoints(run_dir, tc.patience, state)
        if state["epochs_done"] < tc.finetune.epochs and state["wait"] < tc.patience:
            model.fit(
                train_ds, validation_data=val_ds, epochs=tc.finetune.epochs, initial_epoch=state["epochs_done"],
                class_weight=weights, verbose=_verbose(),
                shuffle=False,  # the dataset shuffles itself (seeded)
                callbacks=[_EpochTimer(), checkpoints],
            )
        # keep the best epoch (early stopping's restore_best_weights, across resumes too)
        if checkpoints.best_weights is not None:
            model.set_weights(checkpoints.best_weights)
        elif run_dir is not None and (run_dir / "best.keras").is_file():
            model.set_weights(keras.models.load_model(run_dir / "best.keras").get_weights())
        if state["history"].get("loss"):
            _append(history, state["history"], "finetune")
        history["best_finetune_epoch"] = state["best_epoch"]
    return model, history


def _append(history: dict, new: dict, stage: str) -> None:
    n = len(new["loss"])
    history["stage"] += [stage] * n
    for key in ("accuracy", "val_accuracy", "loss", "val_loss", "epoch_seconds"):
        history[key] += [float(v) for v in new.get(key, [math.nan] * n)]
