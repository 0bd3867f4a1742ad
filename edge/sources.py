"""Frame sources: one iterator of ``Frame`` for cameras, streams, video/GIF files and image folders.

``open_source(uri, fps_cap, loop, reconnect)`` picks the kind from the URI:

* ``"0"``, ``"1"`` ... : a USB/V4L2 camera index                      -> live
* ``rtsp://``, ``http://``, ``https://`` ... (anything with ``://``)  -> live
* a folder                                                            -> its image files, sorted by name
* an image file (.jpg, .png ...)                                      -> a one-image source
* any other file (mp4, avi, mkv, GIF ...) read by OpenCV              -> file

File sources (video, GIF, folder) hand out every frame as fast as the consumer asks; time is
*source* time: ``timestamp = wall time at open + seconds into the source``, so analytics windows
progress with the video, not with how fast it is processed. ``index`` is the position in the
file/folder. With ``loop=True`` the source restarts at its end: ``index`` and ``source_time_s``
restart at 0 while ``timestamp`` keeps increasing (the loops are laid end to end).
``fps_cap`` decimates by source time (a 10 fps file capped at 5 gives every 2nd frame); the frames
left out are counted in ``stats['frames_skipped']``.

Live sources (camera, URL) run a grabber thread that reads continuously and keeps only the newest
frame, so a slow pipeline processes fresh frames instead of building latency; a frame overwritten
before the consumer took it counts in ``frames_dropped`` (or ``frames_skipped`` while the consumer
waits for ``fps_cap``). When the stream fails (open or read), the state becomes ``reconnecting``
and the grabber re-opens it with exponential back-off (``reconnect.initial_s`` doubling up to
``reconnect.max_s``); the iterator never ends until ``close()``. An http URL to a video file is
live too: its end is treated like a dropped stream and it is re-opened. A live source that has
*never* delivered a frame (no camera at that index, a wrong or unreachable URL) gives up after
``reconnect.first_frame_timeout_s``: the state becomes ``failed`` and the iterator raises one
``SourceError`` line (the daemon exits 1); one that streamed once reconnects forever.

The grabber thread is supervised: an exception that escapes it (a decoder that raises instead of
failing the read, a bug) is logged with its traceback and the grabber is restarted once, through
the reconnect path; a second death ends the source like a failed one (state ``failed``, the
iterator raises ``SourceError``, the daemon exits 1) instead of leaving a source that says
``streaming`` and never delivers again. ``health()`` says whether the grabber is alive and made
progress recently (the daemon feeds the systemd watchdog only while it does).

Corrupt frames (unreadable image, empty or wrongly shaped frame) are skipped with a warning and
counted in ``corrupt_frames``; they never end the iteration. On a live source a failed read (a
garbage JPEG part of an MJPEG stream) is a corrupt frame too: the stream is re-opened only after
``MAX_FAILED_READS_LIVE`` failed reads in a row or ``STREAM_READ_TIMEOUT_S`` without a frame.

A video file is read to the end its container declares (``stats['frames_expected']``): a failed read
before it is a damaged stretch, read past and counted in ``corrupt_frames``; when nothing decodes any
more before the declared end, the file ended early: ``stats['ended_early']`` is True and a warning
names the frame (the daemon turns it into exit code 4).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from .config import ReconnectConfig, is_live_uri
from .errors import SourceError

log = logging.getLogger(__name__)

# libav prints several error lines per bad packet (hundreds for one damaged stretch, a few per
# garbage MJPEG part); the sources report the same faults as counted warnings instead. Only fatal
# libav messages are kept; set OPENCV_FFMPEG_LOGLEVEL (e.g. 16 or 24) to see the rest.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
# OpenCV's own warnings (a multi-line "can't open camera by index" / "raised OpenCV exception" per
# attempt) repeat what the source logs once in plain words; set OPENCV_LOG_LEVEL to see them.
if "OPENCV_LOG_LEVEL" not in os.environ:
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)
    except AttributeError:  # an OpenCV build without the logging module
        pass

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
# A folder of images has no frame rate of its own: each image counts as this many frames per second
# of source time (so timestamps of a folder advance 1 s per image).
IMAGE_FOLDER_FPS = 1.0
# Used when a video file does not declare its frame rate.
DEFAULT_VIDEO_FPS = 25.0
# Network streams: give up on a connect or a stalled read after this long (then reconnect).
STREAM_OPEN_TIMEOUT_S = 10.0
STREAM_READ_TIMEOUT_S = 10.0
# close(): wait at most this long for the grabber thread (it may be inside a read of a dead stream).
CLOSE_WAIT_S = 3.0
# Live: a grabber thread that dies is restarted this many times; the next death fails the source.
MAX_GRABBER_RESTARTS = 1
# Live: a grabber that has not finished a read, an open or a back-off wait for this long (beyond the
# back-off ceiling) is wedged: health() says so and the daemon stops feeding the watchdog.
GRABBER_STALL_S = 30.0
# Live: this many corrupt frames in a row are treated like a dropped stream.
MAX_CORRUPT_IN_A_ROW = 50
# Live: this many failed reads in a row (no frame decoded in between) are a dropped stream; fewer
# are corrupt frames (a garbage JPEG part of an MJPEG stream fails one read) and are skipped.
MAX_FAILED_READS_LIVE = 25
# Files: a damaged stretch fails a few dozen reads before decoding resumes (3 x 100 KB overwritten
# in the 3.3 MB demo clip: runs of 40-54); this many in a row before the declared end: the file
# ended early (truncated). Failed reads are fast (about 1 ms), so this bounds the look-ahead.
MAX_FAILED_READS_IN_A_ROW = 300

StatusCallback = Callable[[dict], None]


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR, uint8, HxWx3
    index: int  # position in the file/folder; grab sequence number for live sources
    timestamp: float  # epoch seconds (source time for files, capture time for live)
    source_time_s: float | None  # seconds into the file; None for live sources


def _valid_image(image) -> bool:
    return (
        isinstance(image, np.ndarray)
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
        and image.dtype == np.uint8
    )


class FrameSource:
    """Iterator of ``Frame``; use as a context manager or call ``close()``."""

    is_live: bool = False

    def __init__(self, uri: str, fps: float, on_status: StatusCallback | None = None):
        self.uri = uri
        self.fps = fps  # nominal frames per second of the source
        self.on_status = on_status
        self._lock = threading.Lock()
        self._stats = {
            "frames_read": 0,  # frames decoded from the source (valid ones)
            "frames_delivered": 0,  # frames handed to the consumer
            "frames_skipped": 0,  # left out on purpose by fps_cap
            "frames_dropped": 0,  # live: overwritten before the consumer took them
            "corrupt_frames": 0,
            "reconnects": 0,  # live: times the stream was re-opened after a failure
            "state": "streaming",  # 'streaming' | 'reconnecting' | 'ended' | 'failed' (live, never streamed)
        }

    @property
    def stats(self) -> dict:
        """A snapshot of the counters and the state (safe to read from any thread)."""
        with self._lock:
            return dict(self._stats)

    @property
    def state(self) -> str:
        with self._lock:
            return self._stats["state"]

    def _count(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._stats[key] += amount

    def _set_state(self, state: str) -> None:
        with self._lock:
            if self._stats["state"] == state:
                return
            self._stats["state"] = state
            snapshot = dict(self._stats)
        log.info("source %s: %s", self.uri, state)
        if self.on_status is not None:
            try:
                self.on_status(snapshot)
            except Exception:  # a status publisher must never stop the video
                log.exception("on_status callback failed for %s", self.uri)

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        raise NotImplementedError

    def close(self) -> None:
        self._set_state("ended")

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------------- files


class _VideoReader:
    """Sequential frames of a video/GIF file through OpenCV; ``read()`` -> image, None (corrupt) or EOF.

    A failed read is not end-of-file: a damaged stretch (overwritten bytes) makes OpenCV fail a
    few dozen reads and then decode again. After a failed read before the container's declared end
    the reader reads on, up to ``MAX_FAILED_READS_IN_A_ROW`` times; the failed reads of a stretch
    that is followed by a good frame are reported in ``skipped`` (the caller counts them as corrupt
    frames). When no frame comes back, the file ended before its end: ``ended_early`` is True and
    ``read()`` returns EOF.
    """

    EOF = object()

    def __init__(self, path: Path):
        self.path = path
        self.capture = self._open()
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else DEFAULT_VIDEO_FPS
        count = self.capture.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frames_expected = int(count) if count and np.isfinite(count) and count > 0 else None
        self._reset_pass()

    def _reset_pass(self) -> None:
        self.good = 0  # frames decoded in this pass
        self.skipped = 0  # failed reads before the frame just returned (a damaged stretch)
        self.ended_early = False
        self._last_msec = 0.0

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture = cv2.VideoCapture(str(self.path))  # any other backend that knows the format
        if not capture.isOpened():
            raise SourceError("cannot open video (not a video OpenCV can read)", path=self.path)
        return capture

    def _at_declared_end(self) -> bool:
        """Every declared frame was decoded, or the last decoded frame's time is at the end."""
        expected = self.frames_expected
        if expected is None:
            return True  # nothing to compare with: a failed read is the end
        # Some containers only estimate their frame count (from duration x fps): 1 % (at least 2
        # frames) of slack, so an intact file is never reported as ended early.
        slack = max(2.0, 0.01 * expected)
        if self.good >= expected - slack:
            return True
        last_index = self._last_msec * self.fps / 1000.0
        return last_index >= expected - slack

    def read(self):
        self.skipped = 0
        failed = 0
        while True:
            ok, image = self.capture.read()
            if ok:
                self.good += 1
                msec = self.capture.get(cv2.CAP_PROP_POS_MSEC)
                if msec and np.isfinite(msec):
                    self._last_msec = max(self._last_msec, float(msec))
                self.skipped = failed
                return image if _valid_image(image) else None
            if failed == 0 and self._at_declared_end():
                return self.EOF
            failed += 1
            if failed >= MAX_FAILED_READS_IN_A_ROW:
                self.ended_early = not self._at_declared_end()
                return self.EOF

    def rewind(self) -> None:
        self.capture.release()
        self.capture = self._open()
        self._reset_pass()

    def close(self) -> None:
        self.capture.release()


class _ImageFolderReader:
    """Sorted image files of a folder (or one image file); unreadable files read as None."""

    EOF = _VideoReader.EOF

    def __init__(self, path: Path):
        self.path = path
        if path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise SourceError("no frames (the folder holds no image files)", path=path)
        else:
            self.files = [path]
        self.fps = IMAGE_FOLDER_FPS
        self.position = 0

    def read(self):
        if self.position >= len(self.files):
            return self.EOF
        file = self.files[self.position]
        self.position += 1
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if not _valid_image(image):
            log.warning("%s: unreadable image, skipped", file)
            return None
        return image

    def rewind(self) -> None:
        self.position = 0

    def close(self) -> None:
        pass


def _special_file_kind(path: Path) -> str | None:
    """'FIFO' / 'socket' for what a file source must never open, else None."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "socket"
    return None


class FileSource(FrameSource):
    """A video file, GIF, image folder or single image; frames in source time."""

    is_live = False

    def __init__(self, path: Path, fps_cap: float | None = None, loop: bool = False,
                 on_status: StatusCallback | None = None):
        if not path.exists():
            raise SourceError("cannot open video (file not found)", path=path)
        kind = _special_file_kind(path)
        if kind is not None:  # OpenCV would wait forever for a FIFO's writer (and block the pre-flight)
            raise SourceError(f"cannot open video (a {kind}, not a file: give a video file, an image folder, "
                              "a camera index or a stream URL)", path=path)
        is_images = path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES
        self._reader = _ImageFolderReader(path) if is_images else _VideoReader(path)
        super().__init__(str(path), self._reader.fps, on_status)
        if not is_images:
            # A video that opens but yields nothing (truncated, audio only) is an input error, not an empty run.
            first = self._reader.read()
            if first is _VideoReader.EOF:
                self._reader.close()
                raise SourceError("no frames (the video holds no readable frame)", path=path)
            self._pending = first
            self._pending_skipped = self._reader.skipped
            with self._lock:
                self._stats["frames_expected"] = self._reader.frames_expected  # the container's count
        else:
            self._pending = _VideoReader.EOF  # nothing read ahead
            self._pending_skipped = 0
        with self._lock:
            self._stats["ended_early"] = False  # a video ended before its declared end (damaged)
        self.fps_cap = fps_cap
        self.loop = loop
        self._start_wall = time.time()
        self._position = 0  # index of the next frame in the file
        self._loop_offset_s = 0.0  # source seconds of the completed loops
        self._frames_this_pass = 0
        self._last_bucket = -1  # fps_cap decimation: last 1/fps_cap slot handed out
        self._closed = False
        # close() may come from another thread (daemon shutdown): never release the capture mid-read.
        self._read_lock = threading.Lock()

    def _next_raw(self):
        """(image | None | EOF, failed reads skipped just before it)."""
        if self._pending is not _VideoReader.EOF:
            image, self._pending = self._pending, _VideoReader.EOF
            return image, self._pending_skipped
        image = self._reader.read()
        return image, getattr(self._reader, "skipped", 0)

    def _note_damage(self, skipped: int) -> None:
        """A damaged stretch was read past: its failed reads are corrupt frames (and positions)."""
        self._count("corrupt_frames", skipped)
        self._position += skipped
        log.warning("%s: %d unreadable frame(s) skipped before frame %d (damaged video)",
                    self.uri, skipped, self._position)

    def _note_early_end(self) -> None:
        expected = getattr(self._reader, "frames_expected", None)
        with self._lock:
            self._stats["ended_early"] = True
            corrupt = self._stats["corrupt_frames"]
        log.warning("%s: video ended at frame %d of %s declared by the container (damaged or truncated "
                    "file; %d unreadable frame(s) skipped before)", self.uri, self._position, expected, corrupt)

    def __next__(self) -> Frame:
        with self._read_lock:
            return self._next_frame()

    def _next_frame(self) -> Frame:
        while not self._closed:
            image, skipped = self._next_raw()
            if image is _VideoReader.EOF:
                if getattr(self._reader, "ended_early", False):
                    self._note_early_end()
                if self.loop and self._frames_this_pass > 0:
                    self._loop_offset_s += self._position / self.fps
                    self._position = 0
                    self._frames_this_pass = 0
                    self._reader.rewind()
                    continue
                self._close_reader()
                break
            if skipped:
                self._note_damage(skipped)
            index = self._position
            self._position += 1
            if image is None:
                self._count("corrupt_frames")
                continue
            self._count("frames_read")
            self._frames_this_pass += 1
            source_time_s = index / self.fps
            elapsed_s = self._loop_offset_s + source_time_s
            if self.fps_cap is not None and self.fps_cap < self.fps:
                bucket = int(np.floor(elapsed_s * self.fps_cap + 1e-6))
                if bucket <= self._last_bucket:
                    self._count("frames_skipped")
                    continue
                self._last_bucket = bucket
            self._count("frames_delivered")
            return Frame(image, index, self._start_wall + elapsed_s, source_time_s)
        raise StopIteration

    def _close_reader(self) -> None:
        if not self._closed:
            self._closed = True
            self._reader.close()
        super().close()

    def close(self) -> None:
        """Thread-safe: waits for a read in progress, then the iterator stops."""
        with self._read_lock:
            self._close_reader()


# ------------------------------------------------------------------------------------------ live


class LiveSource(FrameSource):
    """A camera index or a network stream, read by a grabber thread that keeps only the newest frame."""

    is_live = True

    def __init__(self, uri: str, fps_cap: float | None = None, reconnect: ReconnectConfig | None = None,
                 on_status: StatusCallback | None = None):
        super().__init__(uri, DEFAULT_VIDEO_FPS, on_status)
        self.fps_cap = fps_cap
        self.reconnect = reconnect or ReconnectConfig()
        self._closed = threading.Event()
        self._newest = threading.Condition(self._lock)  # guards _slot; shares the stats lock
        self._slot: Frame | None = None
        self._consumer_capped = False  # consumer is waiting for fps_cap: overwrites are skips
        self._next_due = 0.0
        self._sequence = 0
        self._opened_at = time.monotonic()
        self._ever_streamed = False
        self._attempts = 0  # opens tried
        self.failure: str | None = None  # set when a source that never streamed gives up (or the grabber died twice)
        self.grabber_restarts = 0
        self._beat = time.monotonic()  # the grabber's last sign of progress (health())
        # The first open happens here so a working source is streaming as soon as it is returned;
        # a failing one starts in 'reconnecting' and the grabber keeps trying (a camera that is off at
        # boot must not stop the daemon at once) for up to reconnect.first_frame_timeout_s.
        capture = self._open()
        if capture is None:
            self._stats["state"] = "reconnecting"
        else:
            fps = capture.get(cv2.CAP_PROP_FPS)
            if fps and np.isfinite(fps) and 0 < fps < 1000:
                self.fps = float(fps)
        self._thread = self._start_grabber(capture)

    def _start_grabber(self, capture: cv2.VideoCapture | None) -> threading.Thread:
        thread = threading.Thread(target=self._grab_main, args=(capture,), name=f"grab {self.uri}", daemon=True)
        thread.start()
        return thread

    def _grab_main(self, capture: cv2.VideoCapture | None) -> None:
        """The grabber thread: ``_grab_loop`` under supervision (restart once, then fail the source)."""
        try:
            self._grab_loop(capture)
        except BaseException as exc:  # noqa: BLE001 - whatever ends the thread must be seen
            if self._closed.is_set():
                return
            kind = type(exc)
            name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
            reason = f"{name}: {exc}"
            if self.grabber_restarts < MAX_GRABBER_RESTARTS:
                self.grabber_restarts += 1
                log.error("source %s: frame grabber died (%s); restarting it (%d of %d)", self.uri, reason,
                          self.grabber_restarts, MAX_GRABBER_RESTARTS, exc_info=exc)
                self._beat = time.monotonic()
                self._set_state("reconnecting")
                self._thread = self._start_grabber(None)  # opens the stream again, with back-off
                return
            log.error("source %s: frame grabber died again (%s); giving up on this camera", self.uri, reason,
                      exc_info=exc)
            what = f"camera index {self.uri}" if self.uri.isdigit() else self.uri
            self.failure = (f"{what}: frame grabber died {self.grabber_restarts + 1} times ({reason}); "
                            "the source is closed")
            with self._newest:
                self._newest.notify_all()
            self._set_state("failed")

    def health(self) -> str | None:
        """None while the grabber is alive and making progress (or the source is closed); otherwise
        what is wrong, in words (a failed source: its reason is what the iterator raises)."""
        if self._closed.is_set():
            return None
        if self.failure is not None:  # the iterator raises it; the camera's exit line gives the reason
            return f"source {self.uri}: failed"
        if not self._thread.is_alive():
            return f"source {self.uri}: frame grabber is not running"
        idle = time.monotonic() - self._beat
        if idle > self.reconnect.max_s + GRABBER_STALL_S:
            return f"source {self.uri}: frame grabber made no progress for {idle:.0f} s (stuck in a read?)"
        return None

    def _open(self) -> cv2.VideoCapture | None:
        if self.uri.isdigit():
            capture = cv2.VideoCapture(int(self.uri))
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(STREAM_OPEN_TIMEOUT_S * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(STREAM_READ_TIMEOUT_S * 1000),
            ]
            capture = cv2.VideoCapture(self.uri, cv2.CAP_FFMPEG, params)
        self._attempts += 1
        if capture.isOpened():
            return capture
        capture.release()
        if self._ever_streamed or self._attempts == 1:
            limit = self.reconnect.first_frame_timeout_s
            retry = "retrying" if self._ever_streamed or limit is None else f"retrying for up to {limit:g} s"
            log.warning("source %s: cannot open; %s", self.uri, retry)
        else:  # the same warning on every attempt of a source that never streamed adds nothing
            log.debug("source %s: cannot open (attempt %d)", self.uri, self._attempts)
        return None

    def _grab_loop(self, capture: cv2.VideoCapture | None) -> None:
        backoff_s = self.reconnect.initial_s
        corrupt_in_a_row = 0
        failed_in_a_row = 0
        first_failure = 0.0
        try:
            while not self._closed.is_set():
                self._beat = time.monotonic()
                if capture is None:
                    if self._give_up_never_streamed():
                        break
                    if self._closed.wait(self._wait_before_retry(backoff_s)):
                        break
                    if self._give_up_never_streamed():
                        break
                    backoff_s = min(backoff_s * 2, self.reconnect.max_s)
                    self._beat = time.monotonic()
                    capture = self._open()
                    if capture is None:
                        continue
                    self._count("reconnects")
                    corrupt_in_a_row = 0
                    failed_in_a_row = 0
                ok, image = capture.read()
                if not ok:
                    # One failed read is a corrupt frame (a garbage JPEG part): read on. Only a run of
                    # failures with no frame in between is a dropped stream.
                    if failed_in_a_row == 0:
                        first_failure = time.monotonic()
                    failed_in_a_row += 1
                    stalled = time.monotonic() - first_failure >= STREAM_READ_TIMEOUT_S  # a read that timed out
                    if failed_in_a_row < MAX_FAILED_READS_LIVE and not stalled:
                        continue
                    log.warning("source %s: %d reads failed in a row, reconnecting", self.uri, failed_in_a_row)
                    failed_in_a_row = 0
                    capture.release()
                    capture = None
                    self._set_state("reconnecting")
                    continue
                if failed_in_a_row:  # the stream goes on: those reads were corrupt frames
                    self._count("corrupt_frames", failed_in_a_row)
                    failed_in_a_row = 0
                if not _valid_image(image):
                    self._count("corrupt_frames")
                    corrupt_in_a_row += 1
                    if corrupt_in_a_row >= MAX_CORRUPT_IN_A_ROW:
                        capture.release()
                        capture = None
                        self._set_state("reconnecting")
                    continue
                corrupt_in_a_row = 0
                backoff_s = self.reconnect.initial_s
                self._ever_streamed = True
                self._publish(image)
                self._set_state("streaming")
        finally:
            if capture is not None:
                capture.release()

    def _wait_before_retry(self, backoff_s: float) -> float:
        """The back-off, cut short so that a source that never streamed gives up on time."""
        limit = self.reconnect.first_frame_timeout_s
        if self._ever_streamed or limit is None:
            return backoff_s
        return max(0.0, min(backoff_s, self._opened_at + limit - time.monotonic()))

    def _give_up_never_streamed(self) -> bool:
        """True (state 'failed', ``failure`` set) once a source that never gave a frame ran out of time."""
        limit = self.reconnect.first_frame_timeout_s
        if self._ever_streamed or limit is None or time.monotonic() - self._opened_at < limit:
            return False
        what = f"camera index {self.uri}" if self.uri.isdigit() else self.uri
        self.failure = (f"{what}: no frame received in {limit:g} s ({self._attempts} attempt(s) to open it); "
                        "check the device or URL (or raise reconnect.first_frame_timeout_s)")
        with self._newest:
            self._newest.notify_all()
        self._set_state("failed")
        return True

    def _publish(self, image: np.ndarray) -> None:
        with self._newest:
            if self._slot is not None:
                self._stats["frames_skipped" if self._consumer_capped else "frames_dropped"] += 1
            self._slot = Frame(image, self._sequence, time.time(), None)
            self._sequence += 1
            self._stats["frames_read"] += 1
            self._newest.notify_all()

    def __next__(self) -> Frame:
        if self.fps_cap is not None:
            wait_s = self._next_due - time.monotonic()
            if wait_s > 0:
                with self._lock:
                    self._consumer_capped = True
                self._closed.wait(wait_s)
                with self._lock:
                    self._consumer_capped = False
        with self._newest:
            while self._slot is None and not self._closed.is_set() and self.failure is None:
                self._newest.wait(0.5)
            if self._closed.is_set():
                raise StopIteration
            if self._slot is None and self.failure is not None:
                raise SourceError(self.failure)
            frame, self._slot = self._slot, None
            self._stats["frames_delivered"] += 1
        if self.fps_cap is not None:
            self._next_due = max(self._next_due + 1.0 / self.fps_cap, time.monotonic())
        return frame

    def close(self) -> None:
        self._closed.set()
        with self._newest:
            self._newest.notify_all()
        # The grabber may be blocked in a read for up to the read timeout; it releases the capture
        # itself, so waiting for it is bounded (a wedged camera must not hold up a service stop).
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=CLOSE_WAIT_S)
        super().close()


# ------------------------------------------------------------------------------------------ open


def open_source(uri: str, fps_cap: float | None = None, loop: bool = False,
                reconnect: ReconnectConfig | None = None, on_status: StatusCallback | None = None) -> FrameSource:
    """Open a camera index, stream URL, video/GIF file, image file or image folder (see module doc).

    Raises ``SourceError`` for a file/folder that is missing or yields no frames; live sources never
    raise on a failed connect, they start in state 'reconnecting'.
    ``on_status(stats)`` is called (from the grabber thread for live sources) whenever the state changes.
    """
    if fps_cap is not None and fps_cap <= 0:
        raise SourceError("fps_cap must be positive", path=uri, field="fps_cap")
    uri = str(uri).strip()
    if is_live_uri(uri):
        return LiveSource(uri, fps_cap=fps_cap, reconnect=reconnect, on_status=on_status)
    return FileSource(Path(uri), fps_cap=fps_cap, loop=loop, on_status=on_status)
