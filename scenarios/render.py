"""Scenario clips rendered from labelled photos, with the ground truth written beside each frame.

Each person photo (``photos.Person``) is pasted as a whole rectangle (its own street background
included) onto a plain or store-like backdrop, scaled to a given height, along a path. Nearer
people (lower foot point) are drawn over farther ones. Frames are JPEG-compressed like a camera
stream. The truth of each frame is the pasted rectangle of every person, clipped to the frame,
with whether it is wholly inside the frame (``full``).

Layouts (all at ``fps``, deterministic for a seed):

* ``parade``: people one after another at nearly the same place (+-20 px), each 1-2 s on screen
  with a 0-0.4 s gap; some walk across the frame (cut by the side edges as they enter and leave),
  some stand with their feet cut off by the bottom edge;
* ``queue``: one person replaces the next at the same spot with no gap at all;
* ``crossing``: two people walk towards each other and cross (the nearer one hides the other);
* ``side_by_side``: two people stand next to each other, boxes overlapping (garment ownership);
* ``cctv``: people 120-250 px tall walk across a store-like backdrop, JPEG quality 40;
* ``crowd``: 8 people in view at once, walking back and forth (the performance scenario).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .photos import Person


@dataclass
class Visit:
    """One customer's time on screen: frame -> (centre x, foot y, height) in frame pixels."""

    customer: int
    person: Person
    frames: dict[int, tuple[float, float, float]]


@dataclass
class TruthBox:
    customer: int
    box: np.ndarray  # xyxy clipped to the frame
    full: bool  # the whole person is inside the frame


@dataclass
class Scenario:
    name: str
    fps: float
    size: tuple[int, int]  # (width, height)
    visits: list[Visit]
    jpeg_quality: int = 75
    store_backdrop: bool = False
    seed: int = 0
    n_frames: int = 0
    customers: dict[int, frozenset[str]] = field(default_factory=dict)  # customer -> garments

    def __post_init__(self):
        self.n_frames = max((max(v.frames) + 1 for v in self.visits), default=0)
        self.customers = {v.customer: v.person.garments for v in self.visits}

    # -- rendering ---------------------------------------------------------------------------
    def backdrop(self) -> np.ndarray:
        w, h = self.size
        if not self.store_backdrop:
            return np.full((h, w, 3), 150, np.uint8)
        rng = np.random.default_rng(self.seed)
        image = np.zeros((h, w, 3), np.uint8)
        image[:] = (200, 205, 210)  # wall
        floor = int(0.62 * h)
        image[floor:] = (120, 125, 130)
        for x in range(0, w, 140):  # shelves with boxes of stock
            cv2.rectangle(image, (x + 10, int(0.15 * h)), (x + 120, floor - 10), (90, 70, 60), -1)
            for shelf_y in np.linspace(0.2 * h, floor - 40, 4).astype(int):
                for bx in range(x + 15, x + 110, 22):
                    colour = tuple(int(c) for c in rng.integers(40, 230, 3))
                    cv2.rectangle(image, (bx, shelf_y), (bx + 18, shelf_y + 25), colour, -1)
        return image

    def truth(self, index: int) -> list[TruthBox]:
        w, h = self.size
        out = []
        for visit in self.visits:
            place = visit.frames.get(index)
            if place is None:
                continue
            box = self._rect(visit.person, place)
            clipped = np.array([max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])], np.float32)
            if clipped[2] - clipped[0] < 4 or clipped[3] - clipped[1] < 4:
                continue
            full = box[0] >= 0 and box[1] >= 0 and box[2] <= w and box[3] <= h
            out.append(TruthBox(visit.customer, clipped, bool(full)))
        return out

    @staticmethod
    def _rect(person: Person, place: tuple[float, float, float]) -> np.ndarray:
        cx, foot, height = place
        ph, pw = person.image.shape[:2]
        width = height * pw / ph
        return np.array([cx - width / 2, foot - height, cx + width / 2, foot], np.float32)

    def frame(self, index: int, backdrop: np.ndarray | None = None) -> np.ndarray:
        image = (self.backdrop() if backdrop is None else backdrop).copy()
        here = [(v, v.frames[index]) for v in self.visits if index in v.frames]
        for visit, place in sorted(here, key=lambda item: item[1][1]):  # farther (higher foot) first
            self._paste(image, visit.person, place)
        return self._as_camera_saw(image)

    def _paste(self, image: np.ndarray, person: Person, place: tuple[float, float, float]) -> None:
        """The person's photo as a whole rectangle at ``place``, cut by the frame's edges."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in self._rect(person, place))
        if x2 - x1 < 2 or y2 - y1 < 2:
            return
        scaled = cv2.resize(person.image, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
        fx1, fy1, fx2, fy2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if fx2 <= fx1 or fy2 <= fy1:
            return
        image[fy1:fy2, fx1:fx2] = scaled[fy1 - y1:fy2 - y1, fx1 - x1:fx2 - x1]

    def _as_camera_saw(self, image: np.ndarray) -> np.ndarray:
        """The frame through the camera's JPEG compression."""
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)

    def frames(self):
        backdrop = self.backdrop()
        for index in range(self.n_frames):
            yield index, self.frame(index, backdrop)


# -- layouts -----------------------------------------------------------------------------------

def _standing(start: int, n: int, cx: float, foot: float, height: float, rng) -> dict:
    """A person standing, swaying a little (a few px) and breathing (height +-1 %)."""
    return {start + i: (cx + 3 * np.sin(i / 3 + rng.uniform(0, 6)), foot, height * (1 + 0.01 * np.sin(i / 2)))
            for i in range(n)}


def _walking(start: int, n: int, x_from: float, x_to: float, foot: float, height: float) -> dict:
    return {start + i: (x_from + (x_to - x_from) * i / max(n - 1, 1), foot + 2 * np.sin(i), height)
            for i in range(n)}


def parade(people: list[Person], fps: float = 10, size=(960, 540), seed: int = 0) -> Scenario:
    rng = np.random.default_rng(seed)
    w, h = size
    visits, frame = [], 0
    for customer, person in enumerate(people):
        n = int(round(rng.uniform(1.0, 2.0) * fps))
        height = rng.uniform(0.6, 0.75) * h
        kind = rng.choice(["stand", "walk", "cut"], p=[0.6, 0.25, 0.15])
        if kind == "walk":  # across the whole frame in 1-2 s (a quick passer-by)
            left_to_right = rng.random() < 0.5
            ends = (0.05 * w, 0.95 * w) if left_to_right else (0.95 * w, 0.05 * w)
            path = _walking(frame, n, *ends, foot=0.92 * h, height=height)
        elif kind == "cut":  # feet below the bottom edge for the whole visit
            path = _standing(frame, n, w / 2 + rng.uniform(-20, 20), h + 0.15 * height, height, rng)
        else:
            path = _standing(frame, n, w / 2 + rng.uniform(-20, 20), 0.92 * h, height, rng)
        visits.append(Visit(customer, person, path))
        frame += n + int(round(rng.uniform(0.0, 0.4) * fps))
    return Scenario("parade", fps, size, visits, seed=seed)


def queue(people: list[Person], fps: float = 10, size=(960, 540), seed: int = 0) -> Scenario:
    rng = np.random.default_rng(seed)
    w, h = size
    visits, frame = [], 0
    for customer, person in enumerate(people):
        n = int(round(1.5 * fps))
        path = _standing(frame, n, w / 2 + rng.uniform(-10, 10), 0.92 * h, 0.7 * h, rng)
        visits.append(Visit(customer, person, path))
        frame += n  # the next one stands there in the very next frame
    return Scenario("queue", fps, size, visits, seed=seed)


def crossing(people: list[Person], fps: float = 10, size=(960, 540), seed: int = 0) -> Scenario:
    w, h = size
    visits, frame = [], 0
    n = int(round(3.0 * fps))
    for pair in range(len(people) // 2):
        a, b = people[2 * pair], people[2 * pair + 1]
        visits.append(Visit(2 * pair, a, _walking(frame, n, 0.15 * w, 0.85 * w, 0.86 * h, 0.6 * h)))
        visits.append(Visit(2 * pair + 1, b, _walking(frame, n, 0.85 * w, 0.15 * w, 0.95 * h, 0.68 * h)))
        frame += n + int(0.5 * fps)
    return Scenario("crossing", fps, size, visits, seed=seed)


def side_by_side(people: list[Person], fps: float = 10, size=(960, 540), seed: int = 0) -> Scenario:
    rng = np.random.default_rng(seed)
    w, h = size
    visits, frame = [], 0
    n = int(round(2.5 * fps))
    for pair in range(len(people) // 2):
        a, b = people[2 * pair], people[2 * pair + 1]
        height = 0.7 * h
        width_a = height * a.image.shape[1] / a.image.shape[0]
        width_b = height * b.image.shape[1] / b.image.shape[0]
        overlap = 0.15 * min(width_a, width_b)
        ca = w / 2 - width_a / 2 + overlap / 2
        cb = w / 2 + width_b / 2 - overlap / 2
        visits.append(Visit(2 * pair, a, _standing(frame, n, ca, 0.92 * h, height, rng)))
        visits.append(Visit(2 * pair + 1, b, _standing(frame, n, cb, 0.93 * h, height, rng)))
        frame += n + int(0.5 * fps)
    return Scenario("side_by_side", fps, size, visits, seed=seed)


def cctv(people: list[Person], fps: float = 10, size=(960, 540), seed: int = 0) -> Scenario:
    rng = np.random.default_rng(seed)
    w, h = size
    visits, frame = [], 0
    for customer, person in enumerate(people):
        height = rng.uniform(120, 250)
        n = int(round(rng.uniform(2.0, 3.5) * fps))
        foot = rng.uniform(0.7, 0.95) * h
        ends = (0.1 * w, 0.9 * w) if rng.random() < 0.5 else (0.9 * w, 0.1 * w)
        visits.append(Visit(customer, person, _walking(frame, n, *ends, foot=foot, height=height)))
        frame += n + int(round(rng.uniform(0.3, 0.8) * fps))
    return Scenario("cctv", fps, size, visits, jpeg_quality=40, store_backdrop=True, seed=seed)


def crowd(people: list[Person], fps: float = 10, size=(960, 540), seconds: float = 20, seed: int = 0) -> Scenario:
    """``len(people)`` people in view at once, each walking back and forth in its own lane."""
    rng = np.random.default_rng(seed)
    w, h = size
    n = int(round(seconds * fps))
    visits = []
    for customer, person in enumerate(people):
        foot = h * (0.55 + 0.4 * customer / max(len(people) - 1, 1))
        height = 0.25 * h + 0.35 * h * (foot / h - 0.55) / 0.4
        phase, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.15, 0.35)
        frames = {i: (w / 2 + 0.38 * w * np.sin(phase + speed * i / fps * 2), foot, height) for i in range(n)}
        visits.append(Visit(customer, person, frames))
    return Scenario("crowd", fps, size, visits, store_backdrop=True, seed=seed)
