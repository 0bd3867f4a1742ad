"""Fisher discriminant (LDA) on frozen features, and the pair figures it is chosen and checked by.

Closed form, no learning rate, no epochs: with about a thousand identities of two to four views
each, a linear map is what the data supports (a learned network would memorise the identities).
Regularisation shrinks the within-person scatter towards its mean variance: without it the
directions of a few identities' noise dominate.
"""

from __future__ import annotations

import numpy as np


def fisher_projection(features: np.ndarray, identities: np.ndarray, dims: int, shrink: float):
    """(mean (d,), projection (d, dims)): the ``dims`` directions of largest between-person to
    within-person variance. ``shrink``: within-person covariance + shrink * its mean variance * I."""
    x = np.asarray(features, np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    _, inverse = np.unique(identities, return_inverse=True)
    sums = np.zeros((inverse.max() + 1, x.shape[1]))
    np.add.at(sums, inverse, centred)
    person_means = sums / np.bincount(inverse)[:, None]
    within_dev = centred - person_means[inverse]
    within = within_dev.T @ within_dev / len(x)
    between = centred.T @ centred / len(x) - within
    within += shrink * np.trace(within) / len(within) * np.eye(len(within))
    values, vectors = np.linalg.eigh(within)
    whiten = vectors / np.sqrt(values)
    b_values, b_vectors = np.linalg.eigh(whiten.T @ between @ whiten)
    order = np.argsort(b_values)[::-1][:dims]
    return mean.astype(np.float32), (whiten @ b_vectors[:, order]).astype(np.float32)


def project(features: np.ndarray, mean: np.ndarray, projection: np.ndarray) -> np.ndarray:
    """Rows mapped and L2-normalised: what ``edge.identity.head.ReidHead.project`` gives one row."""
    out = (np.asarray(features, np.float32) - mean) @ projection
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def auc(same: np.ndarray, other: np.ndarray) -> float:
    """P(a same-person distance < an other-person distance), ties half (Mann-Whitney)."""
    values = np.concatenate([same, other])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.zeros(len(counts))
    np.add.at(sums, inverse, ranks)
    ranks = (sums / counts)[inverse]  # ties share their mean rank
    n1, n0 = len(same), len(other)
    return float(1.0 - (ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def pair_figures(embeddings: np.ndarray, identities: np.ndarray, subsets: np.ndarray, images: np.ndarray) -> dict:
    """Same-person pairs (two different images of one identity) against other-person pairs of the
    same sub-dataset (same cameras, as in one store): AUC, the share of same-person pairs accepted
    where 1 % of other people are, and the median other-person distance (the head's unit)."""
    distances = 1.0 - embeddings @ embeddings.T
    upper = np.triu_indices(len(embeddings), 1)
    d = distances[upper]
    same_person = (identities[:, None] == identities[None])[upper]
    same_image = (images[:, None] == images[None])[upper] & same_person
    same_subset = (subsets[:, None] == subsets[None])[upper]
    same, other = d[same_person & ~same_image], d[~same_person & same_subset]
    cut = np.sort(other)[max(0, int(0.01 * len(other)) - 1)]
    return {"auc": round(auc(same, other), 4), "same_accepted_at_1pct_other": round(float((same <= cut).mean()), 4),
            "median_other": round(float(np.median(other)), 4), "same_pairs": int(len(same)),
            "other_pairs": int(len(other))}
