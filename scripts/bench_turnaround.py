"""Turn-around benchmark (issue 21): one PETA validation identity stands in front of the camera
and turns - each of its views (front, side, back) shown in turn at the same spot - through the
daemon's CameraPipeline with the shipped models, with the identity stage on and off.

    python scripts/bench_turnaround.py [--config configs/demo.yaml] [--limit 40] [--seconds-per-view 2]

Reports per mode: people kept as one customer (one id from the first to the last frame), mean
customer ids per person, and the people whose views the tracker alone split. Validation
identities only (``store_walk.load_peta_people``: the attribute training's split), so neither the
attribute model nor the thresholds (docs/reid.md measured on the same identities' pairs, not on
this pipeline) were fitted to these frames.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root, shared_dir  # noqa: E402
from edge.config import load_config  # noqa: E402
from edge.pipeline import CameraPipeline, Models  # noqa: E402
from scenarios.render import Scenario, Visit  # noqa: E402
from scenarios.store_walk import load_peta_people  # noqa: E402
from edge.sources import Frame  # noqa: E402

REPO = repo_root()

EPOCH = 1_767_225_600.0


def turning(person, fps: float = 10, seconds_per_view: float = 2.0, size=(960, 540), height: float = 220) -> Scenario:
    """The person's views one after another, standing at the centre of a store backdrop."""
    n = int(round(seconds_per_view * fps))
    visits = []
    for i, view in enumerate(person.views):
        frames = {f: (size[0] / 2, 0.85 * size[1], height) for f in range(i * n, (i + 1) * n)}
        visits.append(Visit(0, view, frames))
    return Scenario("turnaround", fps, size, visits, jpeg_quality=60, store_backdrop=True)


def customer_ids(scenario: Scenario, config, models) -> list[int]:
    """The customer id shown in each frame (frames with nobody tracked are left out)."""
    ids = []
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = CameraPipeline(config, config.cameras[0], models=models, state_dir=Path(tmp))
        for index, image in scenario.frames():
            t = index / scenario.fps
            result = pipeline.process(Frame(image, index, EPOCH + t, t))
            ids += [int(i) for i in result.tracks.track_ids]
        pipeline.finish()
    return ids


def run(config_path: Path, limit: int, seconds_per_view: float, shared: Path) -> dict:
    config = load_config(config_path)
    models = Models(config)
    people = [p for p in load_peta_people(shared / "datasets" / "peta") if len(p.views) >= 2][:limit]
    figures = {}
    for mode in ("off", "on"):
        mode_config = config.model_copy(update={"identity": config.identity.model_copy(update={"enabled": mode == "on"})})
        per_person = []
        for person in tqdm(people, desc=f"identity {mode}", unit="person"):
            ids = customer_ids(turning(person, seconds_per_view=seconds_per_view), mode_config, models)
            per_person.append(len(set(ids)) if ids else 0)
        tracked = [n for n in per_person if n]
        figures[mode] = {
            "people": len(people), "tracked": len(tracked),
            "kept_as_one": sum(n == 1 for n in tracked),
            "mean_ids": round(sum(tracked) / max(len(tracked), 1), 3),
            "per_person": per_person,
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    parser.add_argument("--shared", type=Path, default=shared_dir())
    parser.add_argument("--limit", type=int, default=40, help="identities (with >= 2 views) to run")
    parser.add_argument("--seconds-per-view", type=float, default=2.0)
    args = parser.parse_args()
    figures = run(args.config, args.limit, args.seconds_per_view, args.shared)
    print("| identity | people tracked | kept as one customer | customer ids per person |")
    print("|---|---|---|---|")
    for mode, f in figures.items():
        print(f"| {mode} | {f['tracked']} / {f['people']} | {f['kept_as_one']} ({f['kept_as_one'] / max(f['tracked'], 1):.0%}) "
              f"| {f['mean_ids']} |")
    split_off = [i for i, (a, b) in enumerate(zip(figures['off']['per_person'], figures['on']['per_person'])) if a > 1]
    print("people the tracker alone split:", split_off, "-> with identity:",
          [figures['on']['per_person'][i] for i in split_off])


if __name__ == "__main__":
    main()
