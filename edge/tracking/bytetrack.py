"""ByteTrack-class multi-object tracker (numpy only) with an appearance check against swaps.

Per frame: predict every track (constant-velocity Kalman); match (1) high-score boxes to confirmed
and lost tracks, (2) low-score boxes (people half hidden behind a rail or another shopper) to the
confirmed tracks in view last frame, (3) the remaining high boxes to tentative tracks, then the
remaining low boxes to tentative tracks still unmatched; start tentative tracks from the high boxes
left. A track gets its id after ``min_hits`` high-score matches (a one-frame false positive costs
no id); a low box keeps a tentative track alive without counting, and one not confirmed within
``max_lost_s`` is dropped; ids are never reused. The matching cost is one hook (``MatchCost``):
``IouAppearanceCost`` (the default) refuses a box whose colour appearance jumps from the track's
(a customer replacing another at the same spot starts a new track), and brings a lost track back
only on appearance. Doubt resolves to a split (a duplicate alert at worst), never to a swap.

Time is source seconds (``now_s``), not frames. Events (``events()``): ``started``, ``reacquired``
(the customer's garments should be re-checked), ``ended``; ``split`` and ``forget`` serve the
identity stage. ``update`` returns the detection boxes (not the Kalman guess) of the tracks
matched in this frame. Every rule, and why this is not a library: docs/tracking.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from ..boxes import iou_matrix
from ..config import TrackerConfig
from ..detections import FROM_SECOND_LOOK, Detections
from .assignment import match
from . import appearance as colour
from .kalman import BoxKalman


INFEASIBLE = 1e6  # cost of a pair that must not match
MIN_ADAPTIVE_GATE = 0.3  # the per-track gate never goes below this (same-person p75 in the measurement)
MOVING_SPEED = 0.02  # person heights per frame: a track this fast has a direction (a slow walk is ~0.06 at 10 fps)


@dataclass
class _Track:
    kalman: BoxKalman
    class_id: int
    last_box: np.ndarray  # last matched detection box
    last_seen_s: float  # source time of the last match
    appearance: np.ndarray | None = None  # smoothed colour appearance (None until a reliable crop)
    usual_distance: float = 0.15  # running mean of its own frame-to-frame appearance distance
    hits: int = 1  # high-score matches while tentative
    lost: int = 0  # updates since the last match
    track_id: int | None = None  # set on confirmation
    born_s: float = 0.0  # source time of the first box
    frame_box_s: float = 0.0  # source time of the last box the whole-frame pass found (not a second look's)
    matched_index: int | None = field(default=None, repr=False)  # detection index in this frame

    @property
    def confirmed(self) -> bool:
        return self.track_id is not None


@dataclass(frozen=True)
class TrackEvent:
    kind: Literal["started", "reacquired", "ended"]
    track_id: int
    # "started" only: source time of the track's first box, the frames before it was confirmed
    # included (None: not known, e.g. a split). A customer last seen at or after it was in view
    # together with this one, so the two are different people.
    first_box_s: float | None = None


class MatchCost(Protocol):
    """Cost of giving detection ``candidates[j]`` to ``tracks[i]``; ``INFEASIBLE`` forbids it.
    ``boxes``/``classes``: every detection of the frame; ``appearances``: detection row -> colour
    appearance, for the rows that have a reliable one."""

    def __call__(self, tracks: list[_Track], candidates: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                 appearances: dict[int, np.ndarray], now_s: float) -> np.ndarray: ...


class IouCost:
    """1 - IoU with the predicted box (and, for a lost track, with the box where it was last seen),
    infeasible below ``match_iou`` or across classes."""

    def __init__(self, cfg: TrackerConfig):
        self.cfg = cfg

    def __call__(self, tracks, candidates, boxes, classes, appearances, now_s) -> np.ndarray:
        predicted = np.array([t.kalman.box for t in tracks])
        iou = iou_matrix(predicted, boxes[candidates], np.float64)
        lost = np.array([t.lost > 0 for t in tracks])
        if lost.any():
            last_seen = np.array([t.last_box for t in tracks])
            iou[lost] = np.maximum(iou[lost], iou_matrix(last_seen[lost], boxes[candidates], np.float64))
        same_class = np.array([t.class_id for t in tracks])[:, None] == classes[candidates][None, :]
        feasible = same_class & (iou >= self.cfg.match_iou)
        return np.where(feasible, 1.0 - iou, INFEASIBLE)


class IouAppearanceCost(IouCost):
    """IoU cost with DeepSORT's appearance rules (module docstring); among feasible pairs the
    appearance distance is added (half weight) so two people crossing keep their own ids."""

    APPEARANCE_WEIGHT = 0.5
    FAST_COST = 1.5  # a match by appearance and distance only: worse than any IoU match

    def __call__(self, tracks, candidates, boxes, classes, appearances, now_s) -> np.ndarray:
        cost = super().__call__(tracks, candidates, boxes, classes, appearances, now_s)
        self._fast_movers(cost, tracks, candidates, boxes, classes, appearances)
        cfg = self.cfg
        for i, track in enumerate(tracks):
            long_lost = track.lost > 0 and now_s - track.last_seen_s > cfg.iou_only_lost_s
            for j, row in enumerate(candidates):
                if cost[i, j] >= INFEASIBLE:
                    continue
                seen = appearances.get(int(row))
                if seen is None or track.appearance is None:
                    if long_lost:  # no evidence that this is the same person: start a new one
                        cost[i, j] = INFEASIBLE
                    continue
                d = colour.distance(track.appearance, seen)
                # In view last frame: refuse a stranger, i.e. a jump well beyond this track's own
                # frame-to-frame change, at most appearance_gate. Missed since (maybe because a
                # stranger was refused at its place): it must look like itself.
                if track.lost == 0:
                    limit = min(cfg.appearance_gate, max(MIN_ADAPTIVE_GATE, cfg.appearance_jump * track.usual_distance))
                else:
                    limit = cfg.reacquire_distance
                if d > limit:
                    cost[i, j] = INFEASIBLE
                else:
                    cost[i, j] += self.APPEARANCE_WEIGHT * d
        return cost


    def _fast_movers(self, cost, tracks, candidates, boxes, classes, appearances) -> None:
        """A customer crossing the camera in a second moves most of a box width per frame at
        10 fps: no overlap with the last box before the Kalman filter has learnt the velocity,
        so the track never gets its ``min_hits``. A box that does not overlap a track seen in the
        previous frame may still match it when it is within one box height of it, of a similar
        size (within 25 %), the same class, its appearance is within ``reacquire_distance`` and,
        once the track is seen moving, it lies ahead of the track, not behind it: a walker cannot
        turn and jump a box width back in one frame, but a stranger entering where the track walks
        out (head-on at a door, same dark clothes) stands exactly there."""
        cfg = self.cfg
        if not len(candidates):
            return
        cand = boxes[candidates]
        cand_centre = np.stack([(cand[:, 0] + cand[:, 2]) / 2, (cand[:, 1] + cand[:, 3]) / 2], axis=1)
        cand_height = cand[:, 3] - cand[:, 1]
        for i, track in enumerate(tracks):
            if track.lost or track.appearance is None:
                continue
            last = track.last_box
            height = max(last[3] - last[1], 1e-6)
            shift = np.hypot(cand_centre[:, 0] - (last[0] + last[2]) / 2, cand_centre[:, 1] - (last[1] + last[3]) / 2)
            ratio = cand_height / height
            near = (cost[i] >= INFEASIBLE) & (shift <= height) & (ratio >= 0.8) & (ratio <= 1.25) \
                & (classes[candidates] == track.class_id)
            velocity = track.kalman.mean[4:6]
            if np.hypot(*velocity) >= MOVING_SPEED * height:
                step = cand_centre - np.array([(last[0] + last[2]) / 2, (last[1] + last[3]) / 2])
                near &= step @ velocity > 0
            for j in np.nonzero(near)[0]:  # geometry first: the colour distance only where it may match
                seen = appearances.get(int(candidates[j]))
                if seen is None:
                    continue
                d = colour.distance(track.appearance, seen)
                if d <= cfg.reacquire_distance:
                    cost[i, j] = self.FAST_COST + d


class ByteTracker:
    """``update(detections, now_s, appearances) -> Detections`` of confirmed tracks with
    ``track_ids`` set; ``events()`` says which tracks started, came back or ended."""

    def __init__(self, cfg: TrackerConfig, cost: MatchCost | None = None):
        self.cfg = cfg
        self.cost = cost or (IouAppearanceCost(cfg) if cfg.appearance else IouCost(cfg))
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._events: list[TrackEvent] = []

    # -- public ------------------------------------------------------------------------------
    @property
    def active_ids(self) -> list[int]:
        """Confirmed tracks still alive (matched now or lost for at most max_lost_s)."""
        return [t.track_id for t in self._tracks if t.confirmed]

    def events(self) -> list[TrackEvent]:
        """What happened to confirmed tracks since the previous call (each event reported once)."""
        events, self._events = self._events, []
        return events

    def end_all(self) -> list[TrackEvent]:
        """End every track (source finished); returns the events not yet reported."""
        self._events.extend(TrackEvent("ended", t.track_id) for t in self._tracks if t.confirmed)
        self._tracks = []
        return self.events()

    def split(self, track_id: int) -> int | None:
        """End ``track_id`` and give its track a new id (it turned out to be someone else); the
        new id, or None if the track is not alive."""
        for track in self._tracks:
            if track.track_id == track_id:
                self._events.append(TrackEvent("ended", track_id))
                track.track_id = self._new_id()
                self._events.append(TrackEvent("started", track.track_id))
                return track.track_id
        return None

    def forget(self, track_id: int) -> bool:
        """Drop a confirmed track without an event (its customer continues on another track, so
        should the old one come back it must start a new customer, not take the same record
        twice). True if it was alive."""
        for track in self._tracks:
            if track.track_id == track_id:
                self._tracks.remove(track)
                return True
        return False

    def expected_boxes(self, now_s: float, max_lost_s: float) -> np.ndarray:
        """(n, 4) xyxy: where each confirmed track the whole-frame pass saw at most ``max_lost_s``
        ago is expected in the next frame (its Kalman prediction), for a second look where the
        detector found nobody (boxes marked ``data["second_look"]`` do not count as seen)."""
        boxes = [t.kalman.next_box() for t in self._tracks
                 if t.confirmed and now_s - t.frame_box_s <= max_lost_s + 1e-9]
        return np.array(boxes, np.float64).reshape(-1, 4)

    def appearance_of(self, track_id: int) -> np.ndarray | None:
        """The track's smoothed colour appearance (None without one, or for an unknown id)."""
        for track in self._tracks:
            if track.track_id == track_id:
                return track.appearance
        return None

    def update(self, detections: Detections, now_s: float,
               appearances: dict[int, np.ndarray] | None = None) -> Detections:
        """``now_s``: source time of the frame (seconds); ``appearances``: detection row -> colour
        appearance for the rows that have a reliable one (``appearance.describe_people``)."""
        cfg = self.cfg
        appearances = appearances or {}
        boxes = np.asarray(detections.xyxy, np.float64).reshape(-1, 4)
        scores = np.asarray(detections.scores, np.float64)
        classes = np.asarray(detections.class_ids, np.int64)
        second_look = detections.data.get(FROM_SECOND_LOOK)
        high = np.nonzero(scores >= cfg.high_score)[0]
        low = np.nonzero((scores >= cfg.low_score) & (scores < cfg.high_score))[0]

        for track in self._tracks:
            track.kalman.predict()
            track.matched_index = None
        confirmed = [t for t in self._tracks if t.confirmed]
        tentative = [t for t in self._tracks if not t.confirmed]

        # (1) high boxes <-> confirmed tracks, lost ones included.
        unmatched_high = self._associate(confirmed, high, boxes, classes, appearances, now_s)
        # (2) low boxes <-> confirmed tracks that were in view last frame and are still unmatched.
        in_view = [t for t in confirmed if t.matched_index is None and t.lost == 0]
        unmatched_low = self._associate(in_view, low, boxes, classes, appearances, now_s)
        # (3) remaining high boxes <-> tentative tracks.
        unmatched_high = self._associate(tentative, unmatched_high, boxes, classes, appearances, now_s)
        # (3b) remaining low boxes <-> tentative tracks still unmatched: a person half hidden behind
        # the counter scores 0.6, 0.3, 0.5, 0.4 ... frame after frame; the low box keeps the
        # tentative track alive without counting as a hit, so it is confirmed after min_hits
        # high-score boxes at the same place instead of waiting for min_hits in a row.
        waiting = [t for t in tentative if t.matched_index is None]
        self._associate(waiting, unmatched_low, boxes, classes, appearances, now_s)

        survivors: list[_Track] = []
        to_confirm: list[_Track] = []
        for track in self._tracks:
            if track.matched_index is not None:
                box = boxes[track.matched_index]
                if track.confirmed and track.lost and now_s - track.last_seen_s > cfg.iou_only_lost_s:
                    self._events.append(TrackEvent("reacquired", track.track_id))
                track.kalman.update(box)
                track.last_box = box
                track.last_seen_s = now_s
                if second_look is None or not second_look[track.matched_index]:
                    track.frame_box_s = now_s
                track.lost = 0
                seen = appearances.get(track.matched_index)
                if seen is not None:
                    if track.appearance is not None:
                        d = colour.distance(track.appearance, seen)
                        track.usual_distance = 0.8 * track.usual_distance + 0.2 * d
                    track.appearance = colour.blend(track.appearance, seen, cfg.appearance_momentum)
                if not track.confirmed:
                    if scores[track.matched_index] >= cfg.high_score:
                        track.hits += 1
                    if track.hits >= cfg.min_hits:
                        to_confirm.append(track)
                    elif now_s - track.born_s > cfg.max_lost_s:
                        continue  # never became sure enough to be a person: dropped
                survivors.append(track)
            elif track.confirmed:
                track.lost += 1
                if now_s - track.last_seen_s > cfg.max_lost_s:
                    self._events.append(TrackEvent("ended", track.track_id))
                else:
                    survivors.append(track)
            # an unmatched tentative track is dropped: it never was a person
        # A track that just earned its id may be a lost customer coming back where IoU could not
        # follow (behind another shopper, then out the other side): merge on appearance.
        for track in to_confirm:
            lost = self._merge_target(track, survivors, now_s)
            if lost is None:
                self._confirm(track)
            else:
                track.track_id = lost.track_id
                track.appearance = colour.blend(lost.appearance, track.appearance, cfg.appearance_momentum)
                survivors.remove(lost)
                self._events.append(TrackEvent("reacquired", track.track_id))
        # (4) new tentative tracks; min_hits == 1 confirms at once.
        for index in unmatched_high:
            track = _Track(BoxKalman(boxes[index]), int(classes[index]), boxes[index], now_s,
                           appearance=appearances.get(int(index)), born_s=now_s,
                           frame_box_s=now_s if second_look is None or not second_look[index] else -np.inf)
            track.matched_index = index
            if cfg.min_hits <= 1:
                self._confirm(track)
            survivors.append(track)
        self._tracks = survivors

        shown = [t for t in self._tracks if t.confirmed and t.matched_index is not None]
        shown.sort(key=lambda t: t.track_id)
        indices = np.array([t.matched_index for t in shown], dtype=np.int64)
        result = detections[indices]
        result.track_ids = np.array([t.track_id for t in shown], dtype=np.int64)
        return result

    # -- internals ---------------------------------------------------------------------------
    def _new_id(self) -> int:
        track_id = self._next_id
        self._next_id += 1
        return track_id

    def _merge_target(self, track: _Track, alive: list[_Track], now_s: float) -> _Track | None:
        """The lost confirmed track this new one continues (norfair's re-identification stage):
        same class, lost longer than ``iou_only_lost_s`` and before the new track's first box,
        appearance within ``reacquire_distance``, and within one person height of where it was
        predicted."""
        cfg = self.cfg
        if not cfg.appearance or track.appearance is None:
            return None
        box = track.last_box
        centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        best, best_distance = None, cfg.reacquire_distance
        for lost in alive:
            if not lost.confirmed or lost.matched_index is not None or lost.appearance is None \
                    or lost.class_id != track.class_id or now_s - lost.last_seen_s <= cfg.iou_only_lost_s \
                    or lost.last_seen_s >= track.born_s:  # both had a box in one frame: two people
                continue
            p = lost.kalman.box
            if np.hypot((p[0] + p[2]) / 2 - centre[0], (p[1] + p[3]) / 2 - centre[1]) > box[3] - box[1]:
                continue
            d = colour.distance(lost.appearance, track.appearance)
            if d <= best_distance:
                best, best_distance = lost, d
        return best

    def _confirm(self, track: _Track) -> None:
        track.track_id = self._new_id()
        self._events.append(TrackEvent("started", track.track_id, track.born_s))

    def _associate(self, tracks: list[_Track], candidates: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                   appearances: dict[int, np.ndarray], now_s: float) -> np.ndarray:
        """Match ``candidates`` (detection indices) to ``tracks``; sets ``matched_index`` on the
        matched tracks and returns the unmatched candidates."""
        candidates = np.asarray(candidates, dtype=np.int64)
        if not tracks or not len(candidates):
            return candidates
        cost = self.cost(tracks, candidates, boxes, classes, appearances, now_s)
        pairs, _, free = match(cost, max_cost=INFEASIBLE / 2)
        for row, col in pairs:
            tracks[row].matched_index = int(candidates[col])
        return candidates[free]
