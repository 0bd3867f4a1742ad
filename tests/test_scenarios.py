"""The one CI scenario: a queue at the till rendered from colorful-fashion validation photos,
through CameraPipeline with the shipped models (the full benchmark: scripts/bench_scenarios.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.config import load_config
from edge.pipeline import Models
from edge.scenarios import render
from edge.scenarios.photos import load_people
from edge.scenarios.run import run_scenario
from edge.scenarios.score import score

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
    # Measured (2026-12-02): both dress customers alerted within 0.75 s (p50) of being in full
    # view; one false dress alert, on the woman in black shorts under a coral jacket: a garment
    # detector error (docs/scenarios.md), not identity: her garments are her own.
    assert dress["positives"] == 2 and dress["recall"] == 1.0, dress
    assert dress["alerts"] <= 3 and dress["duplicates"] == 0, dress
    assert dress["time_to_alert_p50_s"] <= 1.0, dress


def test_without_appearance_the_queue_merges_customers(setup):
    # The control: plain IoU hands the next customer the previous one's track.
    config, models, queue = setup
    config = config.model_copy(deep=True)
    config.tracker.appearance = False
    figures = score(queue, run_scenario(queue, config, models), config.analytics.min_dwell_s)
    assert figures["tracks"] < 4 and figures["merged_tracks"] >= 1, figures
