"""Fashion-MNIST IDX files (``*-images-idx3-ubyte[.gz]``, ``*-labels-idx1-ubyte[.gz]``).

The images are 28x28 grey, white garments on black. They become 3-channel uint8 arrays that go
through the same letterbox as every other crop; they are a benchmark, not the store's domain.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from edge.errors import DatasetError

from .samples import Sample, require_file

FASHION_MNIST_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
_DTYPE_CODE_UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy uint8 array of its declared shape."""
    path = require_file(Path(path), "IDX file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read IDX file ({exc})", path=path) from None
    if len(data) < 4:
        raise DatasetError("too short for an IDX header", path=path)
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != _DTYPE_CODE_UBYTE or ndim == 0:
        raise DatasetError(f"not an unsigned-byte IDX file (magic {data[:4].hex()})", path=path, field="header")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DatasetError(f"header says {expected} bytes of data for shape {shape}, file has {len(data) - header}", path=path)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_idx(images_path: Path, labels_path: Path, names: list[str] | None = None) -> list[Sample]:
    names = names or FASHION_MNIST_NAMES
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DatasetError(f"expected N x rows x cols images, got shape {images.shape}", path=images_path)
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{len(labels)} labels for {len(images)} images", path=labels_path)
    if labels.size and labels.max() >= len(names):
        raise DatasetError(f"label {int(labels.max())} has no name (names: {len(names)})", path=labels_path)
    samples = []
    for i, (image, label) in enumerate(zip(images, labels)):
        key = f"{Path(images_path).name}#{i}"
        pixels = np.repeat(image[:, :, None], 3, axis=2)  # grey -> 3 equal channels (BGR == RGB)
        samples.append(Sample(path=Path(images_path), label=names[int(label)], key=key, group=key, source="idx", pixels=pixels))
    return samples
