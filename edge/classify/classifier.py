"""Garment classifier: one TFLite image classifier run on each garment crop.

The manifest (see ``edge/manifest.py`` for the lookup order) says how to feed the model::

    {"task": "classify", "labels": [...], "input_size": 224, "color_order": "RGB",
     "normalisation": "unit" | "symmetric" | "raw", "output": "probabilities" | "logits",
     "garment_map": {model label: garment label} (optional)}

Optional outfit embedding: a manifest ``"embedding": {"output": 1, "size": 1280, ...}`` (written
by ``python -m export.embedding``) names a second model output, the classifier head's input
(global average pool). ``classify`` then also returns it, dequantised and L2-normalised, from the
same interpreter run (no extra image pass). It is kept in memory only (see README, privacy).

Input quantisation always comes from the interpreter. ``output`` missing: the dequantised output
is taken as probabilities when it is non-negative and sums to ~1, otherwise softmax is applied.

Label map (``label_map`` argument, else the manifest's ``garment_map``, else none): model label
-> garment label; several model labels may map to one garment. A garment's score is the **sum of
the probabilities** of its model labels, *not* renormalised over the mapped mass: a crop that the
model thinks is not clothing at all (probability spread over unmapped labels) then gets a low
score and is ignored by the consensus' ``min_score``. Model labels not in the map are ignored.
Map keys may name a model label in full ("jersey, T-shirt, tee shirt") or by its first
comma-separated name ("jersey"); a key naming no label is an error (typos would silently never fire).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelError
from ..preprocess import NORMALISATIONS, classifier_input, lookup_pixels, pixel_lookup, to_model_input
from ..runtime import TFLiteModel
from ..manifest import load_manifest


@dataclass(frozen=True)
class Classification:
    label: str  # best garment (or model) label
    score: float  # its probability (summed over mapped model labels)
    scores: dict[str, float]  # every output label -> probability
    # L2-normalised float32 embedding when the model has one (manifest 'embedding'), else None.
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max()
    exp = np.exp(shifted)
    return exp / exp.sum()


def resolve_label_map(label_map: dict[str, str], model_labels: list[str], where: str | Path) -> dict[int, str]:
    """Model label index -> garment label, resolving full or first-name keys (see module doc)."""
    full = {label: i for i, label in enumerate(model_labels)}
    first: dict[str, list[int]] = {}
    for i, label in enumerate(model_labels):
        first.setdefault(label.split(",")[0].strip(), []).append(i)
    rows: dict[int, str] = {}
    for key, garment in label_map.items():
        if key in full:
            indices = [full[key]]
        elif len(first.get(key, [])) == 1:
            indices = first[key]
        elif key in first:
            raise ConfigError(f"{key!r} names several model labels; use the full label", path=where,
                              field=f"label_map.{key}")
        else:
            raise ConfigError("not a label of the classifier model", path=where, field=f"label_map.{key}")
        for index in indices:
            rows[index] = str(garment)
    return rows


class GarmentClassifier:
    """``classify(crop_bgr)`` -> ``Classification`` over garment labels (or model labels without a map)."""

    def __init__(
        self,
        model_path: str | Path,
        manifest_path: str | Path | None = None,
        label_map: dict[str, str] | None = None,
        threads: int = 2,
    ):
        self.model_path = Path(model_path)
        self.model = TFLiteModel(self.model_path, threads=threads)
        manifest, self.manifest_file = load_manifest(self.model_path, manifest_path)
        if manifest.get("task", "classify") != "classify":
            raise ModelError(f"manifest {self.manifest_file.name} describes a {manifest['task']!r} model, "
                             "not a classifier", path=self.model_path)
        self.model_labels: list[str] = list(manifest["labels"])
        if len(set(self.model_labels)) != len(self.model_labels):
            duplicates = sorted({x for x in self.model_labels if self.model_labels.count(x) > 1})
            raise ModelError(f"duplicate labels {duplicates}: scores are keyed by label", path=self.manifest_file,
                             field="labels")
        self.input_size = self._check_input(manifest)
        self.embedding_output = self._check_embedding(manifest.get("embedding"))
        self._check_output()
        self.normalisation = str(manifest.get("normalisation", "unit"))
        if self.normalisation not in NORMALISATIONS:
            raise ModelError(f"unknown normalisation {self.normalisation!r}; expected one of {sorted(NORMALISATIONS)}",
                             path=self.manifest_file, field="normalisation")
        self.color_order = str(manifest.get("color_order", "RGB")).upper()
        if self.color_order not in ("RGB", "BGR"):
            raise ModelError(f"color_order must be RGB or BGR, not {self.color_order!r}", path=self.manifest_file,
                             field="color_order")
        self._input_lut = pixel_lookup(self.model.input, self.normalisation)
        self.output_kind = manifest.get("output")
        if self.output_kind not in (None, "probabilities", "logits"):
            raise ModelError(f"output must be 'probabilities' or 'logits', not {self.output_kind!r}",
                             path=self.manifest_file, field="output")

        if label_map is not None:
            mapping = resolve_label_map(label_map, self.model_labels, "classifier.label_map")
        elif isinstance(manifest.get("garment_map"), dict):
            mapping = resolve_label_map(manifest["garment_map"], self.model_labels, self.manifest_file)
        else:
            mapping = None
        if mapping:
            # Garment order: first appearance in the map (stable, readable).
            self.labels = list(dict.fromkeys(mapping.values()))
            self._to_garment = np.zeros((len(self.model_labels), len(self.labels)), np.float32)
            for index, garment in mapping.items():
                self._to_garment[index, self.labels.index(garment)] = 1.0
        else:
            self.labels = list(self.model_labels)
            self._to_garment = None

    def _check_input(self, manifest: dict) -> int:
        shape = self.model.input.shape
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or shape[1] != shape[2]:
            raise ModelError(f"input shape {list(shape)} is not a square RGB image batch [1, S, S, 3]",
                             path=self.model_path)
        declared = manifest.get("input_size")
        if declared is not None and int(declared) != shape[1]:
            raise ModelError(f"manifest input_size {declared} does not match the model input {list(shape)}",
                             path=self.manifest_file, field="input_size")
        return int(shape[1])

    def _check_embedding(self, entry) -> int | None:
        """Output index of the embedding the manifest declares (checked against the model), or None."""
        if entry is None:
            return None
        outputs = self.model.outputs
        try:
            index, size = int(entry["output"]), int(entry["size"])
        except (TypeError, KeyError, ValueError):
            raise ModelError("embedding must be {output: index, size: n}", path=self.manifest_file,
                             field="embedding") from None
        if not 0 < index < len(outputs) or int(np.prod(outputs[index].shape)) != size:
            raise ModelError(f"embedding output {index} of size {size} is not in the model "
                             f"(outputs {[list(o.shape) for o in outputs]}); re-run python -m export.embedding",
                             path=self.manifest_file, field="embedding")
        return index

    @property
    def embedding_size(self) -> int | None:
        if self.embedding_output is None:
            return None
        return int(np.prod(self.model.outputs[self.embedding_output].shape))

    def _check_output(self) -> None:
        shape = self.model.outputs[0].shape if self.model.outputs else ()
        n = len(self.model_labels)
        expected = 1 if self.embedding_output is None else 2
        if len(self.model.outputs) != expected or int(np.prod(shape)) != n or shape[-1] != n:
            raise ModelError(
                f"output shape {[list(o.shape) for o in self.model.outputs]} is not a classifier output "
                f"[1, {n}] ({n} labels in {self.manifest_file.name})",
                path=self.model_path,
            )

    def input_tensor(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The exact tensor fed to the interpreter for one BGR crop."""
        image = classifier_input(crop_bgr, self.input_size)  # RGB
        if self.color_order == "BGR":
            image = image[..., ::-1]
        if self._input_lut is not None:
            return lookup_pixels(image, self._input_lut)[None]
        return to_model_input(image, self.normalisation, self.model.input.dtype, self.model.input.quant)

    def probabilities(self, crop_bgr: np.ndarray) -> np.ndarray:
        """Model-label probabilities (n_model_labels,) of one BGR crop."""
        return self._run(crop_bgr)[0]

    def embed(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The L2-normalised embedding of one BGR crop (ModelError if the model has none)."""
        if self.embedding_output is None:
            raise ModelError("the classifier has no embedding output: run python -m export.embedding on it",
                             path=self.model_path, field="embedding")
        return self._run(crop_bgr)[1]

    def _run(self, crop_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(probabilities, embedding or None) from one interpreter run."""
        tensor = self.input_tensor(crop_bgr)
        raw = self.model.run(tensor)
        embedding = None
        if self.embedding_output is not None:
            info = self.model.outputs[self.embedding_output]
            embedding = l2_normalise(info.dequantize(raw[self.embedding_output]).reshape(-1))
        return self._probabilities(raw[0]), embedding

    def _probabilities(self, raw: np.ndarray) -> np.ndarray:
        output = self.model.outputs[0].dequantize(raw).reshape(-1)
        if self.output_kind == "logits":
            return softmax(output)
        if self.output_kind is None and (output.min() < -1e-6 or abs(float(output.sum()) - 1.0) > 0.05):
            return softmax(output)
        return np.clip(output, 0.0, None)

    def classify(self, crop_bgr: np.ndarray) -> Classification:
        probs, embedding = self._run(crop_bgr)
        scores = probs @ self._to_garment if self._to_garment is not None else probs
        best = int(np.argmax(scores))
        return Classification(
            label=self.labels[best],
            score=float(scores[best]),
            scores={label: float(s) for label, s in zip(self.labels, scores)},
            embedding=embedding,
        )
