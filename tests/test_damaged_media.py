"""Issue 12, defects 2 and 3: damaged video files and corrupt live frames, on real media.

* A copy of the demo clip with 3 x 100 KB overwritten in the middle (what a bad SD card does) and a
  copy cut at 60 % (a copy interrupted): read past the damage, count it, say when a file ended early.
* A real MJPEG HTTP camera (separate process) that sends 15 % garbage JPEG parts: corrupt frames are
  skipped and counted, the stream is not re-opened for each one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import free_port, wait_for_port, write_clip_frames
from edge.config import ReconnectConfig
from edge.sources import open_source
from test_sources import _next_within

CLIP = "media/one-by-one-person-detection.mp4"
CLIP_FRAMES = 1394


def damaged_copy(shared, tmp_path, name="damaged.mp4"):
    """The clip with 3 x 100 KB of random bytes at 30 %, 50 % and 70 % of the file."""
    path = tmp_path / name
    shutil.copy(shared / CLIP, path)
    size = path.stat().st_size
    rng = np.random.default_rng(0)
    with open(path, "r+b") as f:
        for fraction in (0.3, 0.5, 0.7):
            f.seek(int(size * fraction))
            f.write(rng.integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    return path


def truncated_copy(shared, tmp_path, name="truncated.mp4"):
    data = (shared / CLIP).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def test_damaged_stretches_are_skipped_counted_and_the_file_is_read_to_its_end(shared_dir, tmp_path):
    path = damaged_copy(shared_dir, tmp_path)
    with open_source(str(path)) as source:
        frames = [f.index for f in source]
        stats = source.stats
    # before the fix the iteration stopped at the first damaged stretch (frame 410 of 1394)
    assert len(frames) > 1200, stats
    assert stats["frames_expected"] == CLIP_FRAMES
    assert stats["corrupt_frames"] > 0 and stats["ended_early"] is False, stats
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    assert frames[-1] >= CLIP_FRAMES - 20  # the end of the clip was reached
    assert stats["frames_read"] + stats["corrupt_frames"] >= CLIP_FRAMES - 20


def test_truncated_video_says_it_ended_early(shared_dir, tmp_path):
    path = truncated_copy(shared_dir, tmp_path)
    with open_source(str(path)) as source:
        count = sum(1 for _ in source)
        stats = source.stats
    assert 700 < count < 1000
    assert stats["ended_early"] is True and stats["frames_expected"] == CLIP_FRAMES


def test_intact_clip_and_gif_do_not_end_early(shared_dir):
    for name, frames in ((CLIP, CLIP_FRAMES), ("media/people-detection.gif", 23)):
        with open_source(str(shared_dir / name)) as source:
            assert sum(1 for _ in source) == frames
            assert source.stats["ended_early"] is False and source.stats["corrupt_frames"] == 0


GARBAGE_CAMERA = textwrap.dedent(
    """
    import http.server, socketserver, sys, time, pathlib, random
    folder, port, bad = pathlib.Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    frames = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))]

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            rng = random.Random(1)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            i = 0
            while True:
                jpg = frames[i % len(frames)]
                i += 1
                if rng.random() < bad:  # a garbage JPEG part
                    jpg = bytes(rng.getrandbits(8) for _ in range(len(jpg) // 4))
                head = b"--frame\\r\\nContent-Type: image/jpeg\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(jpg)
                self.wfile.write(head + jpg + b"\\r\\n")
                time.sleep(0.04)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    Server(("127.0.0.1", port), Camera).serve_forever()
    """
)


@pytest.fixture
def garbage_camera(shared_dir, tmp_path):
    folder = write_clip_frames(shared_dir, tmp_path / "frames", 20)
    script = tmp_path / "camera.py"
    script.write_text(GARBAGE_CAMERA)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(folder), str(port), "0.15"],
                               stderr=subprocess.DEVNULL)
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}/stream.mjpg"
    process.kill()
    process.wait(timeout=10)


def test_corrupt_live_frames_are_skipped_and_counted_without_reconnecting(garbage_camera):
    states = []
    source = open_source(garbage_camera, reconnect=ReconnectConfig(initial_s=0.1, max_s=0.5),
                         on_status=lambda s: states.append(s["state"]))
    try:
        got = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            _next_within(source, 5)
            got += 1
        stats = source.stats
    finally:
        source.close()
    # before the fix: every garbage part was a failed read -> a reconnect (45 in 90 s), corrupt 0
    assert stats["reconnects"] == 0, stats
    assert stats["corrupt_frames"] >= 5, stats
    assert got >= 40, stats  # ~25 parts/s, 85 % good
    assert "reconnecting" not in states, states
