"""The int8 TFLite person-attribute model (``python -m training.attributes`` builds it).

Manifest (beside the model, ``edge/manifest.py`` lookup)::

    {"task": "person_attributes", "attributes": ["suit", ...], "input_height": 192,
     "input_width": 96, "normalisation": "unit", "color_order": "RGB", "margin": 0.05,
     "thresholds": {"suit": 0.6, ...}, "dress_or_skirt": ["dress", "skirt"]}

``dress_or_skirt`` (optional) adds a derived score, the probability that at least one of the two
is worn (``1 - (1 - p_dress)(1 - p_skirt)``), for rules that need "a dress or a skirt" as the
person-level evidence (PETA's own skirt label means that).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelError
from ..identity.calibration import IdentityCalibration, calibration_for, shipped_defaults
from ..identity.head import ReidHead
from ..manifest import load_manifest
from ..preprocess import NORMALISATIONS, lookup_pixels, person_input, pixel_lookup, to_model_input
from ..runtime import TFLiteModel
from .reader import AttributeScores

DERIVED = "dress_or_skirt"


class PersonAttributeModel:
    """``read(crop_bgr)`` -> attribute scores; implements ``PersonAttributeReader``."""

    def __init__(self, model_path: str | Path, manifest_path: str | Path | None = None, threads: int = 1,
                 thresholds: dict[str, float] | None = None, field: str = "attributes.model",
                 reid_head: str | Path | None = None):
        self.model_path = Path(model_path)
        self.model = TFLiteModel(self.model_path, threads=threads)
        manifest, self.manifest_file = load_manifest(self.model_path, manifest_path)
        if manifest.get("task") != "person_attributes":
            raise ModelError(f"manifest {self.manifest_file.name} describes a {manifest.get('task')!r} model, "
                             "not a person-attribute model", path=self.model_path, field=field)
        outputs = [str(x) for x in manifest.get("attributes") or []]
        if not outputs or len(set(outputs)) != len(outputs):
            raise ModelError("'attributes' must list distinct attribute names", path=self.manifest_file,
                             field="attributes")
        self.outputs = tuple(outputs)
        shape = self.model.input.shape
        self.input_height, self.input_width = int(manifest.get("input_height", 0)), int(manifest.get("input_width", 0))
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or (shape[1], shape[2]) != (self.input_height, self.input_width):
            raise ModelError(f"input shape {list(shape)} does not match the manifest's input_height x input_width "
                             f"({self.input_height} x {self.input_width})", path=self.model_path)
        out = self.model.outputs[0]
        if int(np.prod(out.shape)) != len(outputs):
            raise ModelError(f"output has {int(np.prod(out.shape))} values for {len(outputs)} attributes",
                             path=self.model_path)
        self.normalisation = str(manifest.get("normalisation", "unit"))
        if self.normalisation not in NORMALISATIONS:
            raise ModelError(f"unknown normalisation {self.normalisation!r}", path=self.manifest_file, field="normalisation")
        self.margin = float(manifest.get("margin", 0.05))
        pair = manifest.get("dress_or_skirt")
        self._pair = None
        if pair:
            if not all(p in outputs for p in pair) or len(pair) != 2:
                raise ModelError("'dress_or_skirt' must name two attributes of the model", path=self.manifest_file,
                                 field="dress_or_skirt")
            self._pair = (outputs.index(pair[0]), outputs.index(pair[1]))
        self.names = self.outputs + ((DERIVED,) if self._pair else ())
        base = {str(k): float(v) for k, v in (manifest.get("thresholds") or {}).items()}
        for name, value in (thresholds or {}).items():
            if name not in self.names:
                raise ConfigError(f"not an attribute of {self.model_path.name} (it has {', '.join(self.names)})",
                                  field=f"attributes.thresholds.{name}")
            base[name] = float(value)
        self.thresholds = {name: base.get(name, 0.5) for name in self.names}
        self._lut = pixel_lookup(self.model.input, self.normalisation)
        # The pooled features (the head's input) double as the customer's appearance for
        # re-identification (issue 21); optional, older models have one output.
        emb = manifest.get("embedding") or {}
        self._embedding_output = int(emb["output"]) if "output" in emb else None
        if self._embedding_output is not None and not 0 < self._embedding_output < len(self.model.outputs):
            raise ModelError(f"embedding output {self._embedding_output} does not exist", path=self.manifest_file,
                             field="embedding.output")
        self.embedding_size = (int(np.prod(self.model.outputs[self._embedding_output].shape))
                               if self._embedding_output is not None else None)
        # The identity stage's embedding: the pooled features through the re-identification head
        # (edge/identity/head.py) when there is one. Its thresholds and unit (a typical stranger's
        # distance, for combining it with colour) come with it: the head's or this model's
        # manifest (edge/identity/calibration.py).
        self.reid_head: ReidHead | None = None
        if reid_head is not None:
            if self.embedding_size is None:
                raise ModelError("a re-identification head needs a model with an embedding output", path=self.model_path,
                                 field="attributes.reid_head")
            try:  # the config field first: the file and its own field follow in the message
                self.reid_head = ReidHead.load(reid_head, model_path=self.model_path)
            except ModelError as exc:
                raise ModelError(str(exc), field="attributes.reid_head") from None
            if self.reid_head.input_size != self.embedding_size:
                raise ModelError(f"{reid_head}: the head maps {self.reid_head.input_size} features, the model gives "
                                 f"{self.embedding_size}", field="attributes.reid_head")
        self.identity_calibration: IdentityCalibration = (
            self.reid_head.calibration if self.reid_head is not None
            else calibration_for(manifest, self.manifest_file, shipped_defaults()) if self.embedding_size is not None
            else shipped_defaults())

    @property
    def embedding_scale(self) -> float:
        return self.identity_calibration.embedding_scale

    @classmethod
    def from_config(cls, attrs, threads: int | None = None) -> "PersonAttributeModel":
        """The reader of a config's ``attributes`` section (the daemon's models and the pre-flight
        build it here, so both load it the same way)."""
        return cls(attrs.model, manifest_path=attrs.manifest, threads=attrs.threads if threads is None else threads,
                   thresholds=attrs.thresholds, reid_head=attrs.reid_head)

    def _tensor(self, crop_bgr: np.ndarray) -> np.ndarray:
        rgb = person_input(crop_bgr, self.input_height, self.input_width)
        if self._lut is not None:
            return lookup_pixels(rgb, self._lut)[None]
        return to_model_input(rgb, self.normalisation, self.model.input.dtype, self.model.input.quant)

    def probabilities(self, crop_bgr: np.ndarray) -> np.ndarray:
        raw = self.model.run(self._tensor(crop_bgr))[0]
        return np.clip(self.model.outputs[0].dequantize(raw).reshape(-1), 0.0, 1.0)

    def read(self, crop_bgr: np.ndarray) -> AttributeScores:
        outputs = self.model.run(self._tensor(crop_bgr))
        p = np.clip(self.model.outputs[0].dequantize(outputs[0]).reshape(-1), 0.0, 1.0)
        embedding = None
        if self._embedding_output is not None:
            raw = self.model.outputs[self._embedding_output].dequantize(outputs[self._embedding_output]).reshape(-1)
            norm = float(np.linalg.norm(raw))
            embedding = raw / norm if norm > 0 else None
            if embedding is not None and self.reid_head is not None:
                embedding = self.reid_head.project(embedding)
        scores = {name: float(p[i]) for i, name in enumerate(self.outputs)}
        if self._pair:
            a, b = self._pair
            scores[DERIVED] = float(1.0 - (1.0 - p[a]) * (1.0 - p[b]))
        return AttributeScores(scores, embedding)
