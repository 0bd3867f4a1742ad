"""Frame sources on real media: the Intel clip, the GIF, a folder of real frames, and a real live
HTTP stream (MJPEG served by a separate process from real frames; killed and restarted mid-stream)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import free_port, wait_for_port, write_clip_frames
from edge.config import ReconnectConfig
from edge.errors import SourceError
from edge.sources import Frame, open_source

CLIP = "media/one-by-one-person-detection.mp4"
GIF = "media/people-detection.gif"


def test_video_file_every_frame_in_source_time(shared_dir):
    before = time.time()
    with open_source(str(shared_dir / CLIP)) as source:
        assert not source.is_live
        assert source.fps == pytest.approx(10.0)
        frames = []
        for frame in source:
            frames.append((frame.index, frame.source_time_s, frame.timestamp, frame.image.shape))
    assert len(frames) == 1394
    assert [f[0] for f in frames] == list(range(1394))
    assert {f[3] for f in frames} == {(432, 768, 3)}
    assert frames[-1][1] == pytest.approx(139.3)
    # timestamps advance with the video (0.1 s per frame), not with decode speed
    assert frames[-1][2] - frames[0][2] == pytest.approx(139.3, abs=1e-3)
    assert before <= frames[0][2] <= time.time()
    stats = source.stats
    assert stats["frames_read"] == stats["frames_delivered"] == 1394
    assert stats["corrupt_frames"] == stats["frames_dropped"] == 0
    assert stats["state"] == "ended"


def test_fps_cap_decimates_by_source_time(shared_dir):
    with open_source(str(shared_dir / CLIP), fps_cap=5) as source:
        frames = [f for _, f in zip(range(50), source)]
        stats = source.stats
    assert [f.index for f in frames] == list(range(0, 100, 2))
    assert np.diff([f.source_time_s for f in frames]) == pytest.approx([0.2] * 49)
    assert stats["frames_delivered"] == 50
    assert stats["frames_skipped"] == 49  # the odd frames before the 50th kept one
    assert stats["frames_dropped"] == 0


def test_gif_frames_and_loop(shared_dir):
    with open_source(str(shared_dir / GIF)) as source:
        frames = list(source)
    assert len(frames) == 23
    assert frames[0].image.shape == (270, 480, 3)
    assert [f.index for f in frames] == list(range(23))

    with open_source(str(shared_dir / GIF), loop=True) as source:
        looped = [f for _, f in zip(range(50), source)]
    assert [f.index for f in looped] == list(range(23)) * 2 + [0, 1, 2, 3]
    assert looped[23].source_time_s == 0.0
    # timestamps keep increasing across the loop
    assert np.all(np.diff([f.timestamp for f in looped]) > 0)
    assert np.array_equal(looped[23].image, looped[0].image)


def test_image_folder_skips_corrupt_and_foreign_files(shared_dir, tmp_path):
    capture = cv2.VideoCapture(str(shared_dir / CLIP))
    originals = []
    for i in range(40):
        ok, image = capture.read()
        assert ok
        if i % 10 == 0:
            originals.append(image)
    capture.release()
    for n, image in enumerate(originals):
        cv2.imwrite(str(tmp_path / f"frame_{n * 2:03d}.jpg"), image)
    (tmp_path / "frame_001.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG body")  # corrupt
    (tmp_path / "notes.txt").write_text("not an image")  # ignored
    (tmp_path / "sub").mkdir()  # ignored

    with open_source(str(tmp_path)) as source:
        frames = list(source)
        stats = source.stats
    # files sorted: frame_000, frame_001 (corrupt), frame_002, frame_004, frame_006
    assert [f.index for f in frames] == [0, 2, 3, 4]
    assert stats["corrupt_frames"] == 1
    assert stats["frames_read"] == 4
    for frame, original in zip(frames, originals):
        assert frame.image.shape == original.shape
        assert np.abs(frame.image.astype(int) - original.astype(int)).mean() < 4  # JPEG round trip


def test_close_from_another_thread_stops_a_file_source(shared_dir):
    source = open_source(str(shared_dir / CLIP), loop=True)
    got = []

    def consume():
        for frame in source:
            got.append(frame.index)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.3)
    source.close()  # what the daemon does on SIGTERM
    consumer.join(5)
    assert not consumer.is_alive()
    assert len(got) > 10 and source.stats["state"] == "ended"


def test_bad_files_raise_source_error_naming_the_file(tmp_path, shared_dir):
    with pytest.raises(SourceError, match=r"missing\.mp4: cannot open video"):
        open_source(str(tmp_path / "missing.mp4"))
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is text, not a video")
    with pytest.raises(SourceError, match=r"fake\.mp4: cannot open video"):
        open_source(str(fake))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(SourceError, match=r"empty: no frames"):
        open_source(str(empty))
    with pytest.raises(SourceError, match="fps_cap"):
        open_source(str(shared_dir / CLIP), fps_cap=0)


# ------------------------------------------------------------------------------------ live stream

# A stand-alone MJPEG camera: serves the JPGs of a folder as multipart/x-mixed-replace at 20 fps.
MJPEG_SERVER = textwrap.dedent(
    """
    import http.server, socketserver, sys, time, pathlib
    folder, port = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    frames = [p.read_bytes() for p in sorted(folder.glob("*.jpg"))]

    class Camera(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            i = 0
            while True:
                jpg = frames[i % len(frames)]
                i += 1
                head = b"--frame\\r\\nContent-Type: image/jpeg\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(jpg)
                self.wfile.write(head + jpg + b"\\r\\n")
                time.sleep(0.05)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    Server(("127.0.0.1", port), Camera).serve_forever()
    """
)


class MJPEGCamera:
    def __init__(self, folder, port):
        self.folder, self.port = folder, port
        self.process = None

    def start(self):
        script = self.folder / "server.py"
        script.write_text(MJPEG_SERVER)
        self.process = subprocess.Popen([sys.executable, str(script), str(self.folder), str(self.port)])
        wait_for_port(self.port)

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def mjpeg_camera(shared_dir, tmp_path):
    camera = MJPEGCamera(write_clip_frames(shared_dir, tmp_path, 30), free_port())
    camera.start()
    yield camera
    if camera.process.poll() is None:
        camera.kill()


def _next_within(source, timeout_s: float) -> Frame:
    """next(source) in a helper thread so a hang fails the test instead of blocking it."""
    result = []
    thread = threading.Thread(target=lambda: result.append(next(source)), daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert result, f"no frame within {timeout_s}s (stats {source.stats})"
    return result[0]


def test_live_stream_reconnects_after_the_server_dies(mjpeg_camera):
    states = []
    url = f"http://127.0.0.1:{mjpeg_camera.port}/stream.mjpg"
    source = open_source(url, reconnect=ReconnectConfig(initial_s=0.1, max_s=0.4), on_status=lambda s: states.append(dict(s)))
    try:
        assert source.is_live and source.state == "streaming"
        first = [_next_within(source, 5) for _ in range(5)]
        assert all(f.image.shape == (432, 768, 3) and f.source_time_s is None for f in first)
        assert np.all(np.diff([f.index for f in first]) >= 1)
        assert abs(first[-1].timestamp - time.time()) < 2

        mjpeg_camera.kill()
        deadline = time.monotonic() + 10
        while source.state != "reconnecting" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.state == "reconnecting"
        time.sleep(1.0)  # several failed re-opens with back-off while the camera is away

        mjpeg_camera.start()
        # old frames may still be in the slot; the stream must come back within the back-off ceiling
        deadline = time.monotonic() + 10
        while source.state != "streaming" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.state == "streaming"
        later = [_next_within(source, 5) for _ in range(5)]
        assert later[-1].index > first[-1].index
        stats = source.stats
        assert stats["reconnects"] == 1
        assert [s["state"] for s in states] == ["reconnecting", "streaming"]
    finally:
        source.close()
    assert source.stats["state"] == "ended"
    with pytest.raises(StopIteration):
        next(source)


def test_live_keeps_only_the_newest_frame_and_caps_rate(mjpeg_camera):
    url = f"http://127.0.0.1:{mjpeg_camera.port}/stream.mjpg"
    with open_source(url) as source:
        _next_within(source, 5)
        time.sleep(1.0)  # a slow consumer: ~20 frames arrive, only the newest is kept
        frame = _next_within(source, 5)
        assert time.time() - frame.timestamp < 0.3  # fresh, not a 1 s old backlog
        assert source.stats["frames_dropped"] >= 10

    with open_source(url, fps_cap=4) as source:
        start = time.monotonic()
        frames = [_next_within(source, 5) for _ in range(9)]
        elapsed = time.monotonic() - start
        stats = source.stats
    assert elapsed == pytest.approx(2.0, abs=0.5)  # 8 intervals of 1/4 s
    assert stats["frames_skipped"] >= 20  # the stream runs at 20 fps
    assert len({f.index for f in frames}) == 9


def test_live_source_that_never_connects_keeps_trying_until_closed():
    url = f"http://127.0.0.1:{free_port()}/nothing.mjpg"
    states = []
    source = open_source(url, reconnect=ReconnectConfig(initial_s=0.05, max_s=0.1), on_status=states.append)
    assert source.state == "reconnecting"
    got = []
    consumer = threading.Thread(target=lambda: got.extend(source), daemon=True)
    consumer.start()
    time.sleep(0.5)
    assert consumer.is_alive()  # a live iterator does not end by itself
    source.close()
    consumer.join(5)
    assert not consumer.is_alive() and got == []
    assert source.stats["reconnects"] == 0
    assert [s["state"] for s in states] == ["ended"]


def test_http_video_file_is_live_and_reopened_after_its_end(shared_dir):
    """The real mp4 over plain HTTP (python -m http.server). Killing the server is noticed once the
    frames already buffered are decoded; the end of an http source is a dropped stream for a live
    source, and it is re-opened once the server is back."""
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
               "--directory", str(shared_dir / "media")]

    def serve():
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(port)
        return process

    server = serve()
    source = open_source(f"http://127.0.0.1:{port}/one-by-one-person-detection.mp4",
                         reconnect=ReconnectConfig(initial_s=0.1, max_s=0.2))
    try:
        assert source.is_live and source.fps == pytest.approx(10.0)
        frame = _next_within(source, 5)
        assert frame.image.shape == (432, 768, 3) and frame.source_time_s is None
        server.kill()
        server.wait(10)
        deadline = time.monotonic() + 20
        while source.state != "reconnecting" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.state == "reconnecting"
        read_before = source.stats["frames_read"]
        assert 1 < read_before <= 1394  # what was buffered before the kill, at most the whole clip
        server = serve()
        deadline = time.monotonic() + 10
        while source.stats["frames_read"] == read_before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.stats["reconnects"] >= 1
        assert _next_within(source, 5).index > frame.index
    finally:
        source.close()
        server.kill()
        server.wait(10)


@pytest.mark.parametrize("uri", ["rtsp://127.0.0.1:{port}/x", "9"], ids=["closed-rtsp-port", "no-such-camera-index"])
def test_live_source_that_never_streams_gives_up_after_first_frame_timeout(uri, capfd):
    """`--source 0` without a camera / an unreachable URL: one SourceError line after the bound, not forever."""
    uri = uri.format(port=free_port())
    states = []
    started = time.monotonic()
    source = open_source(uri, reconnect=ReconnectConfig(initial_s=0.2, max_s=1, first_frame_timeout_s=1.5),
                         on_status=states.append)
    try:
        raised = _next_or_error(source, 10)
    finally:
        source.close()
    elapsed = time.monotonic() - started
    assert isinstance(raised, SourceError), raised
    assert 1.4 <= elapsed < 5, elapsed
    message = str(raised)
    assert uri in message and "no frame received in 1.5 s" in message and "\n" not in message
    assert "failed" in [s["state"] for s in states]
    noise = capfd.readouterr().err
    assert "[ WARN" not in noise and "OpenCV" not in noise and "[ERROR" not in noise, noise


def _next_or_error(source, timeout_s: float):
    result = []

    def take():
        try:
            result.append(next(source))
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            result.append(exc)

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return result[0] if result else None


def test_a_stream_that_worked_once_keeps_reconnecting_past_the_first_frame_timeout(mjpeg_camera):
    url = f"http://127.0.0.1:{mjpeg_camera.port}/stream.mjpg"
    source = open_source(url, reconnect=ReconnectConfig(initial_s=0.1, max_s=0.3, first_frame_timeout_s=0.5))
    try:
        _next_within(source, 5)
        mjpeg_camera.kill()
        time.sleep(2.5)  # well past first_frame_timeout_s while the camera is away
        assert source.state == "reconnecting" and source.failure is None
        mjpeg_camera.start()
        frame = _next_or_error(source, 10)
        assert isinstance(frame, Frame), frame  # back, never given up
    finally:
        source.close()
