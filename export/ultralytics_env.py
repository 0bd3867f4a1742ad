"""Make Ultralytics usable offline on these CPU machines; import this before ``ultralytics``.

What it fixes (see ../shared/README.md, "Offline notes"):

* ``YOLO_OFFLINE=1`` and ``YOLO_AUTOINSTALL=0`` so nothing tries the network or pip.
* ``YOLO_CONFIG_DIR`` inside the project's ignored ``.yolo/`` folder, so settings do not leak
  into the user's home and every run sees the same settings.
* A TTF font at ``<config dir>/Ultralytics/Arial.ttf`` (a copy of matplotlib's DejaVuSans):
  the plotting code downloads Arial.ttf when it is missing.
* The registry's torchvision wheel is a CUDA build whose compiled ``torchvision::nms`` cannot
  load with the CPU torch, and ``import torchvision`` then fails while registering a fake
  kernel for it. We define the op and give it a small CPU implementation before torchvision
  is imported. If torchvision's own ops load, we leave them alone.

Usage::

    from export.ultralytics_env import setup_ultralytics
    setup_ultralytics()
    from ultralytics import YOLO
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from edge.paths import repo_root

DEFAULT_CONFIG_DIR = repo_root() / ".yolo"  # ignored by .gitignore

_done = False


def _font_source() -> Path:
    import matplotlib

    return Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"


def _nms_cpu(dets, scores, iou_threshold: float):
    """Greedy NMS over xyxy boxes; returns kept indices sorted by decreasing score."""
    import torch

    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=dets.device)
    boxes = dets.float()
    order = scores.argsort(descending=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    keep = []
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    boxes_sorted = boxes[order]
    areas_sorted = areas[order]
    # Work in chunks of IoU rows: O(n^2) memory for the few thousand boxes YOLO keeps is fine.
    ious = _pairwise_iou(boxes_sorted, areas_sorted)
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= ious[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.int64)]


def _pairwise_iou(boxes, areas):
    import torch

    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    return inter / (areas[:, None] + areas[None, :] - inter + 1e-9)


def _register_cpu_nms() -> None:
    """Define ``torchvision::nms`` with a CPU kernel unless torchvision already provides it."""
    if "torchvision" in sys.modules:
        return  # too late to help, and if it imported, its ops work
    import torch

    try:
        torch.ops.torchvision.nms  # noqa: B018 - raises if the op is not defined
        return
    except (AttributeError, RuntimeError):
        pass
    import importlib.util

    # If torchvision's compiled library loads fine we must not define the op twice.
    spec = importlib.util.find_spec("torchvision")
    if spec is not None and spec.submodule_search_locations:
        lib_dir = Path(list(spec.submodule_search_locations)[0])
        for candidate in lib_dir.glob("_C*.so"):
            try:
                torch.ops.load_library(str(candidate))
                return
            except (OSError, RuntimeError):
                break
    lib = torch.library.Library("torchvision", "DEF")  # kept alive by the module global below
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms_cpu, "CPU")
    # torchvision also registers a fake kernel for the quantised variant; it only has to exist.
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("qnms", _nms_cpu, "CPU")
    globals()["_nms_library"] = lib
    # torchvision.ops.nms refuses to run when its compiled library did not load (_has_ops() is
    # False); with our op defined it can, so report ops as present once torchvision is imported.
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True


def setup_ultralytics(config_dir: str | Path | None = None) -> Path:
    """Set the offline environment (idempotent); returns the Ultralytics config dir."""
    global _done
    config_dir = Path(config_dir or os.environ.get("YOLO_CONFIG_DIR") or DEFAULT_CONFIG_DIR).resolve()
    if _done:
        return config_dir
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ.setdefault("YOLO_VERBOSE", "True")
    font_dir = config_dir / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        target = font_dir / name
        if not target.is_file():
            shutil.copyfile(_font_source(), target)
    _register_cpu_nms()
    _done = True
    return config_dir
