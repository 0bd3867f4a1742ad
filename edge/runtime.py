"""TFLite interpreter loading shared by every model the daemon runs.

``ai-edge-litert`` is the maintained runtime (works with numpy 2); ``tflite_runtime`` is the
fallback import for older boards. Errors come out as one-line ``ModelError``s naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore

        return Interpreter
    except ImportError:
        raise ModelError(
            "no TFLite runtime installed: pip install ai-edge-litert (or tflite-runtime on old boards)"
        ) from None


# The C++ runtime prints this to fd 2 when it builds an interpreter (it honours no log-level setting):
# operator noise, kept out of the log. Any other text it prints there is passed on.
_RUNTIME_CHATTER = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_runtime_stderr():
    """Capture fd 2 while the runtime builds an interpreter; re-emit all but its INFO chatter.

    The redirect is process-wide: a line another thread writes meanwhile is captured and re-emitted
    afterwards (late, never lost). Nested or concurrent uses are serialised by a lock.
    """
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded interpreter): leave it
            yield
            return
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                yield
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                text = captured.read().decode("utf-8", "replace")
                kept = [line for line in text.splitlines(keepends=True) if line.strip() not in _RUNTIME_CHATTER]
                if kept:
                    os.write(2, "".join(kept).encode())


@dataclass(frozen=True)
class TensorInfo:
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    quant: tuple[float, int] | None  # (scale, zero_point); None for float tensors

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        if self.quant is None or self.dtype.kind == "f":
            return values.astype(np.float32)
        scale, zero_point = self.quant
        return (values.astype(np.float32) - zero_point) * scale


def tensor_info(detail: dict) -> TensorInfo:
    """An interpreter input/output detail dict as dtype, shape and (scale, zero_point)."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = np.dtype(detail["dtype"])
    quant = (float(scale), int(zero_point)) if dtype.kind in "iu" and scale else None
    return TensorInfo(int(detail["index"]), tuple(int(d) for d in detail["shape"]), dtype, quant)


AUTO_THREADS = "auto"
_AUTO_LOGGED: set[tuple[int, int]] = set()
log = logging.getLogger(__name__)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset, cgroup cpusets, systemd CPUAffinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def others_load(cores: int) -> float:
    """Cores' worth of work other processes were doing over the last minute (the 1-minute load
    average, read before the daemon's own models start; clipped to the cores we may use)."""
    try:
        return min(float(cores), os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def resolve_threads(threads: int | str, cores: int | None = None, load: float | None = None) -> int:
    """Interpreter threads for ``threads: auto`` (an integer is kept as it is).

    Measured (docs/performance.md, Thread policy): a second interpreter thread buys 5-15 % wall
    time on a quiet 2-core box, costs about as much CPU again, and under a competing busy core it
    loses throughput; the daemon's own Python, OpenCV and decode work need a core of their own.
    So: 1 thread unless at least 3 cores are free of other work (cores the process may use minus
    the load other processes put on them), then 2 (a Pi 5 or an x86 mini-PC to itself), 4 from
    8 free cores.
    """
    if threads != AUTO_THREADS:
        return int(threads)
    cores = usable_cores() if cores is None else cores
    load = others_load(cores) if load is None else load
    free = cores - load
    threads = 4 if free >= 8 else 2 if free >= 3 else 1
    if (cores, threads) not in _AUTO_LOGGED:  # once per outcome, not once per model
        _AUTO_LOGGED.add((cores, threads))
        log.info("threads auto: %d interpreter thread(s) per model (%d usable cores, load %.1f from other processes)",
                 threads, cores, load)
    return threads


_MADV_DONTNEED = 4  # linux/mman.h


def release_model_file_pages(path: str | Path) -> int:
    """Hand the pages of the runtime's maps of ``path`` back to the kernel; returns the bytes released.

    The runtime maps the model file and, when it allocates tensors, XNNPACK copies every weight into
    its own packed layout: the file's pages were read once and would then stay in the process's RSS
    (about the model's size: 11 MB for the demo's four models). Dropping them costs nothing to
    correctness: they are clean, read-only file pages, and whatever the runtime does read again (an
    op XNNPACK does not run) is faulted back in from the file. Linux only; elsewhere a no-op (0).
    """
    real = os.path.realpath(path)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps") as maps:
            regions = [line.split(maxsplit=5) for line in maps]
    except (OSError, AttributeError):  # not Linux, or no libc symbol: keep the pages
        return 0
    released = 0
    for fields in regions:
        if len(fields) == 6 and fields[5].strip() == real and fields[1].startswith("r") and "w" not in fields[1]:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if madvise(start, end - start, _MADV_DONTNEED) == 0:
                released += end - start
    return released


class TFLiteModel:
    """A loaded TFLite model with one input; ``run`` returns raw outputs in model order.
    ``threads``: interpreter threads, or ``"auto"`` (``resolve_threads``)."""

    def __init__(self, path: str | Path, threads: int | str = 2):
        self.path = Path(path)
        threads = resolve_threads(threads)
        self.threads = threads
        if not self.path.is_file():
            raise ModelError("model file not found", path=self.path)
        interpreter_class = _interpreter_class()
        try:
            with _quiet_runtime_stderr():
                self.interpreter = interpreter_class(model_path=str(self.path), num_threads=threads)
                self.interpreter.allocate_tensors()
            self.released_file_bytes = release_model_file_pages(self.path)
        except ModelError:
            raise
        except Exception as exc:  # the runtime raises ValueError/RuntimeError with long text
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"not a valid TFLite model ({first})", path=self.path) from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelError(f"expected 1 input tensor, found {len(inputs)}", path=self.path)
        self.input = tensor_info(inputs[0])
        self.outputs = [tensor_info(d) for d in self.interpreter.get_output_details()]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        self.interpreter.set_tensor(self.input.index, tensor)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(o.index) for o in self.outputs]


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(model_path: str | Path) -> Path:
    """``models/foo.tflite`` -> ``models/foo.json`` (the manifest beside the model)."""
    return Path(model_path).with_suffix(".json")


MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # the largest shipped manifest (centroids, metrics) is far smaller


def read_manifest_file(path: str | Path) -> dict:
    """A manifest JSON object; malformed JSON or a non-object is a ModelError naming the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the manifest ({exc.strerror or exc})", path=path) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ModelError(f"manifest is {len(raw)} bytes, more than a manifest needs ({MAX_MANIFEST_BYTES})",
                         path=path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"manifest is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                         path=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"manifest is not valid JSON ({exc})", path=path) from None
    except RecursionError:
        raise ModelError("manifest is not valid JSON (nested too deep)", path=path) from None
    if not isinstance(data, dict):
        raise ModelError("manifest must be a JSON object", path=path)
    return data


def read_manifest(model_path: str | Path) -> dict | None:
    """The manifest beside a model, or None if there is none."""
    path = manifest_path(model_path)
    return read_manifest_file(path) if path.is_file() else None
