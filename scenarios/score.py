"""Per-customer scores of one scenario run: identity and alerts.

* Frames: truth boxes and the pipeline's track boxes are matched one-to-one by IoU >= 0.3.
* ``id_switches``: times a customer's matched track id differs from the one matched before.
* ``idf1``: identity F1 (Ristani et al. 2016): the one-to-one customer <-> track pairing that
  maximises frames matched (IDTP); IDF1 = 2 IDTP / (truth boxes + track boxes).
* ``box_recall``: truth boxes matched by some track box; ``idf1_ceiling``: the IDF1 the same
  boxes would score if every person's tracks were one (2 matched / (truth + track boxes)): what
  the tracker and identity stage can reach at most; the rest is the detector's.
* Each track belongs to the customer it matched most often; ``merged_tracks``: tracks matched to
  two customers for at least ``MERGE_MIN_FRAMES`` frames each (one customer inherited another's).
* ``customers_counted``: tracks that lived at least ``min_dwell_s`` (the analytics' customers).
* Alerts per rule: a customer is *positive* when its photo's labels include the rule's garment
  (``RULE_TRUTH``); ``recall`` = positive customers with at least one alert of the rule /
  positive customers; ``precision`` = alerts of the rule whose customer is positive / alerts of
  the rule (a duplicate alert for the same positive customer is correct but also counted in
  ``duplicates``); the counts behind them: ``alerted`` (positive customers with an alert) and
  ``false_alerts`` (alerts whose customer is not positive).
* ``garment_precision``: settled garments of all tracks (mapped back to the photos' labels) that
  the track's customer really wears: a garment given to the wrong person lowers it.
* ``time_to_alert_s``: source time of a positive customer's first correct alert minus the time
  it was first wholly in view (first in view, for people cut by the frame edge all along).

Per truth person, across track ids (issue 21, ``visit_figures``; every scenario gets them):

* ``customers_truth``: people in view (first to last truth box, absences included) at least
  ``min_dwell_s``: what a perfect tracker's analytics would count. ``customers_counted_analytics``:
  the customers of the analytics windows the pipeline closed (the daemon's own count; None when
  the record holds no windows).
* An alert belongs to the person its track id matched most often (``Matching.owners``);
  ``alerts_unowned``: alerts of a track that matched nobody (or an id that never had a box).
* ``repeat_alerts``: per rule, alerts beyond the first of that rule for the same *person*, whatever
  track ids they came on (a person split into two tracks and alerted on both is one repeat).
* ``alerts_off_person``: alerts whose box has IoU < ``MATCH_IOU`` with their person's truth box in
  the alert's frame (or the person is not in that frame). An exit decision (``decided == "exit"``)
  is made after the person left, on the last box the track had: it is judged apart
  (``alerts_off_person_exit``) against the person's truth box in the last frame the track had a box;
  ``exit_alerts_not_on_person_at_alert_frame`` counts those whose box is not on the person in the
  frame the alert was published (usually the person is gone then: that is what an exit decision
  is). ``alerts_on_no_one``: alerts whose box overlaps no person at all (IoU < ``MATCH_IOU`` with
  every truth box of the judged frame). Hidden people (a scenario's ``all_truth``) count as there.
* ``first_alert_s`` per person and rule: first alert minus first time in view.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from edge.tracking.assignment import match, min_cost_assignment
from edge.boxes import iou_matrix

MATCH_IOU = 0.3
MERGE_MIN_FRAMES = 3
RULE_TRUTH = {"dress": "dress", "outwear": "jacket"}  # rule -> garment label in the photos


@dataclass
class RunRecord:
    """What the pipeline did on a scenario (filled by ``run.run_scenario``)."""

    fps: float
    tracks: dict[int, list[tuple[int, int, np.ndarray]]] = field(default_factory=lambda: defaultdict(list))
    alerts: list[dict] = field(default_factory=list)  # {track_id, rule, source_time_s, decided}
    classifier_calls: int = 0
    scans: int = 0
    frames: int = 0
    track_spans: dict[int, list[float]] = field(default_factory=dict)  # track -> [first, last] seconds
    settled: dict[int, set[str]] = field(default_factory=dict)  # track -> settled garments (photo labels)
    windows: list[dict] = field(default_factory=list)  # analytics windows the pipeline closed


@dataclass
class Matching:
    """Truth boxes matched to track boxes frame by frame (IoU >= ``MATCH_IOU``, one-to-one)."""

    pair_frames: Counter  # (customer, track) -> frames matched
    matched_sequence: dict[int, list[int]]  # customer -> track matched in each frame, in order
    first_full: dict[int, float]  # customer -> first time wholly in view (s)
    first_seen: dict[int, float]  # customer -> first time in view (s)
    truth_boxes: int
    track_boxes: int

    def owners(self) -> dict[int, int]:
        """Track -> the customer it matched most often."""
        by_track: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for (c, t), n in self.pair_frames.items():
            by_track[t].append((n, c))
        return {t: max(options)[1] for t, options in by_track.items()}


def match_tracks(scenario, record: RunRecord, min_iou: float = MATCH_IOU) -> Matching:
    fps = scenario.fps
    pair_frames: Counter = Counter()
    truth_boxes = track_boxes = 0
    matched_sequence: dict[int, list[int]] = defaultdict(list)
    first_full: dict[int, float] = {}
    first_seen: dict[int, float] = {}
    per_frame_tracks: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
    for track_id, items in record.tracks.items():
        for index, _, box in items:
            per_frame_tracks[index].append((track_id, box))
    for index in range(scenario.n_frames):
        truth = scenario.truth(index)
        for t in truth:
            first_seen.setdefault(t.customer, index / fps)
            if t.full:
                first_full.setdefault(t.customer, index / fps)
        tracks = per_frame_tracks.get(index, [])
        truth_boxes += len(truth)
        track_boxes += len(tracks)
        if not truth or not tracks:
            continue
        iou = iou_matrix(np.array([t.box for t in truth]), np.array([b for _, b in tracks]), np.float64)
        pairs, _, _ = match(1.0 - iou, max_cost=1.0 - min_iou)
        for r, c in pairs:
            customer, track_id = truth[r].customer, tracks[c][0]
            pair_frames[(customer, track_id)] += 1
            matched_sequence[customer].append(track_id)
    return Matching(pair_frames, matched_sequence, first_full, first_seen, truth_boxes, track_boxes)


def score(scenario, record: RunRecord, min_dwell_s: float) -> dict:
    m = match_tracks(scenario, record)
    pair_frames, matched_sequence, first_full, first_seen = m.pair_frames, m.matched_sequence, m.first_full, m.first_seen
    truth_boxes, track_boxes = m.truth_boxes, m.track_boxes

    switches = sum(sum(1 for a, b in zip(seq, seq[1:]) if a != b) for seq in matched_sequence.values())
    customers = sorted(scenario.customers)
    track_ids = sorted({t for _, t in pair_frames})
    idtp = 0
    if customers and track_ids:
        gain = np.zeros((len(customers), len(track_ids)))
        for (c, t), n in pair_frames.items():
            gain[customers.index(c), track_ids.index(t)] = n
        rows, cols = min_cost_assignment(-gain)
        idtp = int(gain[rows, cols].sum())
    idf1 = 2 * idtp / max(truth_boxes + track_boxes, 1)
    matched = sum(pair_frames.values())

    owner = m.owners()
    by_track: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (c, t), n in pair_frames.items():
        by_track[t].append((n, c))
    merged = sum(1 for options in by_track.values() if sum(n >= MERGE_MIN_FRAMES for n, _ in options) >= 2)
    counted = sum(1 for first, last in record.track_spans.values() if last - first >= min_dwell_s)

    rules: dict[str, dict] = {}
    for rule, garment in RULE_TRUTH.items():
        positives = {c for c, garments in scenario.customers.items() if garment in garments}
        alerts = [a for a in record.alerts if a["rule"] == rule]
        correct = [a for a in alerts if owner.get(a["track_id"]) in positives]
        alerted = {owner[a["track_id"]] for a in correct}
        first_alert: dict[int, float] = {}
        for a in sorted(correct, key=lambda a: a["source_time_s"]):
            first_alert.setdefault(owner[a["track_id"]], a["source_time_s"])
        delays = [first_alert[c] - first_full.get(c, first_seen.get(c, first_alert[c])) for c in first_alert]
        rules[rule] = {
            "positives": len(positives),
            "alerts": len(alerts),
            "recall": round(len(alerted) / len(positives), 3) if positives else None,
            "precision": round(len(correct) / len(alerts), 3) if alerts else None,
            "duplicates": len(correct) - len(alerted),
            "alerted": len(alerted),
            "false_alerts": len(alerts) - len(correct),
            "time_to_alert_p50_s": round(float(np.median(delays)), 2) if delays else None,
            "decided": dict(Counter(a["decided"] for a in alerts)),
        }
    visits, _ = visit_figures(scenario, record, m, min_dwell_s)
    settled_total = sum(len(labels) for t, labels in record.settled.items() if t in owner)
    settled_right = sum(len(labels & scenario.customers[owner[t]]) for t, labels in record.settled.items() if t in owner)
    return {
        "scenario": scenario.name,
        "frames": scenario.n_frames,
        "customers": len(customers),
        "customers_counted": counted,
        "tracks": len(record.track_spans),
        "id_switches": switches,
        "idf1": round(idf1, 3),
        "box_recall": round(matched / max(truth_boxes, 1), 3),
        "idf1_ceiling": round(2 * matched / max(truth_boxes + track_boxes, 1), 3),
        "merged_tracks": merged,
        "garment_precision": round(settled_right / settled_total, 3) if settled_total else None,
        "rules": rules,
        "calls_per_customer": round((record.classifier_calls + record.scans) / max(len(customers), 1), 1),
        **visits,
    }


def _truth_everyone(scenario, index: int):
    """Truth boxes of a frame including people hidden behind others (``all_truth`` where a
    scenario leaves hidden people out of ``truth``)."""
    return getattr(scenario, "all_truth", scenario.truth)(index)


def _alert_box_check(scenario, record: RunRecord, alert: dict, person: int | None,
                     last_box_frame: dict[int, list[int]]) -> dict | None:
    """Where an alert's box is: IoU with its person's truth box and with anyone's, in the frame
    it is judged in (see the module doc). None when the record has no box for it."""
    box, index = alert.get("box"), alert.get("frame_index")
    if box is None or index is None:
        return None
    exit_decision = alert.get("decided") == "exit"
    judged = index
    if exit_decision:  # the last frame at or before the alert in which the track had a box
        frames = [f for f in last_box_frame.get(alert["track_id"], []) if f <= index]
        judged = max(frames) if frames else index

    def ious(frame_index: int) -> tuple[float, float]:
        truth = _truth_everyone(scenario, frame_index)
        if not truth:
            return 0.0, 0.0
        iou = iou_matrix(np.array([box], np.float64), np.array([t.box for t in truth]), np.float64)[0]
        own = [float(v) for v, t in zip(iou, truth) if t.customer == person]
        return (own[0] if own else 0.0), float(iou.max())

    own_iou, any_iou = ious(judged)
    return {"exit": exit_decision, "judged_frame": judged, "iou": round(own_iou, 3), "any_iou": round(any_iou, 3),
            "iou_at_alert_frame": round(ious(index)[0], 3) if exit_decision else round(own_iou, 3)}


def visit_figures(scenario, record: RunRecord, matching: Matching, min_dwell_s: float) -> tuple[dict, list[dict]]:
    """Figures per truth person across track ids (module doc): (summary, one row per person)."""
    fps = scenario.fps
    owner = matching.owners()
    spans: dict[int, list[int]] = {}
    for index in range(scenario.n_frames):
        for t in scenario.truth(index):
            spans.setdefault(t.customer, [index, index])[1] = index
    customers_truth = sum(1 for a, b in spans.values() if (b - a) / fps >= min_dwell_s)
    frames_of = {t: sorted(index for index, _, _ in items) for t, items in record.tracks.items()}

    per_person_alerts: dict[int, list[dict]] = defaultdict(list)
    unowned: Counter = Counter()
    checks = []
    for alert in sorted(record.alerts, key=lambda a: (a["source_time_s"], a.get("frame_index") or 0)):
        person = owner.get(alert["track_id"])
        if person is None:
            unowned[alert["rule"]] += 1
        else:
            per_person_alerts[person].append(alert)
        check = _alert_box_check(scenario, record, alert, person, frames_of)
        if check is not None:
            checks.append({"rule": alert["rule"], "track_id": alert["track_id"], "person": person,
                           "frame_index": alert["frame_index"], "decided": alert.get("decided"), **check})

    rules = sorted({a["rule"] for a in record.alerts})
    repeats = {rule: sum(max(0, sum(a["rule"] == rule for a in alerts) - 1) for alerts in per_person_alerts.values())
               for rule in rules}
    off = [c for c in checks if c["iou"] < MATCH_IOU]
    rows = []
    for person in sorted(scenario.customers):
        tracks = sorted(t for t, c in owner.items() if c == person)
        counted = [t for t in tracks if t in record.track_spans
                   and record.track_spans[t][1] - record.track_spans[t][0] >= min_dwell_s]
        alerts = per_person_alerts.get(person, [])
        first_seen = matching.first_seen.get(person, 0.0)
        first_alert: dict[str, float] = {}
        for a in alerts:
            first_alert.setdefault(a["rule"], round(a["source_time_s"] - first_seen, 2))
        rows.append({"person": person, "tracks": tracks, "counted_tracks": len(counted),
                     "alerts": dict(Counter(a["rule"] for a in alerts)),
                     "alert_tracks": {rule: sorted({a["track_id"] for a in alerts if a["rule"] == rule})
                                      for rule in sorted({a["rule"] for a in alerts})},
                     "first_alert_s": first_alert,
                     "off_person": sum(1 for c in off if c["person"] == person)})
    summary = {
        "customers_truth": customers_truth,
        "customers_counted_analytics": sum(w["customers"] for w in record.windows) if record.windows else None,
        "repeat_alerts": repeats,
        "repeat_alerts_total": sum(repeats.values()),
        "alerts_unowned": dict(unowned),
        "alerts_box_checked": len(checks),
        "alerts_off_person": sum(1 for c in off if not c["exit"]),
        "alerts_off_person_exit": sum(1 for c in off if c["exit"]),
        "exit_alerts_not_on_person_at_alert_frame": sum(1 for c in checks if c["exit"]
                                                        and c["iou_at_alert_frame"] < MATCH_IOU),
        "alerts_on_no_one": sum(1 for c in checks if c["any_iou"] < MATCH_IOU),
        "off_person_alerts": off,
    }
    return summary, rows
