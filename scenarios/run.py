"""Run a scenario through the daemon's own ``CameraPipeline`` and record what it did.

``run_scenario`` feeds the frames as a file source would (source time, no real-time limit);
``run_live`` simulates a live camera at ``fps``: frames arrive on a clock, the pipeline takes the
newest one when it is free (newest-frame-wins, like ``edge.sources``), and frames that arrived
while it was busy are dropped. The scan budget is then set from the camera's frame period.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from edge.attributes.votes import garments_only
from edge.config import CameraConfig, Config
from edge.pipeline import CameraPipeline, FrameResult, Models
from edge.sources import Frame
from .score import RunRecord

EPOCH = 1_767_225_600.0  # 2026-01-01 00:00 UTC: synthetic wall time of a scenario's first frame


def _coarse_labels(config: Config) -> dict[str, str]:
    """Classifier/detector label -> the photos' label (jacket <- blazer, shoe <- shoes ...)."""
    coarse = {}
    for detector_label, finer in config.garments.refinements.items():
        for label in finer:
            coarse.setdefault(label, detector_label)
        coarse[detector_label] = detector_label
    return coarse


def _record(record: RunRecord, pipeline: CameraPipeline, result: FrameResult, now_s: float) -> None:
    record.frames += 1
    record.classifier_calls += result.classified
    record.scans += result.scanned
    for box, track_id in zip(result.tracks.xyxy, result.tracks.track_ids):
        track_id = int(track_id)
        record.tracks[track_id].append((result.frame.index, track_id, np.array(box)))
        record.track_spans.setdefault(track_id, [now_s, now_s])[1] = now_s
    for alert in result.alerts:
        record.alerts.append(_alert_row(alert, now_s))
    record.windows += result.closed_windows


def _alert_row(alert, now_s: float) -> dict:
    """What the scorer needs of an Alert; frame_index and box say where its box was drawn."""
    return {"track_id": alert.track_id, "rule": alert.rule, "decided": alert.decided, "source_time_s": now_s,
            "frame_index": alert.frame_index, "box": list(alert.box)}


def _remember_settled(record: RunRecord, pipeline: CameraPipeline, coarse: dict[str, str]) -> None:
    for customer in pipeline.customers:
        # garments only: person-attribute readings (person.<name>) are no garment of the photo's labels
        record.settled[customer.id] = {coarse.get(label, label) for label in garments_only(customer.settled_scores())}


def _camera(fps_cap: float | None) -> CameraConfig:
    return CameraConfig(name="scenario", source="scenario", fps_cap=fps_cap)


class WithProgress:
    """``scenario`` whose frames show a progress bar labelled ``desc`` (long clips: the browsing
    clip, the store walk)."""

    def __init__(self, scenario, desc: str):
        self._scenario = scenario
        self._desc = desc

    def __getattr__(self, name):
        return getattr(self._scenario, name)

    def frames(self):
        from tqdm import tqdm

        yield from tqdm(self._scenario.frames(), total=self._scenario.n_frames, desc=self._desc, unit="frame")


def run_scenario(scenario, config: Config, models: Models, state_dir: Path | None = None) -> RunRecord:
    record = RunRecord(scenario.fps)
    coarse = _coarse_labels(config)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = CameraPipeline(config, _camera(None), models=models, state_dir=state_dir or Path(tmp))
        for index, image in scenario.frames():
            t = index / scenario.fps
            result = pipeline.process(Frame(image, index, EPOCH + t, t))
            _record(record, pipeline, result, t)
            _remember_settled(record, pipeline, coarse)
        final = pipeline.finish()
        if final is not None:
            last_t = (scenario.n_frames - 1) / scenario.fps
            for alert in final.alerts:
                record.alerts.append(_alert_row(alert, last_t))
            record.windows += final.closed_windows
        pipeline.analytics.close()
    return record


def run_live(scenario, config: Config, models: Models, fps: float) -> tuple[RunRecord, dict]:
    """Simulated live camera at ``fps``; returns the record and the real-time figures."""
    record = RunRecord(fps)
    frames = [image for _, image in scenario.frames()]  # rendered up front: not part of the timing
    dropped = processed = 0
    busy_s = 0.0
    budgets = []
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = CameraPipeline(config, _camera(fps), models=models, state_dir=Path(tmp))
        clock = 0.0  # seconds since the first frame arrived
        last_index = -1
        while True:
            index = int(np.floor(clock * fps + 1e-9))
            if index >= len(frames):
                break
            if index <= last_index:  # nothing new yet: wait for the next frame
                clock = (last_index + 1) / fps
                continue
            dropped += index - last_index - 1
            t0 = time.perf_counter()
            result = pipeline.process(Frame(frames[index], index, EPOCH + index / fps, None))
            elapsed = time.perf_counter() - t0
            busy_s += elapsed
            processed += 1
            budgets.append(result.scan_budget_ms or 0.0)
            _record(record, pipeline, result, index / fps)
            last_index = index
            clock = index / fps + max(elapsed, 0.0)
        pipeline.finish()
    dropped += len(frames) - 1 - last_index  # frames that arrived while the last one was processed
    scheduler = pipeline.scheduler
    figures = {
        "fps": fps,
        "frames": len(frames),
        "processed": processed,
        "dropped": dropped,
        "dropped_share": round(dropped / max(len(frames), 1), 3),
        "mean_frame_ms": round(1000 * busy_s / max(processed, 1), 1),
        "budget_ms_mean": round(float(np.mean(budgets)), 1) if budgets else 0.0,
        "budget_used_share": round(scheduler.budget_used_ms / scheduler.budget_offered_ms, 3)
        if scheduler.budget_offered_ms else 0.0,
        "scans": record.scans,
        "classifier_calls": record.classifier_calls,
    }
    return record, figures
