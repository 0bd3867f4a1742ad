"""ByteTracker: synthetic trajectories (crossing, occlusion, low-score boxes, false positives)
and a real clip through the real YOLO detector."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from edge.config import TrackerConfig
from edge.detections import Detections
from edge.tracking import ByteTracker
from edge.tracking.assignment import min_cost_assignment
from edge.tracking.appearance import describe, describe_people, distance
from edge.boxes import iou_matrix

LABELS = ["person", "handbag"]


def dets(*boxes: tuple, labels=LABELS) -> Detections:
    """``dets((x1, y1, x2, y2, score[, class_id]), ...)``."""
    if not boxes:
        return Detections.empty(labels)
    xyxy = np.array([b[:4] for b in boxes], np.float32)
    scores = np.array([b[4] for b in boxes], np.float32)
    classes = np.array([b[5] if len(b) > 5 else 0 for b in boxes], np.int32)
    return Detections(xyxy, scores, classes, list(labels))


def person(cx: float, cy: float = 200, w: float = 60, h: float = 160, score: float = 0.9) -> tuple:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score)


def look(*colours_bgr) -> np.ndarray:
    """The colour appearance of a person wearing ``colours_bgr`` (upper, lower): a real
    edge.tracking.appearance descriptor of a painted 160 px person."""
    upper, lower = colours_bgr if len(colours_bgr) == 2 else (colours_bgr[0], colours_bgr[0])
    image = np.zeros((160, 60, 3), np.uint8)
    image[:80] = upper
    image[80:] = lower
    return describe(image, [0, 0, 60, 160])


GREY_SUIT = look((90, 90, 90), (60, 60, 60))
RED_DRESS = look((40, 40, 200))
BLUE_JEANS = look((240, 240, 240), (140, 60, 20))


class Stepper:
    """Feeds a tracker frames of a 10 fps camera (source time 0.0, 0.1, ...). Unless told
    otherwise every box has the same appearance (one outfit: matching falls back to IoU)."""

    def __init__(self, tracker: ByteTracker, fps: float = 10.0):
        self.tracker, self.fps, self.frame = tracker, fps, 0

    def __call__(self, detections: Detections, appearances=None) -> Detections:
        if appearances is None:
            appearances = {row: GREY_SUIT for row in range(len(detections))}
        result = self.tracker.update(detections, self.frame / self.fps, appearances)
        self.frame += 1
        return result


def ended(tracker: ByteTracker) -> list[int]:
    return [e.track_id for e in tracker.events() if e.kind == "ended"]


def ids_by_box(result: Detections) -> dict[float, int]:
    """Track id keyed by the detection's x1 (test trajectories never share an x1)."""
    return {round(float(b[0]), 3): int(t) for b, t in zip(result.xyxy, result.track_ids)}


# -- assignment ------------------------------------------------------------------------------

def test_assignment_is_optimal_against_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n_rows, n_cols = (int(n) for n in rng.integers(1, 6, size=2))
        cost = np.round(rng.random((n_rows, n_cols)), 1)  # ties on purpose
        rows, cols = min_cost_assignment(cost)
        assert len(rows) == min(n_rows, n_cols) and len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        if n_rows <= n_cols:
            best = min(sum(cost[r, c] for r, c in enumerate(p)) for p in itertools.permutations(range(n_cols), n_rows))
        else:
            best = min(sum(cost[r, c] for c, r in enumerate(p)) for p in itertools.permutations(range(n_rows), n_cols))
        assert cost[rows, cols].sum() == pytest.approx(best)


def test_greedy_would_fail_but_assignment_does_not():
    # Greedy takes (0,0)=0.1 then must take (1,1)=0.9: total 1.0; optimum is 0.2 + 0.3.
    cost = np.array([[0.1, 0.2], [0.3, 0.9]])
    rows, cols = min_cost_assignment(cost)
    assert list(zip(rows, cols)) == [(0, 1), (1, 0)]


def test_iou_matrix():
    iou = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    assert iou[0] == pytest.approx([1.0, 50 / 150, 0.0])


# -- synthetic trajectories ------------------------------------------------------------------

def test_two_people_crossing_keep_their_ids():
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    seen_a, seen_b = set(), set()
    for f in range(60):
        # A walks right, B walks left and is a little nearer the camera (bigger, lower box);
        # they overlap heavily around frame 30.
        a = person(100 + 8 * f, cy=200, w=60, h=160)
        b = person(580 - 8 * f + 0.5, cy=215, w=70, h=185)
        result = step(dets(a, b))
        by_box = ids_by_box(result)
        if f >= 2:
            assert len(result) == 2
            seen_a.add(by_box[round(a[0], 3)])
            seen_b.add(by_box[round(b[0], 3)])
    assert len(seen_a) == 1 and len(seen_b) == 1 and seen_a != seen_b
    assert sorted(seen_a | seen_b) == [1, 2]


def test_occlusion_for_ten_frames_keeps_the_id():
    tracker = ByteTracker(TrackerConfig(max_lost_s=3.0))
    step = Stepper(tracker)
    ids = []
    for f in range(50):
        hidden = 20 <= f < 30  # behind a rack: no box at all
        result = step(dets() if hidden else dets(person(100 + 6 * f)))
        if hidden:
            assert len(result) == 0  # only currently matched tracks are returned
            assert tracker.active_ids == [1]  # ... but the track is alive
        elif f >= 2:
            ids.append(int(result.track_ids[0]))
    assert set(ids) == {1}
    assert ended(tracker) == []


def test_reappearing_where_last_seen_after_stopping_keeps_the_id():
    # Walks, then stops behind a pillar; the Kalman velocity carries the prediction on, the
    # re-identification also compares the box where the person was last seen.
    tracker = ByteTracker(TrackerConfig(max_lost_s=3.0))
    step = Stepper(tracker)
    for f in range(20):
        step(dets(person(100 + 10 * f)))
    for _ in range(15):
        step(dets())
    result = step(dets(person(100 + 10 * 19 + 2)))
    assert list(result.track_ids) == [1]


def test_low_score_boxes_keep_the_track_through_partial_occlusion():
    def run(low_score: float) -> list[list[int]]:
        tracker = ByteTracker(TrackerConfig(low_score=low_score, high_score=0.5))
        step = Stepper(tracker)
        out = []
        for f in range(40):
            score = 0.3 if 15 <= f < 25 else 0.9  # half hidden: the detector is unsure
            out.append([int(t) for t in step(dets(person(100 + 5 * f, score=score))).track_ids])
        return out

    with_second = run(low_score=0.1)
    assert all(ids == [1] for ids in with_second[2:])  # matched in every frame, same id
    # Control: without the second association (low boxes discarded) those frames show nobody.
    without = run(low_score=0.4)
    assert all(ids == [] for ids in without[15:25])
    assert without[30] == [1]  # re-identified afterwards by the lost-track matching


def test_low_score_boxes_never_start_a_track():
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for f in range(10):
        assert len(step(dets(person(100 + f, score=0.3)))) == 0
    assert tracker.active_ids == []


def test_a_person_half_hidden_from_the_start_is_confirmed_on_high_and_low_boxes():
    # behind the counter the detector wavers: 0.6, 0.3, 0.6, 0.3 ... A tentative track waiting
    # for min_hits high boxes in a row would never start; low boxes at the same place keep it
    # alive (not counting as hits), so the third high box confirms it.
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    step = Stepper(tracker)
    shown = [list(step(dets(person(100 + 2 * f, score=0.6 if f % 2 == 0 else 0.3))).track_ids) for f in range(10)]
    assert shown[:4] == [[]] * 4  # high boxes at frames 0 and 2: two hits
    assert all(ids == [1] for ids in shown[4:])  # the third high box (frame 4) confirms; then every frame


def test_a_tentative_track_kept_only_by_low_boxes_is_dropped_after_max_lost_s():
    tracker = ByteTracker(TrackerConfig(min_hits=3, max_lost_s=1.0))
    step = Stepper(tracker)
    step(dets(person(100, score=0.9)))  # one sure box, then only unsure ones for 1.5 s
    for f in range(15):
        assert len(step(dets(person(100, score=0.3)))) == 0
    # the first track is gone: two more sure boxes are only two hits of a new tentative track
    assert len(step(dets(person(100, score=0.9)))) == 0
    assert len(step(dets(person(100, score=0.9)))) == 0
    assert list(step(dets(person(100, score=0.9))).track_ids) == [1]


def test_single_frame_false_positive_is_never_confirmed():
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    step = Stepper(tracker)
    for f in range(30):
        boxes = [person(100 + 4 * f)]
        if f == 10:
            boxes.append(person(500, score=0.95))  # a mannequin flickers for one frame
        if f in (20, 21):
            boxes.append(person(600, score=0.95))  # two frames: still below min_hits
        result = step(dets(*boxes))
        assert set(result.track_ids.tolist()) <= {1}
    assert tracker.active_ids == [1]


def test_min_hits_confirms_on_the_third_frame():
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    step = Stepper(tracker)
    counts = [len(step(dets(person(100 + 3 * f)))) for f in range(4)]
    assert counts == [0, 0, 1, 1]


def test_ended_after_max_lost_s_and_ids_are_never_reused():
    tracker = ByteTracker(TrackerConfig(max_lost_s=0.55))
    step = Stepper(tracker)
    for f in range(5):
        step(dets(person(100 + 3 * f)))
    ended_per_frame = []
    for f in range(7):
        step(dets())
        ended_per_frame.append(ended(tracker))
    # last seen at 0.4 s; 0.6 s after that (the 6th miss, t = 1.0 s) is past 0.55 s
    assert ended_per_frame[:5] == [[]] * 5 and ended_per_frame[5] == [1] and ended_per_frame[6] == []
    assert tracker.active_ids == []
    # The same place again: a new person, a new id.
    for f in range(3):
        result = step(dets(person(115)))
    assert list(result.track_ids) == [2]


def test_returned_boxes_are_the_detection_boxes_and_class_aware():
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    step = Stepper(tracker)
    box = person(200)
    bag = (*person(200)[:4], 0.9, 1)  # same pixels, other class: a separate track
    result = step(dets(box, bag))
    assert sorted(result.track_ids.tolist()) == [1, 2]
    result = step(dets((box[0] + 3, box[1], box[2] + 3, box[3], 0.8)))
    assert result.xyxy[0].tolist() == pytest.approx([box[0] + 3, box[1], box[2] + 3, box[3]])
    assert result.scores.tolist() == pytest.approx([0.8]) and result.labels == LABELS
    assert result.track_ids.tolist() == [1]  # the person, not the bag


def test_update_is_fast_with_a_crowd():
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    rng = np.random.default_rng(0)
    start = rng.uniform(0, 1200, size=(15, 2))
    t0 = time.perf_counter()
    for f in range(200):
        boxes = [person(x + 2 * f, cy=y) + () for x, y in start]
        boxes += [person(rng.uniform(0, 1200), score=0.3) for _ in range(5)]
        step(dets(*boxes))
    per_frame_ms = (time.perf_counter() - t0) / 200 * 1000
    assert per_frame_ms < 10, per_frame_ms


# -- identity between customers -------------------------------------------------------------

def test_a_different_person_at_the_same_spot_after_a_short_gap_is_a_new_customer():
    # The queue at the till: a woman in a red dress for 15 frames, 4 empty frames, then a man
    # in a grey suit 20 px away. IoU alone would hand him her id (and her garments and alerts).
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for _ in range(15):
        first = step(dets(person(300)), {0: RED_DRESS})
    for _ in range(4):
        step(dets())
    second = [step(dets(person(320)), {0: GREY_SUIT}) for _ in range(5)]
    assert list(first.track_ids) == [1]
    assert [list(r.track_ids) for r in second] == [[], [], [2], [2], [2]]  # confirmed as new after min_hits
    assert [e.kind for e in tracker.events()] == ["started", "started"]


def test_a_replacement_with_no_gap_at_all_is_refused_by_appearance():
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for _ in range(10):
        step(dets(person(300)), {0: RED_DRESS})
    results = [step(dets(person(305)), {0: BLUE_JEANS}) for _ in range(4)]
    assert [list(r.track_ids) for r in results] == [[], [], [2], [2]]


def test_the_same_person_back_after_an_occlusion_keeps_the_id_and_is_reacquired():
    tracker = ByteTracker(TrackerConfig(max_lost_s=3.0))
    step = Stepper(tracker)
    for f in range(10):
        step(dets(person(300 + f)), {0: RED_DRESS})
    tracker.events()
    for _ in range(12):  # 1.2 s behind a rail
        step(dets())
    slightly_different = 0.9 * RED_DRESS + 0.1 * GREY_SUIT  # other light, other pose
    assert distance(RED_DRESS, slightly_different) < TrackerConfig().reacquire_distance
    result = step(dets(person(312)), {0: slightly_different})
    assert list(result.track_ids) == [1]
    assert [(e.kind, e.track_id) for e in tracker.events()] == [("reacquired", 1)]


def test_a_long_lost_track_without_an_appearance_does_not_come_back():
    # An unreliable crop (too small, covered) gives no appearance: doubt resolves to a split.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for _ in range(10):
        step(dets(person(300)), {0: RED_DRESS})
    for _ in range(5):
        step(dets())
    results = [step(dets(person(300)), {}) for _ in range(3)]
    assert [list(r.track_ids) for r in results] == [[], [], [2]]


def test_a_lost_customer_reappearing_beside_where_iou_can_follow_is_merged_back():
    # The far one of two crossing people walks on behind the other and comes out 100 px further,
    # half covered at first (no appearance): a new tentative track, merged into the lost one on
    # appearance once it has one.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for f in range(10):
        step(dets(person(200 + 5 * f)), {0: RED_DRESS})
    tracker.events()
    for _ in range(8):
        step(dets())
    step(dets(person(345)), {})
    results = [step(dets(person(350 + 5 * f)), {0: RED_DRESS}) for f in range(3)]
    assert [list(r.track_ids) for r in results] == [[], [1], [1]]
    assert [(e.kind, e.track_id) for e in tracker.events()] == [("reacquired", 1)]
    # Somebody else there is a new customer.
    for _ in range(8):
        step(dets())
    results = [step(dets(person(420)), {0: BLUE_JEANS}) for _ in range(3)]
    assert list(results[-1].track_ids) == [2]


def test_a_look_alike_whose_first_box_shared_a_frame_with_the_lost_track_is_not_merged_into_it():
    # As above, but the new box shows up 120 px on while the first person still has a box in that
    # frame (then half hidden: low scores keep its tentative track waiting): two people, however
    # alike, so the new track gets its own id when confirmed.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for f in range(10):
        step(dets(person(200 + 5 * f)), {0: RED_DRESS})
    tracker.events()
    step(dets(person(250), person(370)), {0: RED_DRESS, 1: RED_DRESS})
    for f in range(3):
        step(dets(person(372 + 2 * f, score=0.3)), {})
    results = [step(dets(person(380 + 2 * f)), {0: RED_DRESS}) for f in range(3)]
    assert [list(r.track_ids) for r in results] == [[], [2], [2]]
    assert [(e.kind, e.track_id) for e in tracker.events()] == [("started", 2)]


def test_a_short_miss_is_bridged_on_iou_even_without_an_appearance():
    tracker = ByteTracker(TrackerConfig(iou_only_lost_s=0.25))
    step = Stepper(tracker)
    for _ in range(10):
        step(dets(person(300)), {0: RED_DRESS})
    step(dets())  # one missed frame (0.1 s)
    assert list(step(dets(person(302)), {}).track_ids) == [1]


def test_lost_window_is_in_seconds_not_frames():
    def lost_frames_until_end(fps: float) -> int:
        tracker = ByteTracker(TrackerConfig(max_lost_s=1.0))
        step = Stepper(tracker, fps=fps)
        for _ in range(5):
            step(dets(person(300)))
        for n in range(1, 200):
            step(dets())
            if ended(tracker):
                return n
        return -1

    assert lost_frames_until_end(10) == 11 and lost_frames_until_end(30) == 31


def test_split_gives_the_track_a_new_id():
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for _ in range(5):
        step(dets(person(300)))
    tracker.events()
    assert tracker.split(1) == 2 and tracker.split(99) is None
    assert [(e.kind, e.track_id) for e in tracker.events()] == [("ended", 1), ("started", 2)]
    assert list(step(dets(person(301))).track_ids) == [2]


def test_appearance_off_is_plain_iou():
    tracker = ByteTracker(TrackerConfig(appearance=False))
    step = Stepper(tracker)
    for _ in range(10):
        step(dets(person(300)), {0: RED_DRESS})
    assert list(step(dets(person(305)), {0: BLUE_JEANS}).track_ids) == [1]  # the swap IoU makes


# -- real clip -------------------------------------------------------------------------------

@pytest.mark.slow
def test_real_clip_counts_six_people(shared_dir, repo_dir):
    """``one-by-one-person-detection.mp4``: six people walk through one at a time (checked by
    eye on a contact sheet: grey cardigan, black jacket, blonde in black, black T-shirt, grey top,
    grey shirt). Every 2nd frame through YOLO11n-416 int8, default tracker settings with real colour appearances."""
    cv2 = pytest.importorskip("cv2")
    from edge.detect.yolo import YoloDetector

    cfg = TrackerConfig()
    detector = YoloDetector(
        shared_dir / "models/coco-yolo/yolo11n_full_integer_quant_416.tflite",
        manifest_path=repo_dir / "models/manifests/coco-yolo.json",
        conf=cfg.low_score,  # the second association needs the low boxes
    )
    tracker = ByteTracker(cfg)
    capture = cv2.VideoCapture(str(shared_dir / "media/one-by-one-person-detection.mp4"))
    spans: dict[int, list[int]] = {}
    frame_index = 0
    try:
        while True:
            if frame_index % 2:
                if not capture.grab():
                    break
            else:
                ok, frame = capture.read()
                if not ok:
                    break
                people = detector.detect(frame).with_label("person")
                rows = np.nonzero(people.scores >= cfg.high_score)[0]
                looks = describe_people(frame, people.xyxy, rows, cfg.appearance_min_height_px,
                                        cfg.appearance_max_overlap)
                tracks = tracker.update(people, frame_index / 10.0, looks)  # the clip is 10 fps
                for track_id in tracks.track_ids.tolist():
                    spans.setdefault(track_id, [frame_index, frame_index])[1] = frame_index
            frame_index += 1
    finally:
        capture.release()
    assert frame_index == 1394
    assert sorted(spans) == [1, 2, 3, 4, 5, 6], spans
    # One at a time: each person's span ends before the next one's begins, and each lasts seconds.
    ordered = [spans[i] for i in sorted(spans)]
    for (_, end), (start, _) in zip(ordered, ordered[1:]):
        assert end < start, spans
    assert all(end - start >= 50 for start, end in ordered), spans


def test_a_customer_crossing_in_a_second_gets_a_track():
    # 90 px a frame with a 60 px wide box: consecutive boxes never overlap.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    results = [step(dets(person(50 + 90 * f)), {0: RED_DRESS}) for f in range(10)]
    assert [list(r.track_ids) for r in results][2:] == [[1]] * 8
    # Without appearance agreement (somebody else appearing 90 px away) no such match.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    looks = [RED_DRESS, BLUE_JEANS, GREY_SUIT]
    results = [step(dets(person(50 + 90 * f)), {0: looks[f % 3]}) for f in range(6)]
    assert all(len(r) == 0 for r in results)


def test_a_stranger_entering_where_a_walker_walks_out_does_not_take_the_walkers_id():
    # The store walk's swap (frames 2356-2359): A walks right along a lane and out of a 960 px
    # view; B, dressed alike, enters there walking left. In the frame A's box is gone, B's box is
    # a box width behind A's last box: no overlap, but near, the same size and the same colours.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    a_ids, b_ids = set(), set()
    for f in range(60):
        boxes, who = [], []
        a_cx = 100 + 18 * f
        if a_cx - 26 < 960:  # A until wholly out; cut by the view's edge
            a = person(a_cx, cy=380, w=52, h=186)
            boxes.append((a[0], a[1], min(a[2], 960), a[3], 0.9))
            who.append("a")
        if f >= 46:  # B enters at the right edge walking left once A is almost out
            b = person(960 - 26 - 18 * (f - 46) - 60, cy=380, w=52, h=186)
            boxes.append(b)
            who.append("b")
        if f in (47, 48):  # A, half out, is missed the frames B shows up behind it
            boxes, who = [b for b, w in zip(boxes, who) if w != "a"], [w for w in who if w != "a"]
        result = step(dets(*boxes))
        for box, track_id in zip(result.xyxy, result.track_ids):
            owner = who[[round(float(b[0]), 3) for b in boxes].index(round(float(box[0]), 3))]
            (a_ids if owner == "a" else b_ids).add(int(track_id))
    assert a_ids == {1}
    assert b_ids and 1 not in b_ids


def test_a_walker_who_stops_and_turns_back_keeps_the_id():
    # The direction rule only refuses a jump of a box width backwards; turning round overlaps.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    xs = [100 + 12 * f for f in range(20)] + [100 + 12 * 19 - 6 * f for f in range(1, 20)]
    results = [step(dets(person(x))) for x in xs]
    assert {int(t) for r in results[2:] for t in r.track_ids} == {1}


def test_expected_boxes_are_the_next_predictions_of_confirmed_tracks_seen_recently():
    # What the second look (edge/detect/second_look.py) looks for: a walker moving 10 px a frame is
    # expected 10 px on; a tentative track is not expected; a track lost longer than asked is not.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for f in range(8):
        step(dets(person(100 + 10 * f), person(400, score=0.9) if f == 7 else person(1000 + 10 * f)))
    now = step.frame / step.fps - 1 / step.fps
    expected = tracker.expected_boxes(now, max_lost_s=1.0)
    assert len(expected) == 2  # the walker and the one at 1000+ (the box at 400 is one frame old)
    walker = expected[np.argmin(expected[:, 0])]
    assert (walker[0] + walker[2]) / 2 == pytest.approx(100 + 10 * 8, abs=3)
    for _ in range(5):  # nobody for half a second
        step(dets())
    now = step.frame / step.fps - 1 / step.fps
    assert len(tracker.expected_boxes(now, max_lost_s=1.0)) == 2
    assert len(tracker.expected_boxes(now, max_lost_s=0.3)) == 0


def test_boxes_of_a_second_look_keep_a_track_but_do_not_make_it_expected_longer():
    # A second look bridges a gap the whole-frame pass leaves; it cannot carry a track on its own
    # (a mannequin only a zoomed crop finds must not keep a customer in the store): after
    # max_lost_s of crop boxes only, the track is no longer looked for, though it is still tracked.
    tracker = ByteTracker(TrackerConfig())
    step = Stepper(tracker)
    for _ in range(5):
        step(dets(person(300)))
    ids = []
    for f in range(15):
        crop_box = dets(person(300))
        crop_box.data["second_look"] = np.array([True])
        ids.append(list(step(crop_box).track_ids))
        now = step.frame / step.fps - 1 / step.fps
        assert len(tracker.expected_boxes(now, max_lost_s=1.0)) == (1 if f < 10 else 0), f
    assert ids == [[1]] * 15
