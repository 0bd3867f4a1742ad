"""Cost and memory of the identity stage (issue 21): what a full gallery costs per comparison and
per tracked person per frame, on this machine.

    python scripts/bench_identity.py [--customers 256] [--repeat 200]

A gallery filled to ``identity.max_customers`` customers, each with ``max_views`` embedding views
(1280 floats, the shipped attribute model's size) and colour views; then the calls the daemon
makes: adding a reading's views to a customer (each garment scan) and comparing a new customer
with the whole gallery (its first ``match_readings`` scans only). Prints ms per call and the
gallery's memory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.config import ConsensusConfig, IdentityConfig  # noqa: E402
from edge.consensus import GarmentVotes  # noqa: E402
from edge.customer import Customer  # noqa: E402
from edge.identity import AppearanceViews, CustomerGallery  # noqa: E402
from edge.tracking.appearance import BINS, PARTS  # noqa: E402


def unit(rng, n):
    v = rng.normal(size=n).astype(np.float32)
    return v / np.linalg.norm(v)


def colour(rng):
    h = rng.random((len(PARTS), BINS)).astype(np.float32)
    return h / h.sum(axis=1, keepdims=True)


def person(rng, cid, cfg, t):
    c = Customer(cid, t, t, GarmentVotes(ConsensusConfig()),
                 appearance=AppearanceViews(cfg.max_views, cfg.view_distance, cfg.colour_same_distance))
    for _ in range(cfg.max_views):
        c.appearance.add_embedding(unit(rng, 1280))
        c.appearance.add_colour(colour(rng))
    c.first_box = c.box = np.array([100, 100, 160, 300], np.float32)
    return c


def timed(fn, repeat):
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) * 1000 / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=IdentityConfig().max_customers)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    cfg = IdentityConfig(max_customers=args.customers)
    rng = np.random.default_rng(0)
    gallery = CustomerGallery(cfg)
    for cid in range(args.customers):
        gallery.remember(person(rng, cid, cfg, float(cid) / 10))
    newcomer = person(rng, 10**6, cfg, args.customers / 10 + 10.0)  # within memory_s of all
    one = person(rng, 10**6 + 1, cfg, 0.0)
    embedding, hist = unit(rng, 1280), colour(rng)
    find_ms = timed(lambda: gallery.find(newcomer), max(args.repeat // 10, 5))
    add_ms = timed(lambda: (one.appearance.add_embedding(embedding), one.appearance.add_colour(hist)), args.repeat)
    print(f"gallery: {len(gallery)} customers x {cfg.max_views} views, {gallery.nbytes() / 1e6:.1f} MB "
          f"({gallery.nbytes() / max(len(gallery), 1) / 1e3:.1f} kB per customer)")
    print(f"compare a new customer with the whole gallery: {find_ms:.2f} ms (at most {cfg.match_readings} times "
          f"per customer)")
    print(f"add one reading's views to a customer: {add_ms:.3f} ms (each garment scan)")


if __name__ == "__main__":
    main()
