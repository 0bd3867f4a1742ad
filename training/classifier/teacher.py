"""A stronger, slower teacher for distillation: the ImageNet MobileNet v1 1.0 int8 embedding
extractor (../shared/models/imagenet, frozen) plus a softmax head fitted on our training split.

The shipped student (MobileNet v1 0.25) trains on soft targets
``(1 - w) * one_hot + w * teacher_probabilities`` - the teacher's view of which garments look
alike - instead of plain label smoothing. Teacher features are computed once per image set and
cached under ``.cache/`` (the extractor is ~15x slower than the student on this CPU).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge.preprocess import to_model_input
from edge.runtime import TFLiteModel, sha256_file

from ..labels import LabelMap
from .config import ClassifierConfig
from .data import build_training_data


@dataclass
class TeacherResult:
    train_probabilities: np.ndarray  # aligned with the student's data.train order
    validation_probabilities: np.ndarray
    train_keys: list[str]
    ms_per_image: float
    extractor: Path


def _features(model: TFLiteModel, images: np.ndarray, desc: str) -> tuple[np.ndarray, float]:
    output = model.outputs[0]
    features = np.empty((len(images), int(np.prod(output.shape[1:]))), np.float32)
    started = time.perf_counter()
    for i, image in enumerate(tqdm(images, desc=desc, unit="img")):
        tensor = to_model_input(image, "symmetric", model.input.dtype, model.input.quant)
        features[i] = output.dequantize(model.run(tensor)[0]).reshape(-1)
    return features, (time.perf_counter() - started) * 1000 / max(1, len(images))


def _cached_features(model: TFLiteModel, images: np.ndarray, keys: list[str], cache_dir: Path | None, name: str):
    path = None
    if cache_dir is not None:
        digest = hashlib.sha1((sha256_file(model.path)[:16] + "|" + "\n".join(keys)).encode()).hexdigest()[:12]
        path = Path(cache_dir) / f"teacher-{name}-{len(keys)}-{digest}.npy"
        if path.is_file():
            return np.load(path), float("nan")
    features, ms = _features(model, images, f"teacher features {name}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, features)
    return features, ms


def fit_teacher(config: ClassifierConfig, label_map: LabelMap, extractor: Path, epochs: int = 80, log=print):
    """Fit the teacher's head; returns (TeacherResult, the teacher's TrainingData at its input size)."""
    import keras

    from .train import class_weights

    model = TFLiteModel(extractor, threads=config.train.threads)
    teacher_config = config.model_copy(deep=True)
    teacher_config.model.image_size = int(model.input.shape[1])
    data = build_training_data(teacher_config, label_map)
    f_train, ms = _cached_features(model, data.train.images, data.train.keys, config.cache_dir, "train")
    f_val, ms_val = _cached_features(model, data.validation.images, data.validation.keys, config.cache_dir, "validation")
    n = len(label_map.labels)
    keras.utils.set_random_seed(config.seed)
    head = keras.Sequential([keras.Input((f_train.shape[1],)), keras.layers.Dropout(0.2), keras.layers.Dense(n, activation="softmax")])
    head.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    head.fit(
        f_train, keras.utils.to_categorical(data.train.labels, n), epochs=epochs, batch_size=64,
        validation_data=(f_val, keras.utils.to_categorical(data.validation.labels, n)),
        class_weight=class_weights(data.train.labels, n), verbose=0,
        callbacks=[keras.callbacks.EarlyStopping("val_accuracy", patience=10, restore_best_weights=True)],
    )
    result = TeacherResult(
        head.predict(f_train, verbose=0), head.predict(f_val, verbose=0), data.train.keys,
        ms_val if not np.isnan(ms_val) else ms, Path(extractor),
    )
    log(f"teacher: validation top-1 {(result.validation_probabilities.argmax(1) == data.validation.labels).mean():.4f}")
    return result, data
