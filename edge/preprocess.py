"""Preprocessing shared by training, export and the edge daemon.

Train/serve skew is the classic bug of this field, so everything that turns pixels into a
model input lives here and nowhere else: colour order, letterbox geometry, normalisation and
quantisation. ``training/`` and ``export/`` import these functions; so does ``edge/``.

Conventions
-----------
* Frames from OpenCV are BGR ``uint8`` HxWx3. Models take **RGB**.
* Detector input: letterbox to a square ``size`` with grey (114) padding, values in [0, 1]
  before quantisation (Ultralytics convention).
* Classifier input: letterbox to a square ``size`` (aspect kept, grey padding) then one of the
  normalisations in ``NORMALISATIONS``.
* Quantisation: ``q = round(x / scale) + zero_point`` clipped to the dtype's range; always read
  ``scale`` / ``zero_point`` from the model, never hard-code them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114  # Ultralytics' letterbox grey; used for both models so crops look alike.
COLOR_ORDER = "RGB"

# name -> (offset, divisor): x_model = (x_uint8 - offset) / divisor
NORMALISATIONS: dict[str, tuple[float, float]] = {
    "unit": (0.0, 255.0),  # [0, 1]   (YOLO, the project's classifier default)
    "symmetric": (127.5, 127.5),  # [-1, 1]  (Keras MobileNet's preprocess_input)
    "raw": (0.0, 1.0),  # [0, 255] (models that normalise inside the graph)
}


@dataclass(frozen=True)
class Letterbox:
    """Geometry of one letterbox: ``model_xy = image_xy * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: float
    pad_y: float
    size: int  # side of the square model input

    def to_image(self, boxes_xyxy: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
        """Map boxes from model-input pixels back to original-image pixels (clipped)."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4).copy()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.scale
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.scale
        h, w = image_shape[:2]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        return boxes


def bgr_to_rgb(image_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)


def _fit_geometry(h: int, w: int, height: int, width: int) -> tuple[float, int, int, int, int]:
    """``(scale, new_w, new_h, left, top)`` of fitting an ``h`` x ``w`` image into ``height`` x ``width``."""
    scale = min(height / h, width / w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    return scale, new_w, new_h, (width - new_w) // 2, (height - new_h) // 2


def _resized(image: np.ndarray, new_w: int, new_h: int, scale: float) -> np.ndarray:
    if (new_w, new_h) == image.shape[1::-1]:
        return image
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (new_w, new_h), interpolation=interp)


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"letterbox expects an HxWx3 image, got shape {image.shape}")


def _fit(image: np.ndarray, height: int, width: int, pad_value: int) -> tuple[np.ndarray, float, int, int]:
    """Resize keeping aspect ratio to fit ``height`` x ``width``, pad the rest centred (the odd pixel
    of padding goes bottom / right); returns the image, the scale and the left / top padding."""
    _check_image(image)
    scale, new_w, new_h, left, top = _fit_geometry(image.shape[0], image.shape[1], height, width)
    image = _resized(image, new_w, new_h, scale)
    out = cv2.copyMakeBorder(image, top, height - new_h - top, left, width - new_w - left,
                             cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    return out, scale, left, top


def letterbox(image: np.ndarray, size: int, pad_value: int = PAD_VALUE) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio so the long side is ``size``; pad the rest, centred."""
    out, scale, left, top = _fit(image, size, size, pad_value)
    return out, Letterbox(scale=scale, pad_x=float(left), pad_y=float(top), size=size)


def letterbox_hw(image: np.ndarray, height: int, width: int, pad_value: int = PAD_VALUE) -> np.ndarray:
    """``letterbox`` into a ``height`` x ``width`` rectangle. The person-attribute model's input is
    a tall rectangle (a standing person is about 2:1): a square would spend half its pixels on padding."""
    return _fit(image, height, width, pad_value)[0]


def person_box_with_margin(box_xyxy, margin: float, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The person-attribute model's framing: the tracker's person box grown by ``margin`` of its
    width/height on each side, clipped to the frame (integer pixel bounds, never empty)."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    mw, mh = (x2 - x1) * margin, (y2 - y1) * margin
    fh, fw = frame_shape[:2]
    left, top = int(max(0, np.floor(x1 - mw))), int(max(0, np.floor(y1 - mh)))
    right, bottom = int(min(fw, np.ceil(x2 + mw))), int(min(fh, np.ceil(y2 + mh)))
    return left, top, max(right, left + 1), max(bottom, top + 1)


def person_input(crop_bgr: np.ndarray, height: int, width: int) -> np.ndarray:
    """BGR person crop -> letterboxed RGB uint8 ``height`` x ``width`` (attribute model, training too)."""
    return bgr_to_rgb(letterbox_hw(crop_bgr, height, width))


def normalise(image_uint8: np.ndarray, mode: str) -> np.ndarray:
    """uint8 pixels -> float32 model values for the named normalisation."""
    try:
        offset, divisor = NORMALISATIONS[mode]
    except KeyError:
        raise ValueError(f"unknown normalisation {mode!r}; expected one of {sorted(NORMALISATIONS)}") from None
    return (image_uint8.astype(np.float32) - offset) / divisor


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """float -> int8/uint8 with the model's affine parameters."""
    info = np.iinfo(dtype)
    q = np.round(values / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (values.astype(np.float32) - zero_point) * scale


def to_model_input(
    image_uint8_rgb: np.ndarray,
    normalisation: str,
    input_dtype: np.dtype,
    quant: tuple[float, int] | None,
) -> np.ndarray:
    """Square RGB uint8 image -> batched tensor in the model's dtype.

    ``quant`` is the input's (scale, zero_point) for integer inputs. When an integer input's
    quantisation maps uint8 pixels onto itself (e.g. uint8 with scale 1/255, zp 0 and 'unit'
    normalisation) the float round-trip is exact, so we keep one code path.
    """
    x = normalise(image_uint8_rgb, normalisation)
    dtype = np.dtype(input_dtype)
    if dtype.kind in "iu":
        if quant is None or quant[0] == 0:
            raise ValueError("integer model input without quantisation parameters")
        x = quantize(x, quant[0], quant[1], dtype)
    else:
        x = x.astype(dtype)
    return x[None, ...]


def detector_input(frame_bgr: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """BGR frame -> letterboxed RGB uint8 square (detector convention), plus its geometry."""
    boxed, geometry = letterbox(frame_bgr, size)
    return bgr_to_rgb(boxed), geometry


def classifier_input(crop_bgr: np.ndarray, size: int) -> np.ndarray:
    """BGR crop -> letterboxed RGB uint8 square (classifier convention, used in training too)."""
    boxed, _ = letterbox(crop_bgr, size)
    return bgr_to_rgb(boxed)


def pixel_lookup(input_info, normalisation: str = "unit") -> np.ndarray | None:
    """For an integer input: the model value of each uint8 pixel value (256 entries), else None.

    Built with ``edge.preprocess.to_model_input`` itself, so ``lookup_pixels(image, lut)`` equals
    ``to_model_input(image, ...)`` exactly (per-tensor quantisation) while skipping the float
    round-trip over every pixel (measured here: 3.9 -> 2.5 ms per 768x432 frame at 416, best of 100).
    """
    if input_info.dtype.kind not in "iu" or input_info.quant is None:
        return None
    values = np.arange(256, dtype=np.uint8).reshape(1, 256, 1)
    return to_model_input(values, normalisation, input_info.dtype, input_info.quant)[0, 0, :, 0]


def lookup_pixels(image_uint8: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """``lut[image]`` with OpenCV's table lookup (0.15 instead of 0.7 ms for 416x416x3 here)."""
    return cv2.LUT(np.ascontiguousarray(image_uint8), lut)


class DetectorInputBuffer:
    """``detector_input`` (then the model's pixel lookup) written into one reused ``size`` x ``size``
    buffer: the same tensor, without a padded copy, a colour-converted copy and a lookup copy of the
    whole square on every frame. Only the resized image is written each call; the padding is filled
    when the frame size changes. The returned tensor is a view of the buffer, valid until the next call.

    ``lut`` is ``pixel_lookup(model_input)`` for an integer input (``None``: the uint8 RGB square)."""

    def __init__(self, size: int, lut: np.ndarray | None = None):
        self.size = size
        self.lut = lut
        dtype = lut.dtype if lut is not None else np.dtype(np.uint8)
        self._buffer = np.empty((1, size, size, 3), dtype)
        pad = np.array([PAD_VALUE], np.uint8)
        self._pad = lut[pad][0] if lut is not None else pad[0]
        self._shape: tuple[int, int] | None = None
        self._geometry: tuple[float, int, int, int, int] | None = None

    def fill(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """BGR frame -> ``(1, size, size, 3)`` tensor (a view of the buffer) and its letterbox geometry."""
        _check_image(frame_bgr)
        shape = frame_bgr.shape[:2]
        if shape != self._shape:
            self._geometry = _fit_geometry(shape[0], shape[1], self.size, self.size)
            self._buffer.fill(self._pad)
            self._shape = shape
        scale, new_w, new_h, left, top = self._geometry
        resized = _resized(frame_bgr, new_w, new_h, scale)
        window = self._buffer[0, top:top + new_h, left:left + new_w]
        # A landscape frame's window is whole rows (contiguous): OpenCV writes into it directly.
        direct = window.flags.c_contiguous
        if self.lut is None:
            if direct:
                cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=window)
            else:
                window[...] = bgr_to_rgb(resized)
        elif direct:
            cv2.LUT(bgr_to_rgb(resized), self.lut, dst=window)
        else:
            window[...] = cv2.LUT(bgr_to_rgb(resized), self.lut)
        return self._buffer, Letterbox(scale=scale, pad_x=float(left), pad_y=float(top), size=self.size)
