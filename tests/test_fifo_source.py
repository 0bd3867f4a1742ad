"""Issue 22, item 5: a FIFO given as a camera source is refused at once with one line (exit 2 from
check-config); OpenCV would wait for a writer forever and the pre-flight never returned. A real FIFO."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from edge.errors import SourceError
from test_daemon import REPO, write_config


def test_a_fifo_as_a_source_is_refused_at_once_not_waited_on(tmp_path, shared_dir):
    """Issue 22, 5: OpenCV opening a FIFO waits for a writer forever: the pre-flight hung."""
    import threading

    from edge.sources import open_source

    fifo = tmp_path / "camera.mp4"
    os.mkfifo(fifo)
    outcome: list = []

    def attempt():
        try:
            outcome.append(open_source(str(fifo)))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    if not outcome:  # release OpenCV's wait (a writer that closes at once) so the thread ends
        with open(fifo, "wb"):
            pass
        pytest.fail("open_source waited on the FIFO")
    assert isinstance(outcome[0], SourceError), outcome
    assert str(outcome[0]).startswith(f"{fifo}: ") and "FIFO" in str(outcome[0])

    data = yaml.safe_load(write_config(tmp_path, shared_dir).read_text())
    data["cameras"][0]["source"] = str(fifo)
    config = tmp_path / "fifo.yaml"
    config.write_text(yaml.safe_dump(data))
    result = subprocess.run([sys.executable, "-m", "edge", "check-config", str(config)], capture_output=True,
                            text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2 and "FIFO" in result.stderr and "Traceback" not in result.stderr, \
        result.stderr[-2000:]
