"""Style map: k-means centroids of outfit embeddings, and the nearest style of a customer.

``models/styles.json`` (written by ``python -m training.styles``)::

    {"model_sha256": "<sha256 of the classifier .tflite whose embedding was clustered>",
     "embedding_size": 1280, "k": 8, "silhouette": 0.12,
     "styles": [{"id": 0, "name": "dark pants + t-shirt", "count": 512}, ...],
     "centroids": [[...1280 floats...], ...]}

Embeddings are L2-normalised; ``centre`` (optional) is the mean embedding of the worn photos the
map was fitted on: a customer's embedding minus it, renormalised, is what the centroids cluster
(worn and product photos are centred on their own means, see training/styles). The nearest
centroid by cosine is then the k-means assignment.
A map fitted on another model's embeddings is meaningless: ``StyleMap.load`` refuses it with one
line when the classifier's sha256 differs. k-means++ and the silhouette live here (numpy only) so
training and tests use the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError
from .runtime import sha256_file


# -- clustering (training/styles uses these; small enough to test on tiny data) ------------------
def kmeans_pp_init(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn with probability ~ squared distance to the nearest."""
    centres = [x[rng.integers(len(x))]]
    nearest = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = nearest.sum()
        index = rng.integers(len(x)) if total <= 0 else rng.choice(len(x), p=nearest / total)
        centres.append(x[index])
        nearest = np.minimum(nearest, ((x - x[index]) ** 2).sum(1))
    return np.stack(centres).astype(np.float64)


def _sq_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.maximum((x ** 2).sum(1)[:, None] - 2 * x @ centres.T + (centres ** 2).sum(1)[None], 0.0)


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 4, max_iter: int = 100,
           tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding, best of ``n_init``: (centres, labels, inertia)."""
    x = np.asarray(x, np.float64)
    if not 1 <= k <= len(x):
        raise ValueError(f"k={k} needs 1..{len(x)} points")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(n_init):
        centres = kmeans_pp_init(x, k, rng)
        for _ in range(max_iter):
            labels = _sq_distances(x, centres).argmin(1)
            moved = centres.copy()
            for j in range(k):
                members = x[labels == j]
                # An empty cluster takes the point farthest from its centre (keeps k clusters).
                moved[j] = members.mean(0) if len(members) else x[_sq_distances(x, centres).min(1).argmax()]
            shift = float(((moved - centres) ** 2).sum())
            centres = moved
            if shift <= tol:
                break
        distances = _sq_distances(x, centres)
        labels = distances.argmin(1)
        inertia = float(distances[np.arange(len(x)), labels].sum())
        if best is None or inertia < best[2]:
            best = (centres, labels, inertia)
    return best


def silhouette(x: np.ndarray, labels: np.ndarray, sample: int | None = 2000, seed: int = 0) -> float:
    """Mean silhouette (Euclidean) over a seeded sample of points; 0 for a single cluster."""
    x = np.asarray(x, np.float64)
    labels = np.asarray(labels)
    if len(set(labels.tolist())) < 2:
        return 0.0
    rows = np.arange(len(x))
    if sample is not None and len(x) > sample:
        rows = np.random.default_rng(seed).choice(len(x), sample, replace=False)
    distances = np.sqrt(_sq_distances(x[rows], x))
    clusters = sorted(set(labels.tolist()))
    scores = []
    for i, row in enumerate(rows):
        own = labels[row]
        same = labels == own
        if same.sum() <= 1:
            scores.append(0.0)
            continue
        a = distances[i, same].sum() / (same.sum() - 1)  # the point itself adds 0
        b = min(distances[i, labels == c].mean() for c in clusters if c != own)
        scores.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(scores))


# -- the map the daemon uses ---------------------------------------------------------------------
@dataclass(frozen=True)
class Style:
    id: int
    name: str


class StyleMap:
    def __init__(self, centroids: np.ndarray, names: list[str], model_sha256: str, path: Path | None = None,
                 centre: np.ndarray | None = None):
        self.centre = None if centre is None else np.asarray(centre, np.float32)
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        self.centroids = (centroids / np.maximum(norms, 1e-12)).astype(np.float32)
        self.names = list(names)
        self.model_sha256 = model_sha256
        self.path = path

    @classmethod
    def load(cls, path: str | Path, model_path: str | Path | None = None, model_sha256: str | None = None) -> "StyleMap":
        """Read a style map; refuse it (one-line ModelError) unless it was fitted on this model."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            centroids = np.asarray(data["centroids"], np.float32)
            names = [str(s["name"]) for s in data["styles"]]
            fitted_on = str(data["model_sha256"])
            centre = np.asarray(data["centre"], np.float32) if data.get("centre") is not None else None
        except FileNotFoundError:
            raise ModelError("style map not found (python -m training.styles --config configs/styles.yaml)",
                             path=path) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"not a style map ({type(exc).__name__}: {exc})", path=path) from None
        if centroids.ndim != 2 or len(names) != len(centroids):
            raise ModelError(f"{len(names)} names for centroids of shape {list(centroids.shape)}", path=path,
                             field="centroids")
        if centre is not None and centre.shape != (centroids.shape[1],):
            raise ModelError(f"centre of shape {list(centre.shape)} for {centroids.shape[1]}-d centroids", path=path,
                             field="centre")
        if model_path is not None:
            model_sha256 = sha256_file(model_path)
        if model_sha256 is not None and model_sha256 != fitted_on:
            raise ModelError(f"fitted on another classifier (sha256 {fitted_on[:12]}..., this model "
                             f"{model_sha256[:12]}...): re-run python -m training.styles", path=path,
                             field="model_sha256")
        return cls(centroids, names, fitted_on, path, centre)

    @property
    def embedding_size(self) -> int:
        return int(self.centroids.shape[1])

    def _centred(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, np.float32)
        return x if self.centre is None else x - self.centre

    def assign(self, embedding: np.ndarray) -> Style:
        """The nearest style (cosine) of one L2-normalised customer embedding."""
        index = int(np.argmax(self.centroids @ self._centred(embedding)))
        return Style(index, self.names[index])

    def assign_many(self, embeddings: np.ndarray) -> np.ndarray:
        return np.argmax(self._centred(embeddings) @ self.centroids.T, axis=1)
