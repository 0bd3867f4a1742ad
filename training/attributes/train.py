"""Training loop of the person-attribute model: MobileNetV2 1.0 (ImageNet weights recovered from
the quantised Coral file), global average pooling, dropout, one sigmoid per attribute.

Loss (``PartialBinaryLoss``): binary cross-entropy on the known labels only (unknown = -1 is
skipped, never guessed), rare positives up-weighted (sqrt of the negative/positive ratio, capped),
plus the *set* term for PETA's "dress or skirt": ``-log(1 - (1 - p_dress)(1 - p_skirt))``, the
probability that at least one of the two is worn.

Each epoch re-frames every base image like the daemon (person box + margin, jittered like a
tracker box) after random store-camera degradations (``training.detector_data.camera``) and a
horizontal flip, then letterboxes with ``edge.preprocess.person_input``. Validation uses the
fixed daemon framing. After every epoch ``last.keras`` (weights + optimizer) and ``state.json``
are written to the run folder and ``best.keras`` when the mean validation AUC improves:
``--resume`` continues from there.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from edge.preprocess import person_box_with_margin, person_input
from training.detector_data.camera import AugmentSettings, camera_augment

from . import labels as L
from .config import AttributeConfig
from .data import Samples
from .metrics import roc_auc

BACKBONE = "backbone"


@keras.saving.register_keras_serializable(package="fashion_edge")
class PartialBinaryLoss(keras.losses.Loss):
    def __init__(self, pos_weight=None, name: str = "partial_binary", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = [float(w) for w in (pos_weight or [1.0] * len(L.ATTRIBUTES))]

    def call(self, y_true, y_pred):
        n = len(L.ATTRIBUTES)
        labels, any_set = y_true[:, :n], y_true[:, n]
        p = keras.ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
        known = keras.ops.cast(labels >= 0, "float32")
        y = keras.ops.clip(labels, 0.0, 1.0)
        w = keras.ops.convert_to_tensor(self.pos_weight, "float32")[None, :]
        bce = -(w * y * keras.ops.log(p) + (1.0 - y) * keras.ops.log(1.0 - p))
        per_row = keras.ops.sum(known * bce, axis=-1)
        d, s = L.ATTRIBUTES.index("dress"), L.ATTRIBUTES.index("skirt")
        p_any = 1.0 - (1.0 - p[:, d]) * (1.0 - p[:, s])
        w_set = max(self.pos_weight[d], self.pos_weight[s])
        per_row = per_row + any_set * w_set * -keras.ops.log(keras.ops.clip(p_any, 1e-6, 1.0))
        return per_row

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


def positive_weights(targets: np.ndarray, cap: float) -> list[float]:
    """sqrt(negatives / positives) per attribute over the known labels (set rows count for dress/skirt)."""
    out = []
    for k, name in enumerate(L.ATTRIBUTES):
        col = targets[:, k]
        pos = float((col == 1).sum())
        if name in L.DRESS_OR_SKIRT:
            pos += 0.5 * float((targets[:, L.SET_COLUMN] == 1).sum())
        neg = float((col == 0).sum())
        out.append(float(min(cap, max(1.0, math.sqrt(neg / max(pos, 1.0))))))
    return out


def epoch_rows(targets: np.ndarray, oversample: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """One epoch's sample order: every row once, plus ``oversample[name] - 1`` extra copies of the
    rows where a rare attribute is worn (suit is 3 % of the crops: without this the network learns
    its prior before it learns the jacket), shuffled."""
    repeat = np.ones(len(targets), np.int64)
    for name, times in oversample.items():
        if name == "dress_or_skirt":
            worn = targets[:, L.SET_COLUMN] == 1
        else:
            worn = targets[:, L.ATTRIBUTES.index(name)] == 1
        repeat = np.where(worn, np.maximum(repeat, int(times)), repeat)
    return rng.permutation(np.repeat(np.arange(len(targets)), repeat))


def fit_head(model: keras.Model, train_set: Samples, targets: np.ndarray, config: AttributeConfig,
             pos_weight: list[float], log=print) -> None:
    """Stage 1: the head alone on the frozen ImageNet features of the daemon-framed crops (and their
    mirror images). A random head fine-tuned together with the backbone from the first step pulls
    the features towards the common attributes and the rare ones (suit) stay at their prior; a
    trained head first is the classifier's recipe too (training/classifier/train.py)."""
    tc = config.train
    features = keras.Model(model.input, model.get_layer("dropout").input)
    images = framed_set(train_set, config)
    feats = []
    for flip in (False, True):
        batch = images[:, :, ::-1] if flip else images
        feats.append(np.concatenate([features.predict_on_batch(batch[i:i + 128].astype(np.float32) / 255.0)
                                     for i in tqdm(range(0, len(batch), 128), desc="head features", unit="batch", mininterval=5)]))
    x = np.concatenate(feats)
    y = np.concatenate([targets, targets])
    rows = epoch_rows(y, tc.oversample, np.random.default_rng(config.seed))
    inputs = keras.Input(x.shape[1:])
    head = keras.Model(inputs, model.get_layer("attributes")(model.get_layer("dropout")(inputs)))
    head.compile(keras.optimizers.Adam(1e-3), loss=PartialBinaryLoss(pos_weight))
    head.fit(x[rows], y[rows], epochs=tc.head_epochs, batch_size=128, verbose=0, shuffle=True)
    log(f"head trained on frozen features ({tc.head_epochs} epochs, {len(rows)} rows a pass)")


def build_model(config: AttributeConfig) -> keras.Model:
    m = config.model
    keras.utils.set_random_seed(config.seed)
    inputs = keras.Input((m.input_height, m.input_width, 3), name="image")
    backbone = keras.applications.MobileNetV2(input_shape=(m.input_height, m.input_width, 3), alpha=1.0,
                                              include_top=False, weights=None, pooling="avg")
    backbone.name = BACKBONE
    if m.weights is not None:
        from training.recover_imagenet import load_into

        load_into(backbone, Path(m.weights))
    # the int8 input takes raw pixels ('unit' normalisation, x/255); MobileNet wants [-1, 1]
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_symmetric")(inputs)
    x = backbone(x, training=False)  # BN statistics stay ImageNet's: a few thousand images
    x = keras.layers.Dropout(m.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(len(L.ATTRIBUTES), activation="sigmoid", name="attributes")(x)
    return keras.Model(inputs, outputs, name="person_attributes")


def freeze_below(model: keras.Model, first_layer: str | None) -> int:
    backbone = model.get_layer(BACKBONE)
    names = [layer.name for layer in backbone.layers]
    start = 0 if first_layer is None else names.index(first_layer)
    for i, layer in enumerate(backbone.layers):
        layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
    return sum(1 for layer in backbone.layers if layer.trainable and layer.weights)


def frame(image: np.ndarray, box, config: AttributeConfig) -> np.ndarray:
    """The daemon's framing of one base image: person box + margin, letterboxed, RGB uint8."""
    m = config.model
    x1, y1, x2, y2 = person_box_with_margin(box, m.margin, image.shape)
    return person_input(image[y1:y2, x1:x2], m.input_height, m.input_width)


def augmented(image: np.ndarray, box, config: AttributeConfig, rng: np.random.Generator) -> np.ndarray:
    a = config.train.augment
    if rng.random() < a.p_camera:
        settings = AugmentSettings(person_h=tuple(a.person_h), p_crop=0.0, p_letterbox=0.0)
        image, boxes, _, _ = camera_augment(image, np.asarray(box, np.float32)[None], np.zeros(1, np.int64), rng, settings)
        if len(boxes):
            box = boxes[0]
    # a tracker box is never exact: each side moves by -4 % .. +8 % of the box size
    bw, bh = box[2] - box[0], box[3] - box[1]
    j = rng.uniform(-0.04, 0.08, size=4)
    box = [box[0] - j[0] * bw, box[1] - j[1] * bh, box[2] + j[2] * bw, box[3] + j[3] * bh]
    out = frame(image, box, config)
    if a.flip and rng.random() < 0.5:
        out = out[:, ::-1]
    return out


def framed_set(samples: Samples, config: AttributeConfig) -> np.ndarray:
    m = config.model
    out = np.zeros((len(samples), m.input_height, m.input_width, 3), np.uint8)
    for i in range(len(samples)):
        out[i] = frame(samples.images[i], samples.boxes[i], config)
    return out


def predict(model, images_rgb: np.ndarray, batch_size: int = 128) -> np.ndarray:
    outs = []
    for i in range(0, len(images_rgb), batch_size):
        outs.append(model.predict_on_batch(images_rgb[i:i + batch_size].astype(np.float32) / 255.0))
    return np.concatenate(outs) if outs else np.zeros((0, len(L.ATTRIBUTES)), np.float32)


def validation_aucs(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    full = L.with_derived(scores)
    out = {name: roc_auc(full[:, k], targets[:, k]) for k, name in enumerate(L.ATTRIBUTES)}
    out["dress_or_skirt"] = roc_auc(full[:, -1], L.any_dress_or_skirt_truth(targets))
    return out


def train(config: AttributeConfig, train_set: Samples, val_set: Samples, resume: bool = False, log=print):
    tc = config.train
    tf.config.threading.set_intra_op_parallelism_threads(tc.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    run_dir = Path(config.output.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state_file = run_dir / "state.json"
    targets = train_set.target_matrix()
    val_targets = val_set.target_matrix()
    val_images = framed_set(val_set, config)
    steps = math.ceil(len(epoch_rows(targets, tc.oversample, np.random.default_rng(0))) / tc.batch_size)
    state = {"epochs_done": 0, "history": [], "best_mean_auc": -1.0, "best_epoch": 0}
    if resume and state_file.is_file() and (run_dir / "last.keras").is_file():
        state = json.loads(state_file.read_text())
        model = keras.models.load_model(run_dir / "last.keras")
        log(f"resuming after epoch {state['epochs_done']} (best mean val AUC {state['best_mean_auc']:.4f} at epoch {state['best_epoch']})")
    else:
        model = build_model(config)
        pos_weight = positive_weights(targets[epoch_rows(targets, tc.oversample, np.random.default_rng(0))], tc.max_pos_weight)
        if tc.head_epochs:
            fit_head(model, train_set, targets, config, pos_weight, log)
        n = freeze_below(model, tc.unfreeze_from)
        log(f"{n} backbone layers train; positive weights {dict(zip(L.ATTRIBUTES, np.round(pos_weight, 2)))}")
        schedule = keras.optimizers.schedules.CosineDecay(tc.learning_rate, decay_steps=steps * tc.epochs, alpha=0.05,
                                                          warmup_target=None)
        model.compile(keras.optimizers.AdamW(schedule, weight_decay=tc.weight_decay), loss=PartialBinaryLoss(pos_weight))
    for epoch in range(state["epochs_done"], tc.epochs):
        rng = np.random.default_rng(config.seed * 1000 + epoch)  # a resumed epoch sees the same samples
        order = epoch_rows(targets, tc.oversample, rng)
        steps = math.ceil(len(order) / tc.batch_size)
        t0, losses = time.monotonic(), []
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{tc.epochs}", unit="batch", mininterval=5)
        for b in bar:
            idx = order[b * tc.batch_size:(b + 1) * tc.batch_size]
            x = np.stack([augmented(train_set.images[i], train_set.boxes[i], config, rng) for i in idx]).astype(np.float32) / 255.0
            losses.append(float(model.train_on_batch(x, targets[idx])))
            if b % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        scores = predict(model, val_images)
        aucs = validation_aucs(scores, val_targets)
        mean_auc = float(np.nanmean([aucs[k] for k in L.ATTRIBUTES]))
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_auc": aucs, "mean_auc": mean_auc,
                  "seconds": time.monotonic() - t0}
        state["history"].append(record)
        state["epochs_done"] = epoch + 1
        log(f"epoch {epoch + 1}: loss {record['loss']:.4f}, val AUC " + ", ".join(f"{k} {v:.3f}" for k, v in aucs.items())
            + f" (mean {mean_auc:.4f}), {record['seconds']:.0f} s")
        model.save(run_dir / "last.tmp.keras")
        (run_dir / "last.tmp.keras").replace(run_dir / "last.keras")
        if mean_auc > state["best_mean_auc"]:
            state["best_mean_auc"], state["best_epoch"] = mean_auc, epoch + 1
            model.save(run_dir / "best.tmp.keras")
            (run_dir / "best.tmp.keras").replace(run_dir / "best.keras")
        state_file.write_text(json.dumps(state, indent=1) + "\n")
    best = keras.models.load_model(run_dir / "best.keras") if (run_dir / "best.keras").is_file() else model
    return best, state
