"""threads: auto (edge/runtime.py resolve_threads): interpreter threads from the cores the process may
use and the load other processes put on them; a real interpreter built with it."""

from __future__ import annotations

import os

import pytest

from edge.config import DetectorConfig
from edge.runtime import TFLiteModel, resolve_threads, usable_cores


@pytest.mark.parametrize("cores,load,expected", [
    (1, 0.0, 1), (2, 0.0, 1), (2, 2.0, 1),  # a 2-core box: the daemon's own work needs the other core
    (4, 0.0, 2), (4, 0.9, 2), (4, 1.5, 1),  # a Pi 5 to itself vs beside Home Assistant / Frigate
    (8, 0.0, 4), (16, 12.0, 2),
])
def test_auto_from_free_cores(cores, load, expected):
    assert resolve_threads("auto", cores=cores, load=load) == expected


def test_a_number_is_kept():
    assert resolve_threads(3, cores=2, load=5.0) == 3


def test_usable_cores_is_the_affinity():
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_interpreter_with_auto_threads(shared_dir):
    model = TFLiteModel(shared_dir / "models" / "coco-yolo" / "yolo11n_full_integer_quant_224.tflite", threads="auto")
    assert isinstance(model.threads, int) and 1 <= model.threads <= 4


def test_config_accepts_auto_and_refuses_other_words():
    assert DetectorConfig(model="m.tflite", threads="auto").threads == "auto"
    assert DetectorConfig(model="m.tflite", threads=2).threads == 2
    for bad in (0, 65, "two", "2x"):
        with pytest.raises(ValueError, match="threads must be a number from 1 to 64 or auto"):
            DetectorConfig(model="m.tflite", threads=bad)
