"""Model memory (edge/runtime.py release_model_file_pages, issue 26): once XNNPACK has packed a model's
weights, the runtime's map of the model file is handed back to the kernel, and the model still gives
the same answers as one that keeps it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.runtime import TFLiteModel, _interpreter_class, release_model_file_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")


def mapped_file_rss_bytes(path: Path) -> int:
    """Resident bytes of this process's maps of ``path`` (from /proc/self/smaps)."""
    real, resident, current = os.path.realpath(path), 0, None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split(maxsplit=5)
            if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                current = fields[5].strip() if len(fields) == 6 else ""
            elif fields[0] == "Rss:" and current == real:
                resident += int(fields[1]) * 1024
    return resident


def frame_as_input(shared_dir: Path, shape, dtype) -> np.ndarray:
    """The demo clip's 60th frame (a person in view) resized to the model's input."""
    capture = cv2.VideoCapture(str(shared_dir / "media" / "one-by-one-person-detection.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, image = capture.read()
    capture.release()
    assert ok
    resized = cv2.resize(image, (shape[2], shape[1]), interpolation=cv2.INTER_AREA)[None]
    if dtype == np.int8:
        return (resized.astype(np.int16) - 128).astype(np.int8)
    return resized.astype(dtype)


@pytest.mark.parametrize("name", ["garment-detector.tflite", "garment-classifier.tflite"])
def test_model_file_pages_are_released_and_answers_do_not_change(name, repo_dir, shared_dir):
    path = repo_dir / "models" / name
    size = path.stat().st_size

    # The same model built the runtime's own way keeps the file's pages resident; its answers on a
    # real frame, taken before anything is released, are the reference.
    kept = _interpreter_class()(model_path=str(path), num_threads=1)
    kept.allocate_tensors()
    assert mapped_file_rss_bytes(path) > 0.8 * size
    detail = kept.get_input_details()[0]
    tensor = frame_as_input(shared_dir, detail["shape"], detail["dtype"])
    kept.set_tensor(detail["index"], tensor)
    kept.invoke()
    reference = [kept.get_tensor(o["index"]).copy() for o in kept.get_output_details()]

    model = TFLiteModel(path, threads=1)
    assert model.released_file_bytes >= size  # whole pages, so at least the file
    # Every map of the file was released (``kept``'s as well: release goes by the file's path).
    assert mapped_file_rss_bytes(path) < 0.05 * size

    answers = model.run(tensor)
    assert len(answers) == len(reference)
    for answer, expected in zip(answers, reference):
        np.testing.assert_array_equal(answer, expected)
    # Running reads the packed weights, not the file: it stays (nearly) out of memory.
    assert mapped_file_rss_bytes(path) < 0.1 * size


def test_a_file_that_is_not_mapped_releases_nothing(tmp_path):
    other = tmp_path / "not-a-model.tflite"
    other.write_bytes(b"\0" * 8192)
    assert release_model_file_pages(other) == 0
