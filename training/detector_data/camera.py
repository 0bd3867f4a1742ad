"""Store-camera degradations for the garment detector: training augmentation and the fixed
degraded validation set.

In the daemon the garment detector runs on a *person crop* of a store camera frame (the tracker's
person box, no margin: ``edge/pipeline.py`` ``_garments_on_persons``), where a customer is
~100-250 px tall, JPEG-compressed, a little blurred, often seen from above. colorful-fashion
photos are 400x600 with one person filling the frame. Two things here:

* ``camera_augment``: one random training sample that looks like a store crop. Steps, each with
  the probability in ``AugmentSettings``: person-crop framing (the tallest teacher person box with a small
  random jitter of each side, like a tracker box), mild perspective (camera looking down), down-
  then-up scaling so the person is ``person_h`` px tall (90-300), blur (Gaussian or motion),
  sensor noise, colour cast and low light, a cut by a frame edge (feet or head missing), JPEG
  quality 25-80, grey (114) letterbox bars of random size. Boxes follow every geometric step;
  a box cut by the frame edge is clipped, and dropped when less than ``min_visible`` of its area
  (or less than 2 px a side) is left.
* ``degrade_fixed``: the evaluation degradation at one person height H (area resize of the whole
  image so the tallest person is H px, Gaussian blur sigma 0.5, JPEG quality 50). Deterministic
  (no randomness at all); the set builder ``training.detector.camera_eval build`` seeds nothing
  else.

Images are BGR uint8, boxes ``xyxy`` float pixels ``[N, 4]`` with class ids ``[N]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class AugmentSettings:
    person_h: tuple[int, int] = (90, 300)  # person height in px after the down-scale
    p_crop: float = 0.8  # person-crop framing (else the whole photo)
    crop_jitter: tuple[float, float] = (-0.04, 0.10)  # each side, fraction of the box size
    p_perspective: float = 0.4
    perspective: float = 0.12  # top edge narrowed by up to this fraction (looking down)
    p_blur: float = 0.6
    p_noise: float = 0.5
    noise_sigma: tuple[float, float] = (2.0, 10.0)
    p_colour: float = 0.6
    p_edge_cut: float = 0.25
    edge_cut: tuple[float, float] = (0.08, 0.30)  # fraction of the person height cut off
    jpeg_quality: tuple[int, int] = (25, 80)
    p_letterbox: float = 0.3
    min_visible: float = 0.4  # a clipped box is kept when this share of its area is left


def clip_boxes(boxes: np.ndarray, classes: np.ndarray, width: int, height: int,
               min_visible: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the image; drop those with < ``min_visible`` of their area left or < 2 px."""
    if len(boxes) == 0:
        return boxes.reshape(0, 4).astype(np.float32), classes.reshape(0).astype(np.int64)
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    w = clipped[:, 2] - clipped[:, 0]
    h = clipped[:, 3] - clipped[:, 1]
    keep = (w >= 2) & (h >= 2) & (w * h >= min_visible * np.maximum(area, 1e-6))
    return clipped[keep].astype(np.float32), classes[keep].astype(np.int64)


def person_height(boxes: np.ndarray, classes: np.ndarray, image_h: int, person_id: int = 0) -> float:
    """The tallest person box; without one, the extent of all boxes (the garments) or the image."""
    people = boxes[classes == person_id]
    if len(people):
        return float((people[:, 3] - people[:, 1]).max())
    if len(boxes):
        return float(boxes[:, 3].max() - boxes[:, 1].min())
    return float(image_h)


def _crop(image, boxes, classes, x1, y1, x2, y2, min_visible):
    h, w = image.shape[:2]
    x1, y1 = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
    x2, y2 = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
    out = image[y1:y2, x1:x2]
    b = boxes - np.array([x1, y1, x1, y1], np.float32)
    b, c = clip_boxes(b, classes, x2 - x1, y2 - y1, min_visible)
    return out, b, c


def _resize(image, boxes, new_w, new_h, interp):
    h, w = image.shape[:2]
    out = cv2.resize(image, (max(1, new_w), max(1, new_h)), interpolation=interp)
    sx, sy = out.shape[1] / w, out.shape[0] / h
    return out, boxes * np.array([sx, sy, sx, sy], np.float32)


def _perspective(image, boxes, classes, amount, min_visible):
    """Narrow the top edge (a camera looking down at the person); boxes = hull of warped corners."""
    h, w = image.shape[:2]
    d = amount * w / 2
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[d, 0], [w - d, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(PAD_VALUE,) * 3)
    if len(boxes) == 0:
        return out, boxes, classes
    corners = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [2, 3]], boxes[:, [0, 3]]], 1).reshape(-1, 1, 2)
    warped = cv2.perspectiveTransform(corners.astype(np.float32), m).reshape(-1, 4, 2)
    nb = np.concatenate([warped.min(1), warped.max(1)], 1).astype(np.float32)
    nb, nc = clip_boxes(nb, classes, w, h, min_visible)
    return out, nb, nc


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    return k / max(k.sum(), 1e-6)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def camera_augment(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, rng: np.random.Generator,
                   settings: AugmentSettings = AugmentSettings(), person_id: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """One store-camera-like sample; returns image (uint8 BGR), boxes, classes and what was done.

    ``info['person_h']`` is the tallest person's height in px at the lowest resolution the image
    went through (the down-scale step), always within ``settings.person_h``.
    """
    s = settings
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes, np.int64).reshape(-1)
    info: dict = {}
    img = image
    people = np.where(classes == person_id)[0]
    if len(people) and rng.random() < s.p_crop:
        # the photo's subject: the tallest person (a small one in the background would give a
        # tiny crop, upscaled by the letterbox, that no tracker box looks like)
        p = boxes[people[np.argmax(boxes[people, 3] - boxes[people, 1])]]
        bw, bh = p[2] - p[0], p[3] - p[1]
        j = rng.uniform(*s.crop_jitter, size=4)
        img, boxes, classes = _crop(img, boxes, classes, p[0] - j[0] * bw, p[1] - j[1] * bh,
                                    p[2] + j[2] * bw, p[3] + j[3] * bh, s.min_visible)
        info["crop"] = True
    if rng.random() < s.p_perspective:
        img, boxes, classes = _perspective(img, boxes, classes, rng.uniform(0.02, s.perspective), s.min_visible)
        info["perspective"] = True
    if rng.random() < s.p_edge_cut:
        h = img.shape[0]
        ph = person_height(boxes, classes, h, person_id)
        cut = rng.uniform(*s.edge_cut) * ph
        if rng.random() < 0.7:  # feet missing (the person walks out of the bottom of the frame)
            img, boxes, classes = _crop(img, boxes, classes, 0, 0, img.shape[1], h - cut, s.min_visible)
            info["edge_cut"] = "bottom"
        else:
            img, boxes, classes = _crop(img, boxes, classes, 0, cut, img.shape[1], h, s.min_visible)
            info["edge_cut"] = "top"
    # down-then-up: the detail of a person person_h px tall, at the original pixel size
    h0, w0 = img.shape[:2]
    ph = person_height(boxes, classes, h0, person_id)
    target = rng.uniform(*s.person_h)
    scale = min(1.0, target / max(ph, 1.0))
    small_w, small_h = max(8, int(round(w0 * scale))), max(8, int(round(h0 * scale)))
    small, small_boxes = _resize(img, boxes, small_w, small_h, cv2.INTER_AREA)
    info["person_h"] = person_height(small_boxes, classes, small_h, person_id) if len(classes) else float(small_h)
    if rng.random() < s.p_blur:
        if rng.random() < 0.6:
            small = cv2.GaussianBlur(small, (0, 0), rng.uniform(0.4, 1.3))
            info["blur"] = "gauss"
        else:
            small = cv2.filter2D(small, -1, _motion_kernel(int(rng.integers(3, 6)), rng.uniform(0, 180)))
            info["blur"] = "motion"
    f = small.astype(np.float32)
    if rng.random() < s.p_colour:
        gain = rng.uniform(0.85, 1.15, size=3).astype(np.float32)  # colour cast (white balance)
        light = rng.uniform(0.45, 1.05)  # low light
        f = f * gain[None, None, :] * light + rng.uniform(-10, 10)
        info["colour"] = True
    if rng.random() < s.p_noise:
        f = f + rng.normal(0, rng.uniform(*s.noise_sigma), size=f.shape).astype(np.float32)
        info["noise"] = True
    small = np.clip(f, 0, 255).astype(np.uint8)
    quality = int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1))
    small = _jpeg(small, quality)
    info["jpeg"] = quality
    img, boxes = _resize(small, small_boxes, w0, h0, cv2.INTER_LINEAR) if scale < 1.0 else (small, small_boxes)
    if rng.random() < s.p_letterbox:  # grey bars of random size (a letterboxed camera image / crop)
        h, w = img.shape[:2]
        pad = rng.uniform(0.0, 0.25, size=4) * np.array([w, h, w, h])
        l, t, r, b = (int(v) for v in pad)
        img = cv2.copyMakeBorder(img, t, b, l, r, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        boxes = boxes + np.array([l, t, l, t], np.float32)
        info["letterbox"] = (l, t, r, b)
    return img, boxes.astype(np.float32), classes, info


@dataclass(frozen=True)
class FixedDegradation:
    blur_sigma: float = 0.5
    jpeg_quality: int = 50


def degrade_fixed(image: np.ndarray, boxes: np.ndarray, person_h: float, height: int,
                  settings: FixedDegradation = FixedDegradation()) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation degradation: the whole image area-resized so ``person_h`` becomes ``height``
    px (never enlarged), Gaussian blur ``blur_sigma``, JPEG ``jpeg_quality``. Deterministic."""
    h, w = image.shape[:2]
    scale = min(1.0, height / max(person_h, 1.0))
    out, b = _resize(image, np.asarray(boxes, np.float32).reshape(-1, 4),
                     int(round(w * scale)), int(round(h * scale)), cv2.INTER_AREA)
    if settings.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), settings.blur_sigma)
    return _jpeg(out, settings.jpeg_quality), b
