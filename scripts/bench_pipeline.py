"""Benchmark: the project's pipeline against a people-only tracking baseline and a naive
every-person garment pipeline, with 1 and 2 interpreter threads, in one run.

    python scripts/bench_pipeline.py [--config configs/demo.yaml] [--frames 0] [--threads 1,2]
        [--repeats 3] [--busy-cores 0] [--write docs/performance.md] [--json-out docs/data/bench_pipeline.json]

Variants (each run is its own process, so CPU time and peak RSS are that variant's alone):

* ``project``: the daemon's ``CameraPipeline`` (detect, track, budgeted garment scans, classifier,
  person attributes, consensus, rules, analytics) with the config's models;
* ``project-every-frame``: the same with the idle gate off (``detector.idle_interval_s: 0``: the
  person detector on every frame, as the people-only baseline runs it), to show what the gate adds;
* ``people``: Ultralytics' own ``YOLO(...).track(persist=True, classes=[person])`` (ByteTrack) with the
  same int8 TFLite person detector, its interpreter threads set to the run's (Ultralytics picks
  cores-1 by itself); people only, no garments;
* ``naive``: the same person detector and the project's tracker, then on every tracked person in every
  frame the garment detector, the classifier on every garment crop and the person-attribute model
  (what "look at everyone all the time" costs; no consensus or rules).

Every model of a run uses the run's thread count. Runs alternate variant and thread order across
repeats; the table gives medians. ``--busy-cores N`` runs N busy-loop processes (at the same
priority) during every run: a competing load such as Home Assistant or Frigate on the same box.
The clip is decoded inside each run (the same work for all variants; its time is in the figures).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, installed or not
from edge.paths import repo_root, shared_dir  # noqa: E402

REPO = repo_root()

VARIANTS = ("project", "project-every-frame", "people", "naive")


# -- one run (child process) -------------------------------------------------------------------

def _config(path: str, threads: int, variant: str = "project"):
    from edge.config import load_config

    config = load_config(path)
    for section in (config.detector, config.garments, config.classifier, config.attributes):
        section.threads = threads
    if variant == "project-every-frame":
        config.detector.idle_interval_s = 0.0
    return config


def _frames(clip: str, limit: int):
    import cv2

    capture = cv2.VideoCapture(clip)
    if not capture.isOpened():
        raise SystemExit(f"{clip}: cannot open video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    index = 0
    while not limit or index < limit:
        ok, image = capture.read()
        if not ok:
            break
        yield index, index / fps, image
        index += 1


def run_project(config, clip: str, limit: int) -> dict:
    from edge.pipeline import CameraPipeline, Models
    from edge.sources import Frame

    counts = {"frames": 0, "scans": 0, "classifier_calls": 0, "alerts": 0}
    seen: set[int] = set()
    with tempfile.TemporaryDirectory() as state:
        from edge.stats import StageTimer

        pipeline = CameraPipeline(config, config.cameras[0], Models(config, config.cameras[0]), Path(state),
                                  StageTimer(window=1_000_000))
        start = time.time()
        t0, c0 = time.perf_counter(), time.process_time()
        for index, source_s, image in _frames(clip, limit):
            result = pipeline.process(Frame(image=image, index=index, timestamp=start + source_s,
                                            source_time_s=source_s))
            counts["frames"] += 1
            counts["scans"] += result.scanned
            counts["classifier_calls"] += result.classified
            counts["alerts"] += len(result.alerts)
            seen.update(int(i) for i in result.tracks.track_ids)
        pipeline.finish()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        counts["customers"] = len(seen)
        counts["stages"] = pipeline.timer.summary()
        counts["detector_skipped"] = getattr(pipeline.gate, "skipped", 0)
    return {**counts, "wall_s": wall, "cpu_s": cpu}


def run_people(config, clip: str, limit: int, threads: int) -> dict:
    os.environ["YOLO_VERBOSE"] = "False"
    from export.ultralytics_env import setup_ultralytics

    # offline settings and a CPU torchvision::nms (the registry's torchvision is a CUDA build)
    config_dir = tempfile.mkdtemp(prefix="bench-yolo-")
    atexit.register(shutil.rmtree, config_dir, True)
    setup_ultralytics(Path(config_dir))
    import torch

    torch.set_num_threads(threads)
    import ultralytics.nn.backends.litert as litert_backend

    litert_backend.NUM_THREADS = threads  # Ultralytics' own choice is cores - 1
    from ultralytics import YOLO

    model = YOLO(str(config.detector.model), task="detect")
    person_id = 0
    conf = min(config.tracker.low_score, config.detector.conf)
    imgsz = _input_size(config.detector.model)
    counts = {"frames": 0}
    ids = set()
    t0, c0 = time.perf_counter(), time.process_time()
    for _, _, image in _frames(clip, limit):
        result = model.track(image, persist=True, classes=[person_id], conf=conf, imgsz=imgsz,
                             tracker="bytetrack.yaml", verbose=False)[0]
        counts["frames"] += 1
        if result.boxes is not None and result.boxes.id is not None:
            ids.update(int(i) for i in result.boxes.id.tolist())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {**counts, "tracks": len(ids), "wall_s": wall, "cpu_s": cpu}


def _input_size(model_path) -> int:
    from edge.runtime import TFLiteModel

    return int(TFLiteModel(model_path, threads=1).input.shape[1])


def run_naive(config, clip: str, limit: int) -> dict:
    import numpy as np

    from edge.garments import garment_crops
    from edge.pipeline import Models
    from edge.preprocess import person_box_with_margin
    from edge.tracking import appearance
    from edge.tracking.bytetrack import ByteTracker

    models = Models(config)
    tracker = ByteTracker(config.tracker)
    cfg = config.tracker
    person = config.detector.person_label
    garment_detector = models.garment_detector
    counts = {"frames": 0, "scans": 0, "classifier_calls": 0, "attribute_calls": 0}
    t0, c0 = time.perf_counter(), time.process_time()
    for _, source_s, image in _frames(clip, limit):
        persons = models.detector.detect(image).with_label(person)
        looks = {}
        if cfg.appearance:
            rows = np.nonzero(persons.scores >= cfg.high_score)[0]
            looks = appearance.describe_people(image, persons.xyxy, rows, cfg.appearance_min_height_px,
                                               cfg.appearance_max_overlap)
        tracks = tracker.update(persons, source_s, looks)
        tracker.events()
        counts["frames"] += 1
        for row, box in enumerate(tracks.xyxy):
            x1, y1, x2, y2 = (int(v) for v in box)
            crop = image[max(0, y1):y2, max(0, x1):x2]
            if crop.size == 0:
                continue
            counts["scans"] += 1
            garments = garment_detector.detect(crop).with_label(*garment_detector.garment_labels)
            garments.xyxy[:, [0, 2]] += max(0, x1)
            garments.xyxy[:, [1, 3]] += max(0, y1)
            garments.data["origin"] = np.full(len(garments), row, np.int64)
            for item in garment_crops(image, tracks, garments, config.garments):
                if item.good:
                    models.classifier.classify(item.crop)
                    counts["classifier_calls"] += 1
            if models.attributes is not None:
                left, top, right, bottom = person_box_with_margin(box, models.attributes.margin, image.shape)
                models.attributes.read(image[top:bottom, left:right])
                counts["attribute_calls"] += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {**counts, "wall_s": wall, "cpu_s": cpu}


def child(args) -> int:
    config = _config(args.config, args.threads, args.child)
    if args.child in ("project", "project-every-frame"):
        out = run_project(config, args.clip, args.frames)
    elif args.child == "people":
        out = run_people(config, args.clip, args.frames, args.threads)
    else:
        out = run_naive(config, args.clip, args.frames)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("RESULT " + json.dumps(out))
    return 0


# -- the comparison (parent) -------------------------------------------------------------------

def busy_loops(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def one_run(args, variant: str, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--threads", str(threads), "--config", args.config,
           "--clip", args.clip, "--frames", str(args.frames)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{variant} x{threads} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def table(results: dict, thread_counts: list[int]) -> list[str]:
    def med(key, variant, threads):
        return statistics.median(r[key] for r in results[(variant, threads)])

    rows = ["| variant | threads | wall ms/frame | CPU ms/frame | CPU / wall | peak RSS MB | garment scans | "
            "classifier calls | alerts / tracks |", "|---|---|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        for threads in thread_counts:
            if (variant, threads) not in results:
                continue
            runs = results[(variant, threads)]
            frames = runs[0]["frames"]
            wall, cpu = med("wall_s", variant, threads), med("cpu_s", variant, threads)
            last = runs[-1]
            extra = (f"{last['alerts']} alerts, {last['customers']} customers, detector skipped on "
                     f"{last.get('detector_skipped', 0)} frames" if variant.startswith("project")
                     else f"{last['tracks']} tracks" if variant == "people" else "-")
            rows.append(f"| {variant} | {threads} | {1000 * wall / frames:.2f} | {1000 * cpu / frames:.2f} | "
                        f"{cpu / wall:.2f} | {med('peak_rss_mb', variant, threads):.0f} | {last.get('scans', '-')} | "
                        f"{last.get('classifier_calls', '-')} | {extra} |")
    return rows


def ratios(results: dict, thread_counts: list[int]) -> list[str]:
    def med(key, variant, threads):
        return statistics.median(r[key] for r in results[(variant, threads)])

    rows = ["| threads | CPU project / people-only | wall naive / project | CPU naive / project |", "|---|---|---|---|"]
    for threads in thread_counts:
        if not all((v, threads) in results for v in VARIANTS):
            continue
        rows.append(f"| {threads} | {med('cpu_s', 'project', threads) / med('cpu_s', 'people', threads):.2f} "
                    f"(target <= 1) | {med('wall_s', 'naive', threads) / med('wall_s', 'project', threads):.2f} "
                    f"(target >= 1.5) | {med('cpu_s', 'naive', threads) / med('cpu_s', 'project', threads):.2f} "
                    f"(target >= 1.5) |")
        if (key := ("project-every-frame", threads)) in results and ("people", threads) in results:
            rows.append(f"| {threads}, detector on every frame | "
                        f"{med('cpu_s', key[0], threads) / med('cpu_s', 'people', threads):.2f} | "
                        f"{med('wall_s', 'naive', threads) / med('wall_s', key[0], threads):.2f} | "
                        f"{med('cpu_s', 'naive', threads) / med('cpu_s', key[0], threads):.2f} |"
                        if ("naive", threads) in results else "")
    rows = [row for row in rows if row]
    return rows if len(rows) > 2 else []  # the ratios need the project, people and naive variants


# -- Raspberry Pi 5 estimate ---------------------------------------------------------------------
# Published int8 timings on a Raspberry Pi 5 (Cortex-A76, 4 cores), as an effective rate in GFLOP/s:
PI5_RATES = {
    "optimistic": (6.9 / 28.2e-3, "YOLOv4-tiny int8 TFLite, 416 px (6.9 GFLOPs): 28.2 ms "
                   "(Boddu & Mukherjee, arXiv 2506.09300, 2025)"),
    "pessimistic": (8.7 / 115e-3, "YOLOv8n int8, 640 px (8.7 GFLOPs), 4 threads: 115 ms "
                    "(github.com/Bing1002/rpi-deploy)"),
}
# Python, OpenCV and numpy work per frame: a Cortex-A76 core is taken as 2-3x slower than this x86 core.
PI5_PYTHON_FACTOR = (2.0, 3.0)


def model_gflops(path, input_hw: tuple[int, int]) -> float:
    """Published GFLOPs of the architectures the project ships, scaled to the input (FLOPs grow with pixels)."""
    name = Path(str(path)).name
    h, w = input_hw
    if "yolo11n" in name:
        return 6.5 * h * w / 640 ** 2
    if "yolov8n" in name or "garment-detector" in name:
        return 8.7 * h * w / 640 ** 2
    return 0.6 * h * w / 224 ** 2  # MobileNetV2 1.0 (classifier, person attributes): 0.6 GFLOPs at 224


def invoke_ms(path, runs: int = 30) -> tuple[float, tuple[int, int]]:
    """Median invoke CPU time with 1 thread on a zero tensor (CPU time: robust to other processes on a
    shared box), and the model's input height x width."""
    import numpy as np

    from edge.runtime import TFLiteModel

    model = TFLiteModel(path, threads=1)
    shape = model.input.shape
    hw = (shape[1], shape[2]) if shape[-1] == 3 else (shape[2], shape[3])
    tensor = np.zeros(shape, model.input.dtype)
    times = []
    for i in range(runs + 3):
        t0 = time.process_time()
        model.run(tensor)
        if i >= 3:
            times.append(time.process_time() - t0)
    return 1000 * statistics.median(times), hw


def pi5_estimate(args, results: dict) -> list[str]:
    config = _config(args.config, 1)
    runs = results[("project", 1)]
    frames = runs[0]["frames"]
    # the idle gate skips the person detector on frames of an empty, still floor (edge/motion.py)
    detector_calls = 1.0 - runs[-1].get("detector_skipped", 0) / frames
    per_frame = {"person detector": (config.detector.model, detector_calls),
                 "garment detector (per scanned person)": (config.garments.detector, runs[-1]["scans"] / frames),
                 "classifier (per garment crop sent)": (config.classifier.model, runs[-1]["classifier_calls"] / frames)}
    if config.attributes.enabled:
        per_frame["person attributes (per scanned person)"] = (config.attributes.model, runs[-1]["scans"] / frames)
    rows = ["| stage | calls / frame | GFLOPs / call | here, 1 thread: CPU ms / call | Pi 5 estimate: ms / call | "
            "Pi 5 estimate: ms / frame |", "|---|---|---|---|---|---|"]
    model_here = 0.0
    pi_lo = pi_hi = 0.0
    fast, slow = PI5_RATES["optimistic"][0], PI5_RATES["pessimistic"][0]
    for stage, (path, calls) in per_frame.items():
        if path is None:
            continue
        ms, hw = invoke_ms(path)
        gflops = model_gflops(path, hw)
        lo, hi = 1000 * gflops / fast, 1000 * gflops / slow
        model_here += calls * ms
        pi_lo += calls * lo
        pi_hi += calls * hi
        rows.append(f"| {stage} | {calls:.2f} | {gflops:.2f} | {ms:.1f} | {lo:.0f}-{hi:.0f} | "
                    f"{calls * lo:.1f}-{calls * hi:.1f} |")
    cpu_here = 1000 * statistics.median(r["cpu_s"] for r in runs) / frames
    python_here = max(0.0, cpu_here - model_here)
    py_lo, py_hi = python_here * PI5_PYTHON_FACTOR[0], python_here * PI5_PYTHON_FACTOR[1]
    rows.append(f"| decode, preprocessing, tracking, rules (Python, OpenCV) | 1 | - | {python_here:.1f} per frame | - | "
                f"{py_lo:.0f}-{py_hi:.0f} |")
    total_lo, total_hi = pi_lo + py_lo, pi_hi + py_hi
    rows.append(f"| **total per frame** | | | {cpu_here:.1f} (CPU) | | **{total_lo:.0f}-{total_hi:.0f}** "
                f"(~{1000 / total_hi:.0f}-{1000 / total_lo:.0f} fps on one core's worth of work) |")
    rows += ["", "Estimate, not a measurement: model time = the architecture's published GFLOPs at the model's input "
             "divided by an effective int8 rate from published Raspberry Pi 5 timings: "
             + "; ".join(f"{k} {v[0]:.0f} GFLOP/s from {v[1]}" for k, v in PI5_RATES.items())
             + f". The rest of the frame's CPU time here (CPU ms per frame minus the models' invoke time) is taken "
             f"{PI5_PYTHON_FACTOR[0]:.0f}-{PI5_PYTHON_FACTOR[1]:.0f}x slower on a Cortex-A76 core (an assumption). "
             "The published rates use all 4 cores for one model; the daemon's budgeted garment scans keep the "
             "per-frame figure near the person detector's own when the garments are settled."]
    return rows


def measure(args, plan: list[tuple[str, int]]) -> dict:
    """Every (variant, threads) of ``plan`` ``args.repeats`` times, alternating the order, with
    ``args.busy_cores`` busy loops beside them: {(variant, threads): [run, ...]}."""
    results: dict = {}
    busy = busy_loops(args.busy_cores)
    try:
        for repeat in range(args.repeats):
            order = plan if repeat % 2 == 0 else plan[::-1]  # alternate: neither always first
            for variant, threads in order:
                out = one_run(args, variant, threads)
                results.setdefault((variant, threads), []).append(out)
                print(f"repeat {repeat + 1}/{args.repeats} {variant} x{threads}: {out['frames']} frames, "
                      f"wall {out['wall_s']:.1f} s, CPU {out['cpu_s']:.1f} s, RSS {out['peak_rss_mb']:.0f} MB",
                      file=sys.stderr, flush=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--clip", default=str(shared_dir() / "media" / "one-by-one-person-detection.mp4"))
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0 = whole clip)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (parent) or one (child)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy-cores", type=int, default=0, help="busy-loop processes running during every run")
    parser.add_argument("--write", help="markdown file whose bench section is replaced")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--pi5-estimate", action="store_true",
                        help="add a Raspberry Pi 5 per-stage estimate (needs the project with 1 thread)")
    parser.add_argument("--from-json", type=Path, help="no runs: render the tables (and --write) from the "
                        "runs of an earlier --json-out")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.threads = int(args.threads)
        return child(args)

    thread_counts = [int(t) for t in args.threads.split(",")]
    variants = [v for v in args.variants.split(",") if v]
    plan = [(v, t) for v in variants for t in thread_counts]
    if args.from_json:  # no runs: the earlier run's figures, command and time
        earlier = json.loads(args.from_json.read_text())
        results = {}
        for name, runs in earlier["runs"].items():
            variant, _, threads = name.rpartition(" x")
            results[(variant, int(threads))] = runs
        plan = [key for key in plan if key in results]
        command, load_before, load_after = earlier["command"], earlier["load_before"], earlier["load_after"]
        args.busy_cores, args.repeats = earlier["busy_cores"], len(next(iter(results.values())))
        when = time.gmtime(args.from_json.stat().st_mtime) if "when" not in earlier \
            else time.strptime(earlier["when"], "%Y-%m-%d %H:%M UTC")
    else:
        load_before = os.getloadavg()[0]
        results = measure(args, plan)
        load_after = os.getloadavg()[0]
        command = "python scripts/bench_pipeline.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        when = time.gmtime()
    frames = results[plan[0]][0]["frames"]
    machine = f"{platform.machine()}, Python {platform.python_version()}, {len(os.sched_getaffinity(0))} cores"
    text = "\n".join(
        [f"`{command}`", "",
         f"{frames} frames of {Path(args.clip).name}, {args.repeats} runs per row (median), "
         f"{args.busy_cores} busy core(s) of competing load; load average {load_before:.1f} before, "
         f"{load_after:.1f} after; {machine}; {time.strftime('%Y-%m-%d %H:%M UTC', when)}.", ""]
        + table(results, thread_counts) + [""] + ratios(results, thread_counts)) + "\n"
    if args.pi5_estimate and ("project", 1) in results:
        text += "\n#### Raspberry Pi 5 per-stage estimate (from published int8 timings)\n\n" \
            + "\n".join(pi5_estimate(args, results)) + "\n"
    print(text)
    if args.json_out and not args.from_json:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"command": command, "busy_cores": args.busy_cores,
                                             "load_before": load_before, "load_after": load_after,
                                             "when": time.strftime("%Y-%m-%d %H:%M UTC", when),
                                             "runs": {f"{v} x{t}": r for (v, t), r in results.items()}}, indent=1) + "\n")
    if args.write:
        path = Path(args.write)
        marker = f"bench:{args.busy_cores}busy"
        start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
        body = path.read_text() if path.exists() else ""
        if start not in body:
            body += f"\n{start}\n{end}\n"
        head, _, rest = body.partition(start)
        _, _, tail = rest.partition(end)
        path.write_text(f"{head}{start}\n{text}{end}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
