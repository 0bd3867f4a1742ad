"""Benchmark: detector-only vs full-pipeline throughput on the demo clip, in one run.

    python scripts/bench_pipeline.py [--config configs/demo.yaml] [--clip PATH] [--frames N]

The clip is decoded block by block (default 100 frames); each block is run first through the
detector alone, then through the full CameraPipeline (detect, track, garment crops, classify,
consensus, rules, analytics). Interleaving the two on the same frames means both see the same
machine noise, so their ratio is meaningful on a busy 2-core box. Decode time is reported
separately (it is the same for both). Prints a Markdown table; ``--write docs/performance.md``
replaces the figures section there.
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.config import load_config  # noqa: E402
from edge.pipeline import CameraPipeline, Models  # noqa: E402
from edge.sources import Frame  # noqa: E402
from edge.stats import StageTimer  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def detector_pass(models: Models, images: list) -> float:
    t0 = time.perf_counter()
    for image in images:
        models.detector.detect(image)
    return time.perf_counter() - t0


def full_pass(pipeline: CameraPipeline, frames: list[Frame], counts: list[int]) -> float:
    """Runs the frames through the whole pipeline; adds classifier calls and alerts to counts."""
    t0 = time.perf_counter()
    for frame in frames:
        result = pipeline.process(frame)
        counts[0] += result.classified
        counts[1] += len(result.alerts)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--clip", default=str(REPO.parent / "shared" / "media" / "one-by-one-person-detection.mp4"))
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0 = whole clip)")
    parser.add_argument("--block", type=int, default=25)
    parser.add_argument("--write", help="markdown file whose figures section is replaced")
    args = parser.parse_args()

    config = load_config(args.config)
    camera = config.cameras[0]
    models = Models(config)
    detector_models = Models(config)  # its own interpreter, so caches do not favour either pass
    with tempfile.TemporaryDirectory() as state:
        pipeline = CameraPipeline(config, camera, models, Path(state), StageTimer(window=1_000_000))
        capture = cv2.VideoCapture(args.clip)
        if not capture.isOpened():
            print(f"{args.clip}: cannot open video", file=sys.stderr)
            return 2
        fps_src = capture.get(cv2.CAP_PROP_FPS) or 10.0
        t_decode = t_detect = t_full = 0.0
        n = 0
        counts = [0, 0]  # classifier calls, alerts
        start_wall = time.time()
        declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        total = min(args.frames, declared) if args.frames and declared else (args.frames or declared or None)
        progress = tqdm(total=total, desc="frames (detector + pipeline)", unit="frame", file=sys.stderr)
        while True:
            block = []
            t0 = time.perf_counter()
            while len(block) < args.block and (not args.frames or n + len(block) < args.frames):
                ok, image = capture.read()
                if not ok:
                    break
                block.append(image)
            t_decode += time.perf_counter() - t0
            if not block:
                break
            frames = [Frame(image=image, index=n + i, timestamp=start_wall + (n + i) / fps_src,
                            source_time_s=(n + i) / fps_src) for i, image in enumerate(block)]
            # alternate which pass goes first so neither always runs on a warmer cache
            if (n // args.block) % 2 == 0:
                t_detect += detector_pass(detector_models, block)
                t_full += full_pass(pipeline, frames, counts)
            else:
                t_full += full_pass(pipeline, frames, counts)
                t_detect += detector_pass(detector_models, block)
            n += len(block)
            progress.update(len(block))
        progress.close()
        pipeline.finish()

    classified, alerts = counts
    fps_detect = n / t_detect
    fps_full = n / t_full
    latency = pipeline.timer.summary()
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| frames | {n} ({Path(args.clip).name}) |",
        f"| detector | {Path(str(config.detector.model)).name} |",
        f"| classifier | {Path(str(config.classifier.model)).name} |",
        f"| detector-only fps | {fps_detect:.1f} |",
        f"| full-pipeline fps | {fps_full:.1f} |",
        f"| **ratio full / detector-only** | **{fps_full / fps_detect:.3f}** (target >= 0.85) |",
        f"| decode (same for both) | {1000 * t_decode / n:.2f} ms/frame |",
        f"| classifier calls | {classified} ({classified / n:.2f} per frame) |",
        f"| alerts | {alerts} |",
        f"| peak RSS | {peak_rss_mb():.0f} MB (target <= 400) |",
    ]
    rows += ["", "| stage | p50 ms | p95 ms | calls |", "|---|---|---|---|"]
    rows += [f"| {stage} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} | {v['n']} |" for stage, v in latency.items()]
    machine = f"{platform.machine()}, {platform.python_version()}, {len(__import__('os').sched_getaffinity(0))} cores"
    text = "\n".join(rows) + f"\n\nMeasured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine}.\n"
    print(text)
    if args.write:
        path = Path(args.write)
        marker_start, marker_end = "<!-- bench:start -->", "<!-- bench:end -->"
        body = path.read_text() if path.exists() else f"{marker_start}\n{marker_end}\n"
        head, _, rest = body.partition(marker_start)
        _, _, tail = rest.partition(marker_end)
        path.write_text(f"{head}{marker_start}\n{text}{marker_end}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
