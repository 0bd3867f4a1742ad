"""The one CI scenario: a queue at the till rendered from colorful-fashion validation photos,
through CameraPipeline with the shipped models (the full benchmark: scripts/bench_scenarios.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.pipeline import Models
from scenarios import render
from scenarios.photos import load_people
from scenarios.run import run_scenario
from scenarios.score import score

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(shared_dir):
    config = load_config(REPO / "configs" / "demo.yaml")
    people = load_people(shared_dir / "datasets" / "colorful-fashion", "val")
    # Two people in dresses and two without, by photo id order (not chosen by result).
    dress = [p for p in people if "dress" in p.garments][:2]
    other = [p for p in people if "dress" not in p.garments][:2]
    queue = render.queue([dress[0], other[0], dress[1], other[1]], seed=0)
    return config, Models(config), queue


def test_queue_every_customer_is_counted_once_and_keeps_their_own_garments(setup):
    config, models, queue = setup
    figures = score(queue, run_scenario(queue, config, models), config.analytics.min_dwell_s)
    assert figures["customers"] == 4
    assert figures["tracks"] == 4 and figures["customers_counted"] == 4, figures
    assert figures["id_switches"] == 0 and figures["merged_tracks"] == 0, figures
    assert figures["idf1"] >= 0.85, figures
    dress = figures["rules"]["dress"]
    # Measured (2026-12-03, the round-2 garment detector): the woman in the plain dress is alerted
    # 0.3 s after being in full view; the first customer's dress, under a jacket, scores 0.65 in
    # both detectors on the photo and stays just under the threshold here (stage 2 reached it, and
    # also gave the woman in shorts a false dress). Alert rates are judged over eight queues below.
    assert dress["positives"] == 2 and dress["alerts"] >= 1 and dress["recall"] >= 0.5, dress
    assert dress["alerts"] <= 3 and dress["duplicates"] == 0, dress
    assert dress["time_to_alert_p50_s"] <= 1.0, dress


def test_queues_alert_the_right_customers(setup, shared_dir):
    """Eight queues of four (16 customers in dresses, 16 without, by photo id order: not chosen by
    result): alerts go to customers who wear the garment, each at most once. Measured
    (2026-12-03): round-2 detector dress 10/16, outwear 8/12, no false alert; stage 2 (shipped
    before) dress 9/16, outwear 8/12, 1 false dress."""
    config, models, _ = setup
    people = load_people(shared_dir / "datasets" / "colorful-fashion", "val")
    dress = [p for p in people if "dress" in p.garments]
    other = [p for p in people if "dress" not in p.garments]
    right = {"dress": 0, "outwear": 0}
    positives = dict(right)
    false_alerts = 0
    for k in range(8):
        queue = render.queue([dress[2 * k], other[2 * k], dress[2 * k + 1], other[2 * k + 1]], seed=0)
        figures = score(queue, run_scenario(queue, config, models), config.analytics.min_dwell_s)
        for rule in right:
            r = figures["rules"][rule]
            assert r["duplicates"] == 0, (k, rule, r)
            right[rule] += r["alerted"]
            positives[rule] += r["positives"]
            false_alerts += r["false_alerts"]
    assert positives == {"dress": 16, "outwear": 12}, positives
    assert false_alerts <= 1, (right, false_alerts)
    assert right["dress"] >= 8 and right["outwear"] >= 6, right  # at least half of each


def test_without_appearance_the_queue_merges_customers(setup):
    # The control: plain IoU hands the next customer the previous one's track.
    config, models, queue = setup
    config = config.model_copy(deep=True)
    config.tracker.appearance = False
    figures = score(queue, run_scenario(queue, config, models), config.analytics.min_dwell_s)
    assert figures["tracks"] < 4 and figures["merged_tracks"] >= 1, figures
