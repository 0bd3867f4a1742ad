"""Same-person vs other-person appearance distances on PETA's multi-view *validation* identities
(issue 21): the figures the tracker's re-identification thresholds are picked from.

People: PETA identities that training puts in validation (``training.attributes.data.in_validation``
with ``val_fraction`` and ``seed`` read from ``configs/attributes.yaml``, the split ``load_peta``
makes) from the sub-datasets whose identities have several views (front, side, back):
3DPeS, i-LID, SARC3D, TownCentre (``--subsets``).

Each view is pasted on a grey frame like the scenario renderer does and described through the
daemon's own code, from the person box:

* ``colour``: ``edge.tracking.appearance.describe`` / ``distance`` (the tracker's histograms,
  Hellinger distance of the most different body part);
* ``embedding``: the person-attribute model's pooled embedding
  (``PersonAttributeModel.read(crop).embedding`` on the crop ``person_box_with_margin`` frames),
  cosine distance ``1 - a.b``;
* combinations of the two, each distance divided by its median other-person distance on the
  clean views (``s_c``, ``s_e``): ``max`` (a pair is accepted only when both accept it), ``min``
  (a pair is split only when both disagree: the issue's "split only on strong evidence"), ``mean``.

Two conditions: ``clean`` (the PETA image as stored) and ``degraded`` (the person resized to
80-250 px tall, seeded per view, the frame JPEG quality 50, as in the store walk).

Pairs: *same* = two different images of one identity; *other* = images of two identities of the
same sub-dataset (same cameras and scenes, as in one store; every pair, not a sample, so the 1 %
tails are measured on thousands); *look-alike* = other pairs whose PETA clothing labels agree
(upper and lower body colours, lower-body garment type, jacket, suit).
Galleries (leave one view out): a view against the other views of its identity (``gallery`` =
min distance over up to ``--k`` stored views; ``mean`` = distance to their mean appearance) and
against as many views of each other identity of its sub-dataset.

For each candidate: percentiles, ROC AUC (same vs other), the thresholds that accept 1 % / 5 % of
other people (with the same-person acceptance there) and the "split only on strong evidence"
thresholds: above them a pair is called a different person with at most 1 % / 0.5 % of same-person
pairs refused (with the share of other people and look-alikes split there). Thresholds carry a 90 %
interval from 300 bootstrap resamples of identities.

    nice -n 10 python scripts/reid_distances.py [--out docs] [--k 3] [--head runs/reid/person-reid.npz]

``--write-manifest`` writes the identity stage's thresholds and unit for this embedding into the
model's manifest (the head's, with ``--head``) as ``identity_calibration``
(edge/identity/calibration.py): the embedding's unit is then its clean median other-person distance,
and the thresholds are the degraded gallery's: ``view_distance`` and ``embedding_same_distance`` the
embedding's 1 %-of-others, ``same_distance`` the combined (mean) one, ``split_distance`` and
``embedding_split_distance`` the combined's and the embedding's 0.5 %-of-same split. The training
commands run it; after training elsewhere, run it by hand (``--peta`` etc. if configs/attributes.yaml
does not name the data).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root  # noqa: E402
from edge.preprocess import person_box_with_margin  # noqa: E402
from edge.identity.appearance import COLOUR_SCALE  # noqa: E402
from edge.tracking import appearance  # noqa: E402
from training.attributes.data import in_validation  # noqa: E402
from training.reid.data import frame_person  # noqa: E402,F401  (the renderer the head is fitted with)

REPO = repo_root()

MULTI_VIEW = ("3DPeS", "i-LID", "SARC3D", "TownCentre")
COLOURS = ("Black", "Blue", "Brown", "Green", "Grey", "Orange", "Pink", "Purple", "Red", "White", "Yellow")
LOWER_TYPES = ("Trousers", "Jeans", "Shorts", "ShortSkirt", "LongSkirt", "Capri", "HotPants", "Suits")
UPPER_TYPES = ("Jacket", "Suit")
CLOTHING = ([f"upperBody{c}" for c in COLOURS] + [f"lowerBody{c}" for c in COLOURS]
            + [f"lowerBody{t}" for t in LOWER_TYPES] + [f"upperBody{t}" for t in UPPER_TYPES])
DEGRADED_H, DEGRADED_JPEG = (80, 250), 50
CANDIDATES = ("colour", "embedding", "max", "min", "mean")
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
ACCEPT_OTHER = (0.01, 0.05)  # share of other people accepted as the same
REFUSE_SAME = (0.01, 0.005)  # share of the same person split


@dataclass
class View:
    identity: str
    subset: str
    image: str
    pixels: np.ndarray  # BGR as stored
    clothing: tuple


def load_views(peta_root: Path, subsets=MULTI_VIEW, val_fraction: float = 0.2, seed: int = 42,
               max_identities: int | None = None) -> list[View]:
    """PETA validation views of identities with at least two views, in ``subsets``."""
    with (peta_root / "labels.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["subset"] in subsets
                and in_validation(r["identity"], val_fraction, seed)]
    by_identity: dict[str, list[dict]] = {}
    for row in rows:
        by_identity.setdefault(row["identity"], []).append(row)
    identities = sorted(i for i, r in by_identity.items() if len(r) >= 2)[:max_identities]
    views = []
    for identity in identities:
        for row in sorted(by_identity[identity], key=lambda r: r["image"]):
            pixels = cv2.imread(str(peta_root / row["image"]), cv2.IMREAD_COLOR)
            if pixels is None:
                raise FileNotFoundError(peta_root / row["image"])
            views.append(View(identity, row["subset"], row["image"], pixels,
                              tuple(row[c].strip() == "1" for c in CLOTHING)))
    return views


class Describer:
    """Both appearances of a person box, through the daemon's code."""

    def __init__(self, model_path: Path, reid_head: Path | None = None):
        from edge.attributes.model import PersonAttributeModel

        self.model = PersonAttributeModel(model_path, threads=1, reid_head=reid_head)
        if self.model.embedding_size is None:
            raise SystemExit(f"{model_path}: the manifest names no embedding output")
        self.seconds = 0.0
        self.reads = 0

    def __call__(self, frame: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
        colour = appearance.describe(frame, box)
        x1, y1, x2, y2 = person_box_with_margin(box, self.model.margin, frame.shape)
        start = time.perf_counter()
        embedding = self.model.read(frame[y1:y2, x1:x2]).embedding
        self.seconds += time.perf_counter() - start
        self.reads += 1
        return colour, embedding


def combine(colour, embedding, scales: dict[str, float]) -> dict[str, np.ndarray]:
    """The combined candidates of normalised colour and embedding distances (arrays or floats)."""
    c = np.asarray(colour) / scales["colour"]
    e = np.asarray(embedding) / scales["embedding"]
    return {"max": np.maximum(c, e), "min": np.minimum(c, e), "mean": (c + e) / 2}


def colour_distance(a, b) -> float:
    return appearance.distance(a, b)


def embedding_distance(a, b) -> float:
    return float(1.0 - np.dot(a, b))


def describe_views(views: list[View], describer: Describer, degraded: bool, seed: int = 0):
    """(colours (n, parts, bins), embeddings (n, d)) of every view in one condition."""
    colours, embeddings = [], []
    for i, view in enumerate(tqdm(views, desc="degraded" if degraded else "clean", unit="view", leave=False)):
        if degraded:
            rng = np.random.default_rng([seed, i])
            frame, box = frame_person(view.pixels, int(rng.integers(DEGRADED_H[0], DEGRADED_H[1] + 1)), DEGRADED_JPEG)
        else:
            frame, box = frame_person(view.pixels)
        c, e = describer(frame, box)
        colours.append(c)
        embeddings.append(e)
    return np.stack(colours), np.stack(embeddings)


def pairwise(colours: np.ndarray, embeddings: np.ndarray) -> dict[str, np.ndarray]:
    """Full (n, n) distance matrices per base candidate (the same functions as the pair calls)."""
    sq = np.sqrt(np.clip(colours, 0, None))  # Hellinger per part, max over parts = appearance.distance
    bc = np.einsum("ipb,jpb->ijp", sq, sq)
    colour = np.sqrt(np.clip(1.0 - bc, 0.0, 1.0)).max(axis=-1)
    embedding = 1.0 - embeddings @ embeddings.T
    return {"colour": colour, "embedding": embedding}


@dataclass
class Pairs:
    same: np.ndarray  # (m, 2) view indices
    other: np.ndarray
    lookalike: np.ndarray  # bool per other pair
    identity_of: np.ndarray  # view -> identity index


def make_pairs(views: list[View]) -> Pairs:
    names = sorted({v.identity for v in views})
    identity_of = np.array([names.index(v.identity) for v in views])
    same, other, look = [], [], []
    for i, j in itertools.combinations(range(len(views)), 2):
        if views[i].identity == views[j].identity:
            same.append((i, j))
        elif views[i].subset == views[j].subset:
            other.append((i, j))
            look.append(views[i].clothing == views[j].clothing)
    return Pairs(np.array(same).reshape(-1, 2), np.array(other).reshape(-1, 2), np.array(look, bool), identity_of)


def gallery_scores(views: list[View], colours, embeddings, scales, k: int, rng: np.random.Generator):
    """Leave-one-view-out: each view against its identity's other views (at most ``k``) and against
    as many views of every other identity of its sub-dataset. Returns
    {mode: {candidate: (same, other, look-alike scores)}} for mode in gallery (min) / mean."""
    by_identity: dict[str, list[int]] = {}
    for i, v in enumerate(views):
        by_identity.setdefault(v.identity, []).append(i)

    def score(q, members):
        c = np.array([colour_distance(colours[q], colours[m]) for m in members])
        e = np.array([embedding_distance(embeddings[q], embeddings[m]) for m in members])
        mean_e = embeddings[members].mean(axis=0)
        mean_e /= max(np.linalg.norm(mean_e), 1e-12)
        mc = colour_distance(colours[q], colours[members].mean(axis=0))
        me = embedding_distance(embeddings[q], mean_e)
        per_view = combine(c, e, scales)
        mean_both = combine(mc, me, scales)
        return {
            "gallery": {"colour": c.min(), "embedding": e.min(), **{n: v.min() for n, v in per_view.items()}},
            "mean": {"colour": mc, "embedding": me, **{n: float(v) for n, v in mean_both.items()}},
        }

    out = {mode: {c: ([], []) for c in CANDIDATES} for mode in ("gallery", "mean")}
    lookalike = []
    for q, view in enumerate(views):
        own = [int(m) for m in rng.permutation([m for m in by_identity[view.identity] if m != q])[:k]]
        galleries = [(0, own)]
        for identity, members in by_identity.items():
            if identity != view.identity and views[members[0]].subset == view.subset:
                galleries.append((1, [int(m) for m in rng.permutation(members)[:len(own)]]))
                lookalike.append(views[members[0]].clothing == view.clothing)
        for which, members in galleries:
            s = score(q, members)
            for mode in s:
                for cand in CANDIDATES:
                    out[mode][cand][which].append(float(s[mode][cand]))
    look = np.array(lookalike, bool)
    return {mode: {c: (np.array(a), np.array(b), np.array(b)[look]) for c, (a, b) in d.items()}
            for mode, d in out.items()}


# -- statistics ----------------------------------------------------------------------------------

def auc(same: np.ndarray, other: np.ndarray) -> float:
    """P(a same-person distance < an other-person distance), ties half (Mann-Whitney)."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([same, other]))  # ties get their mean rank
    r_other = ranks[len(same):].sum()
    u = r_other - len(other) * (len(other) + 1) / 2
    return float(u / (len(same) * len(other)))


def accept_threshold(other: np.ndarray, share: float, weights=None) -> float:
    """Largest threshold t with at most ``share`` of other-person distances <= t (accepted)."""
    o, w = _sorted(other, weights)
    cum = np.cumsum(w) / w.sum()
    k = np.searchsorted(cum, share, side="right")  # first k values hold at most `share`
    return float((o[k - 1] + o[k]) / 2) if 0 < k < len(o) else float(o[0] - 1e-6 if k == 0 else o[-1])


def split_threshold(same: np.ndarray, share: float, weights=None) -> float:
    """Smallest threshold t with at most ``share`` of same-person distances > t (split)."""
    s, w = _sorted(same, weights)
    tail = np.cumsum(w[::-1])[::-1] / w.sum()  # tail[i] = share of values >= s[i]
    i = int(np.argmax(tail <= share)) if (tail <= share).any() else len(s)
    return float((s[i - 1] + s[i]) / 2) if 0 < i < len(s) else float(s[-1] if i >= len(s) else s[0] - 1e-6)


def _sorted(values, weights):
    order = np.argsort(values, kind="mergesort")
    w = np.ones(len(values)) if weights is None else np.asarray(weights, float)
    return np.asarray(values)[order], w[order]


def summarise(same, other, look, boot=None) -> dict:
    """The table's numbers for one candidate in one condition. ``boot``: list of (same weights,
    other weights) from identity resamples for the thresholds' 90 % intervals."""
    out = {
        "n_same": int(len(same)), "n_other": int(len(other)), "n_lookalike": int(len(look)),
        "percentiles": {name: {f"p{p}": round(float(np.percentile(v, p)), 4) for p in PERCENTILES}
                        for name, v in (("same", same), ("other", other), ("lookalike", look)) if len(v)},
        "auc": round(auc(same, other), 4),
        "auc_lookalike": round(auc(same, look), 4) if len(look) else None,
        "accept": [], "split": [],
    }
    for share in ACCEPT_OTHER:
        t = accept_threshold(other, share)
        row = {"other_accepted_at_most": share, "threshold": round(t, 4),
               "other_accepted": round(float(np.mean(other <= t)), 4),
               "same_accepted": round(float(np.mean(same <= t)), 4),
               "lookalike_accepted": round(float(np.mean(look <= t)), 4) if len(look) else None}
        if boot:
            ts = [accept_threshold(other, share, wo) for ws, wo in boot]
            row["threshold_90ci"] = [round(float(np.percentile(ts, 5)), 4), round(float(np.percentile(ts, 95)), 4)]
        out["accept"].append(row)
    for share in REFUSE_SAME:
        t = split_threshold(same, share)
        row = {"same_refused_at_most": share, "threshold": round(t, 4),
               "same_refused": round(float(np.mean(same > t)), 4),
               "other_split": round(float(np.mean(other > t)), 4),
               "lookalike_split": round(float(np.mean(look > t)), 4) if len(look) else None}
        if boot:
            ts = [split_threshold(same, share, ws) for ws, wo in boot]
            row["threshold_90ci"] = [round(float(np.percentile(ts, 5)), 4), round(float(np.percentile(ts, 95)), 4)]
        out["split"].append(row)
    return out


def bootstrap_weights(pairs: Pairs, n: int, seed: int = 0):
    """Identity resamples as pair weights: a same pair counts as often as its identity was drawn,
    an other pair as the product of its two identities' draws."""
    rng = np.random.default_rng(seed)
    n_ids = int(pairs.identity_of.max()) + 1
    out = []
    for _ in range(n):
        draws = np.bincount(rng.integers(0, n_ids, n_ids), minlength=n_ids).astype(float)
        ws = draws[pairs.identity_of[pairs.same[:, 0]]]
        wo = draws[pairs.identity_of[pairs.other[:, 0]]] * draws[pairs.identity_of[pairs.other[:, 1]]]
        if ws.sum() > 0 and wo.sum() > 0:
            out.append((ws, wo))
    return out


# -- run -----------------------------------------------------------------------------------------

def condition_distances(dist: dict[str, np.ndarray], pairs: Pairs, scales: dict[str, float]):
    """candidate -> (same, other) pair distances, the combinations built from the base two."""
    out = {}
    for name in ("colour", "embedding"):
        d = dist[name]
        out[name] = (d[pairs.same[:, 0], pairs.same[:, 1]], d[pairs.other[:, 0], pairs.other[:, 1]])
    for i in (0, 1):
        for name, values in combine(out["colour"][i], out["embedding"][i], scales).items():
            out.setdefault(name, [None, None])[i] = values
    return {name: tuple(v) for name, v in out.items()}


def plot(results: dict, distances: dict, pairs: Pairs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = list(distances)
    fig, axes = plt.subplots(len(CANDIDATES), len(conditions), figsize=(6 * len(conditions), 3.2 * len(CANDIDATES)))
    for r, cand in enumerate(CANDIDATES):
        for c, cond in enumerate(conditions):
            ax = axes[r, c]
            same, other = distances[cond][cand]
            look = other[pairs.lookalike]
            hi = float(np.percentile(np.concatenate([same, other]), 99.8))
            bins = np.linspace(0, hi, 50)
            ax.hist(other, bins, density=True, alpha=0.45, color="tab:red", label=f"other person (n={len(other)})")
            ax.hist(same, bins, density=True, alpha=0.55, color="tab:blue", label=f"same person (n={len(same)})")
            ax.hist(look, bins, density=True, histtype="step", lw=2, color="black", label=f"look-alike (n={len(look)})")
            s = results[cond]["pairs"][cand]
            for row, style in zip(s["accept"], ("--", ":")):
                ax.axvline(row["threshold"], color="tab:green", ls=style,
                           label=f"accept {row['other_accepted_at_most']:.0%} other: {row['threshold']:.3f}")
            for row, style in zip(s["split"], ("--", ":")):
                ax.axvline(row["threshold"], color="tab:purple", ls=style,
                           label=f"split, {row['same_refused_at_most']:.1%} same refused: {row['threshold']:.3f}")
            ax.set_title(f"{cand} - {cond}: AUC {s['auc']:.3f}")
            ax.set_xlabel({"colour": "Hellinger (max part)", "embedding": "1 - cosine"}.get(
                cand, f"{cand}(colour/s_c, embedding/s_e)"))
            ax.legend(fontsize=7)
    fig.suptitle("PETA val multi-view identities (3DPeS, i-LID, SARC3D, TownCentre): pair distances")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def print_table(results: dict) -> None:
    for cond, res in results.items():
        for mode in ("pairs", "gallery", "mean"):
            print(f"\n{cond} / {mode}")
            print(f"{'candidate':10s} {'AUC':>6s} {'AUClook':>7s} | {'t@1%oth':>8s} {'same':>5s} | {'t@5%oth':>8s} {'same':>5s} "
                  f"{'look':>5s} | {'split1%':>8s} {'oth':>5s} {'look':>5s} | {'split.5%':>8s} {'oth':>5s} {'look':>5s}")
            for cand in CANDIDATES:
                s = res[mode][cand]
                a1, a5 = s["accept"]
                s1, s05 = s["split"]
                lk = s["auc_lookalike"] if s["auc_lookalike"] is not None else float("nan")
                print(f"{cand:10s} {s['auc']:6.3f} {lk:7.3f} | {a1['threshold']:8.3f} {a1['same_accepted']:5.2f} | "
                      f"{a5['threshold']:8.3f} {a5['same_accepted']:5.2f} {a5['lookalike_accepted'] or 0:5.2f} | "
                      f"{s1['threshold']:8.3f} {s1['other_split']:5.2f} {s1['lookalike_split'] or 0:5.2f} | "
                      f"{s05['threshold']:8.3f} {s05['other_split']:5.2f} {s05['lookalike_split'] or 0:5.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "attributes.yaml")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "person-attributes.tflite")
    parser.add_argument("--head", default="",
                        help="a re-identification head on the embedding (python -m training.reid; default: the raw "
                             "pooled features, as the shipped configs use them)")
    parser.add_argument("--subsets", nargs="+", default=list(MULTI_VIEW))
    parser.add_argument("--k", type=int, default=3, help="views kept per identity in a gallery")
    parser.add_argument("--bootstrap", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-manifest", action="store_true",
                        help="write the identity thresholds measured here into the model's (or head's) manifest")
    parser.add_argument("--peta", type=Path, help="PETA folder (default: the one --config names)")
    parser.add_argument("--val-fraction", type=float, help="the attribute model's PETA validation share (default: --config's)")
    parser.add_argument("--split-seed", type=int, help="the attribute model's split seed (default: --config's)")
    args = parser.parse_args(argv)

    if args.peta is None or args.val_fraction is None or args.split_seed is None:
        config = yaml.safe_load(args.config.read_text())
        peta = next((d for d in config["data"] if d["format"] == "peta"), None)
        if peta is None and args.peta is None:
            print(f"reid_distances: {args.config}: no PETA entry in data (give --peta, --val-fraction, --split-seed)",
                  file=sys.stderr)
            return 2
        if args.peta is None:
            args.peta = (args.config.parent / peta["root"]).resolve()
        if args.val_fraction is None:
            args.val_fraction = float(peta["val_fraction"])
        if args.split_seed is None:
            args.split_seed = int(config["seed"])
    peta_root = args.peta
    views = load_views(peta_root, tuple(args.subsets), args.val_fraction, args.split_seed)
    pairs = make_pairs(views)
    print(f"{len(views)} views of {len(set(v.identity for v in views))} val identities; "
          f"{len(pairs.same)} same, {len(pairs.other)} other ({int(pairs.lookalike.sum())} look-alike) pairs")
    describer = Describer(args.model, Path(args.head) if args.head else None)
    boot = bootstrap_weights(pairs, args.bootstrap, args.seed)

    described, distances, scales = {}, {}, None
    for cond in ("clean", "degraded"):
        described[cond] = describe_views(views, describer, cond == "degraded", args.seed)
        dist = pairwise(*described[cond])
        if scales is None:  # the daemon's own units (edge/identity), so thresholds carry over as they are
            other = pairs.other
            val_medians = {n: round(float(np.median(dist[n][other[:, 0], other[:, 1]])), 4)
                           for n in ("colour", "embedding")}
            scales = {"colour": COLOUR_SCALE, "embedding": describer.model.embedding_scale}
            if args.write_manifest:  # measuring this embedding's calibration: its own unit
                scales["embedding"] = val_medians["embedding"]
        distances[cond] = condition_distances(dist, pairs, scales)

    results = {}
    for cond in distances:
        results[cond] = {"pairs": {}}
        for cand in CANDIDATES:
            same, other = distances[cond][cand]
            results[cond]["pairs"][cand] = summarise(same, other, other[pairs.lookalike], boot)
        results[cond]["auc_per_subset"] = {
            subset: {cand: round(auc(distances[cond][cand][0][in_subset(pairs.same)],
                                     distances[cond][cand][1][in_subset(pairs.other)]), 4) for cand in CANDIDATES}
            for subset in args.subsets
            for in_subset in [lambda p, subset=subset: np.array([views[i].subset == subset for i in p[:, 0]])]}
        g = gallery_scores(views, *described[cond], scales, args.k, np.random.default_rng(args.seed))
        for mode in ("gallery", "mean"):
            results[cond][mode] = {cand: summarise(*scores) for cand, scores in g[mode].items()}

    print_table(results)
    for cond in results:
        print(f"{cond} AUC per sub-dataset:", results[cond]["auc_per_subset"])
    ms = 1000 * describer.seconds / max(describer.reads, 1)
    print(f"\nembedding: {ms:.2f} ms per person crop (attribute model read, 1 thread); scales {scales} "
          f"(clean val medians {val_medians})")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "command": "nice -n 10 python scripts/reid_distances.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "data": {"subsets": args.subsets, "val_fraction": args.val_fraction, "split_seed": args.split_seed,
                 "views": len(views), "identities": len(set(v.identity for v in views)),
                 "same_pairs": int(len(pairs.same)), "other_pairs": int(len(pairs.other)),
                 "lookalike_pairs": int(pairs.lookalike.sum()), "lookalike_columns": CLOTHING},
        "degraded": {"person_height_px": list(DEGRADED_H), "jpeg_quality": DEGRADED_JPEG},
        "model": str(args.model.relative_to(REPO)) if args.model.is_relative_to(REPO) else str(args.model),
        "head": (str(Path(args.head).relative_to(REPO)) if args.head and Path(args.head).is_relative_to(REPO)
                 else args.head or None),
        "combination_scales": scales, "clean_val_median_other": val_medians, "gallery_k": args.k, "bootstrap": len(boot),
        "embedding_ms_per_crop": round(ms, 2),
        "results": results,
    }
    (args.out / "reid.json").write_text(json.dumps(report, indent=1))
    plot(results, distances, pairs, args.out / "reid-distances.png")
    print(f"wrote {args.out / 'reid.json'} and {args.out / 'reid-distances.png'}")
    if args.write_manifest:
        path = write_calibration(describer.model, report)
        print(f"wrote identity_calibration into {path}")
    return 0


def calibration_section(report: dict) -> dict:
    """The manifest's ``identity_calibration`` from a report measured with ``--write-manifest``."""
    gallery = report["results"]["degraded"]["gallery"]

    def accept(candidate: str) -> float:  # 1 % of other people accepted
        return round(next(r["threshold"] for r in gallery[candidate]["accept"] if r["other_accepted_at_most"] == 0.01), 2)

    def split(candidate: str) -> float:  # at most 0.5 % of the same person split
        return round(next(r["threshold"] for r in gallery[candidate]["split"] if r["same_refused_at_most"] == 0.005), 2)

    return {
        "embedding_scale": round(float(report["combination_scales"]["embedding"]), 4),
        "view_distance": accept("embedding"), "same_distance": accept("mean"), "split_distance": split("mean"),
        "embedding_same_distance": accept("embedding"), "embedding_split_distance": split("embedding"),
        "measured": {"command": report["command"],
                     "data": {k: v for k, v in report["data"].items() if k != "lookalike_columns"},
                     "degraded": report["degraded"],
                     "gallery_k": report["gallery_k"],
                     "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    }


def write_calibration(reader, report: dict) -> Path:
    """Write the calibration into the manifest of the embedding ``reader`` gives (the head's when it
    has one), checked by the daemon's own parser first; returns the manifest's path."""
    from edge.identity.calibration import MANIFEST_KEY, read_calibration

    path = reader.reid_head.path.with_suffix(".json") if reader.reid_head is not None else reader.manifest_file
    manifest = json.loads(Path(path).read_text())
    section = calibration_section(report)
    read_calibration({MANIFEST_KEY: section}, path)  # refuses a value the daemon would refuse
    manifest[MANIFEST_KEY] = section
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(path)
    return Path(path)


if __name__ == "__main__":
    sys.exit(main())
