"""The re-identification head: a linear map of the person-attribute model's pooled features into a
space where the same person seen from another side stays close (issue 21).

The attribute model's features were trained to tell clothing attributes apart, not people: two
people in dark trousers and a grey top are close, and one person's back is far from their front.
The head is fitted by ``python -m training.reid`` (Fisher discriminant on PETA *training*
identities seen from several sides and degraded like a store camera): it keeps the directions
along which people differ and drops those along which one person's views differ. Measured on
validation identities in docs/reid.md.

Files: ``models/person-reid.npz`` (``mean`` (d_in,), ``projection`` (d_in, d_out) float32) and its
manifest beside it, ``models/person-reid.json`` (what it was fitted on, the attribute model's
sha256, ``distance_scale``: the median cosine distance between two different people in the
head's space, the unit in which the identity stage combines it with colour). Cost: one
(1280 x 128) matrix product per attribute reading, ~0.02 ms.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..runtime import sha256_file
from .calibration import SHIPPED_RAW_SCALE, IdentityCalibration, calibration_for, shipped_defaults

# The median cosine distance between two different people's raw pooled features (no head) of the
# shipped attribute model, on PETA val multi-view identities (docs/reid.md): that embedding's unit.
# A model's own is in its manifest's identity_calibration (edge/identity/calibration.py).
RAW_EMBEDDING_SCALE = SHIPPED_RAW_SCALE


class ReidHead:
    def __init__(self, mean: np.ndarray, projection: np.ndarray, distance_scale: float, fitted_on: str,
                 path: Path | None = None, calibration: IdentityCalibration | None = None):
        self.mean = np.asarray(mean, np.float32)
        self.projection = np.asarray(projection, np.float32)
        self.distance_scale = float(distance_scale)
        self.fitted_on = fitted_on
        self.path = path
        # the identity thresholds measured through this head (its manifest), else the PETA head's
        self.calibration = calibration or shipped_defaults(self.distance_scale)

    @property
    def input_size(self) -> int:
        return int(self.projection.shape[0])

    @property
    def output_size(self) -> int:
        return int(self.projection.shape[1])

    def project(self, features: np.ndarray) -> np.ndarray | None:
        """The L2-normalised re-identification embedding of one feature vector (None if it is all zero)."""
        x = np.asarray(features, np.float32).reshape(-1)
        out = (x - self.mean) @ self.projection
        norm = float(np.linalg.norm(out))
        return out / norm if norm > 0 else None

    @classmethod
    def load(cls, path: str | Path, model_path: str | Path | None = None) -> "ReidHead":
        """Read a head and its manifest; refuse it (one-line ModelError naming the file and field)
        unless it was fitted on the attribute model at ``model_path``."""
        path = Path(path)
        manifest_path = path.with_suffix(".json")
        try:
            manifest = json.loads(manifest_path.read_text())
            fitted_on = str(manifest["attribute_model_sha256"])
            scale = float(manifest["distance_scale"])
        except FileNotFoundError:
            raise ModelError("re-identification head manifest not found "
                             "(python -m training.reid --config configs/reid.yaml)", path=manifest_path) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"not a re-identification head manifest ({type(exc).__name__}: {exc})",
                             path=manifest_path) from None
        try:
            with np.load(path) as arrays:
                mean, projection = arrays["mean"], arrays["projection"]
        except FileNotFoundError:
            raise ModelError("re-identification head not found (python -m training.reid --config configs/reid.yaml)",
                             path=path) from None
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"not a re-identification head ({type(exc).__name__}: {exc})", path=path) from None
        if projection.ndim != 2 or mean.shape != (projection.shape[0],):
            raise ModelError(f"mean of shape {list(mean.shape)} for a projection of shape {list(projection.shape)}",
                             path=path, field="projection")
        if not 0 < scale <= 2:
            raise ModelError(f"distance_scale {scale} is not a cosine distance in (0, 2]", path=manifest_path,
                             field="distance_scale")
        if model_path is not None:
            digest = sha256_file(model_path)
            if digest != fitted_on:
                raise ModelError(f"fitted on another attribute model (sha256 {fitted_on[:12]}..., this model "
                                 f"{digest[:12]}...): re-run python -m training.reid", path=manifest_path,
                                 field="attribute_model_sha256")
        calibration = calibration_for(manifest, manifest_path, shipped_defaults(scale))
        return cls(mean, projection, scale, fitted_on, path, calibration)
