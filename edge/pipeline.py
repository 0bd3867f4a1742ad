"""Per-camera processing: frame -> detections -> tracks -> customers -> garment votes -> alerts + analytics.

``CameraPipeline.process(frame)`` is pure processing with no I/O besides the models and the
analytics SQLite file; it returns what happened in that frame (``FrameResult``). The daemon
(``edge.daemon``) feeds it frames and turns results into MQTT messages. The benchmark runs the
same class, so the figures in docs/performance.md measure the code the store runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .alerts import Alert
from .analytics import Analytics
from .attributes.votes import attribute_votes, garments_only
from .config import CameraConfig, Config
from .consensus import TIME_EPS
from .customer import Customer, Customers
from .customer_events import (CustomerAlerted, CustomerEnded, CustomerEvent, CustomerEventSink, CustomerIsStaff,
                              CustomerMerged, CustomerSeen, CustomerSettled, CustomerStarted)
from .detections import Detections
from .errors import ConfigError, ModelError
from .identity.gallery import View, split_limit
from .motion import DetectionGate, build_gate
from .garments import GarmentNaming, crop_weight, foot_point, garment_crops
from .rules import RuleEngine, point_in_polygon
from .preprocess import person_box_with_margin
from .scheduler import ScanRequest, ScanScheduler
from .sources import Frame
from .stages import Models, PersonTracker, build_tracker
from .stats import StageTimer
from .tracking import appearance
from .tracking.bytetrack import TrackEvent

log = logging.getLogger(__name__)


@dataclass
class FrameResult:
    frame: Frame
    tracks: Detections
    alerts: list[Alert] = field(default_factory=list)
    closed_windows: list[dict] = field(default_factory=list)
    classified: int = 0  # classifier calls in this frame
    scanned: int = 0  # customers whose garments were looked at in this frame
    scan_budget_ms: float | None = None  # this frame's scan budget (None: no limit)
    detected: bool = True  # the person detector ran on this frame (not skipped by the idle gate)


class CameraPipeline:
    """Everything that happens to one camera's frames, in order. The stages (``models``, ``tracker``)
    are used through their interfaces (``edge.stages``): the defaults are what the daemon runs."""

    def __init__(self, config: Config, camera: CameraConfig, models: Models | None = None,
                 state_dir: Path | None = None, timer: StageTimer | None = None,
                 customer_sinks: list[CustomerEventSink] = (), tracker: PersonTracker | None = None,
                 gate: DetectionGate | None = None):
        self.config = config
        self.camera = camera
        self.models = models or Models(config, camera)
        self.timer = timer or StageTimer()
        self.tracker = tracker or build_tracker(config)
        det = config.detector
        self.gate = gate or build_gate(det.idle_interval_s, det.motion_threshold, det.motion_min_area)
        self._in_view = False  # the tracker showed somebody in the previous frame
        # the embedding's unit and thresholds come with the reader that makes it (through the
        # re-identification head or not)
        reader = self.models.attributes
        self.customers = Customers(config.consensus, config.identity, getattr(reader, "identity_calibration", None))
        self.identity = self.customers.identity
        self.scheduler = ScanScheduler(config.consensus, fps_cap=camera.fps_cap)
        self.rules = RuleEngine(config.rules, camera.name)
        state_dir = state_dir or config.state_dir()
        state_dir.mkdir(parents=True, exist_ok=True)
        self.analytics = Analytics(
            state_dir / "analytics.sqlite",
            site=config.site,
            camera=camera.name,
            window_s=config.analytics.window_s,
            min_dwell_s=config.analytics.min_dwell_s,
        )
        # Who hears what happens to customers: the analytics, and whatever else the caller adds.
        self.customer_sinks: list[CustomerEventSink] = [self.analytics, *customer_sinks]
        # The camera's named zones in pixels: a customer's sightings say which ones their feet are in.
        self.zones = {name: camera.zone_polygon(name) for name in camera.zones}
        # Where people walk in and out mid-floor (doors, stairs): the identity stage's view
        self.entrances = tuple(tuple(map(tuple, self.zones[name])) for name in camera.entrances)
        # Where person boxes are not people (mannequins, mirrors, posters): dropped before tracking
        self.not_people = frozenset(camera.not_people)
        # Where only staff stand: whoever is seen there is staff, no customer
        self.staff_zones = frozenset(camera.staff_only)
        self.keep_pictures = config.snapshots.enabled  # privacy: pixels are kept only for opted-in pictures
        person = config.detector.person_label
        labels = self.models.detector.labels
        if person not in labels:
            raise ModelError(f"detector has no {person!r} class (detector.person_label)", path=config.detector.model)
        mode = config.garments.mode
        has_garment_detector = self.models.garment_detector is not None
        if mode == "detector" and not has_garment_detector:
            raise ConfigError("no garment detector: set garments.detector, or use mode auto or body_regions",
                              field="garments.mode")
        self.use_garment_boxes = has_garment_detector and mode != "body_regions"
        self.naming = GarmentNaming(config.garments.refinements, self.models.classifier.labels)
        self.last_timestamp: float | None = None
        self.last_frame: Frame | None = None

    # -- one frame -------------------------------------------------------------------------
    def process(self, frame: Frame) -> FrameResult:
        timer = self.timer
        t0 = time.perf_counter()
        clock = self._clock(frame)
        detected = self.gate.should_detect(frame.image, clock, self._in_view)
        if detected:
            persons = self.models.detector.detect(frame.image).with_label(self.config.detector.person_label)
            persons = self._second_look(frame, persons, clock)
            persons = self._only_people(persons)
            self.gate.detected(frame.image, clock, len(persons) > 0)
        else:  # nobody in view and nothing moved: what the detector would find is nobody
            persons = Detections.empty(self.models.detector.labels)
        t1 = time.perf_counter()
        timer.add("detect", t1 - t0)

        tracks = self._track(frame, persons)
        self._in_view = len(tracks) > 0
        t2 = time.perf_counter()
        timer.add("track", t2 - t1)

        self.last_timestamp, self.last_frame = frame.timestamp, frame
        alerts = self._follow_customers(self.tracker.events(), frame, tracks)  # + exit decisions
        budget = self._scan_budget(frame, (t2 - t0) * 1000.0)
        scanned, classified = self._scan(frame, tracks, budget)
        t3 = time.perf_counter()
        if scanned:
            timer.add("garments", t3 - t2)  # garment detection on person crops + classification

        alerts += self._split_contradicted(frame, tracks)  # the old customer leaves: exit decisions
        alerts += self._evaluate_rules(frame, tracks)
        self.customers.gallery.forget_expired(frame.timestamp)
        closed = self.analytics.poll(frame.timestamp)
        t4 = time.perf_counter()
        timer.add("rules+analytics", t4 - t3)
        timer.add("total", t4 - t0)
        return FrameResult(frame, self._as_customers(tracks), alerts, closed, classified, scanned, budget, detected)

    def _as_customers(self, tracks: Detections) -> Detections:
        """The frame's tracks labelled with their customer ids (a returning customer keeps its id
        while the tracker follows them on a new track): what the web page, metrics and scores see."""
        shown = tracks[np.arange(len(tracks))]
        shown.track_ids = np.array([self._customer_id(int(t)) for t in tracks.track_ids], np.int64)
        return shown

    def _customer_id(self, track_id: int) -> int:
        customer = self.customers.get(track_id)
        return customer.id if customer is not None else track_id

    def _second_look(self, frame: Frame, persons: Detections, clock: float) -> Detections:
        """The whole-frame boxes plus those found in crops around the people the tracker expects
        and the whole frame missed (edge/detect/second_look.py)."""
        second_look = getattr(self.models, "second_look", None)  # a test's stub models may have none
        if second_look is None:
            return persons
        expected = self.tracker.expected_boxes(clock, self.config.detector.second_look.lost_s)
        return second_look.look(frame.image, persons, expected)

    def _only_people(self, persons: Detections) -> Detections:
        """The person boxes without those whose feet lie in one of the camera's ``not_people``
        zones (a mannequin, a reflection): before the tracker, so they never become customers, and
        before the motion gate, so a window of mannequins is not somebody in view."""
        if not self.not_people or len(persons) == 0:
            return persons
        keep = np.array([not self._zones_of(box) & self.not_people for box in persons.xyxy], bool)
        return persons if keep.all() else persons[keep]

    # -- tracking and customers ----------------------------------------------------------------
    def _track(self, frame: Frame, persons: Detections) -> Detections:
        """Track people; colour appearance only for the boxes that can form or match a track."""
        cfg = self.config.tracker
        looks = {}
        if cfg.appearance:
            rows = np.nonzero(persons.scores >= cfg.high_score)[0]
            looks = appearance.describe_people(frame.image, persons.xyxy, rows, cfg.appearance_min_height_px,
                                               cfg.appearance_max_overlap)
        return self.tracker.update(persons, self._clock(frame), looks)

    @staticmethod
    def _clock(frame: Frame) -> float:
        """Source time for the tracker: seconds into a file, capture time for a live camera."""
        return frame.source_time_s if frame.source_time_s is not None else frame.timestamp

    def _follow_customers(self, events: list[TrackEvent], frame: Frame, tracks: Detections) -> list[Alert]:
        """Apply tracker events to the customer records; alerts decided at a customer's exit."""
        alerts: list[Alert] = []
        ts = frame.timestamp
        for event in events:
            if event.kind == "started":
                # the track's first box, in the frames' clock (the tracker counts source time)
                first_box_at = None if event.first_box_s is None else ts - (self._clock(frame) - event.first_box_s)
                started = self.customers.start(event.track_id, ts, first_box_at)
                self._emit(CustomerStarted(started.id, ts))
            elif event.kind == "reacquired":
                self.customers.reacquire(event.track_id)
            else:
                alerts += self._end_customer(event.track_id, frame)
        for box, track_id in zip(tracks.xyxy, tracks.track_ids):
            customer = self.customers.get(int(track_id))
            if customer is not None:
                customer.saw(ts, box)
                if self.keep_pictures:
                    customer.last_picture = self._picture(frame, box)
                zones = self._zones_of(box)
                if zones & self.staff_zones:
                    self._mark_staff(customer, ts)
                self._emit_for(customer, CustomerSeen(customer.id, ts, zones))
        return alerts

    def _mark_staff(self, customer: Customer, ts: float) -> None:
        """The customer was seen where only staff stand: staff from now on (the record keeps it,
        also when the person comes back within the gallery's memory). The analytics withdraw them;
        an alert they had before reaching the zone stays sent."""
        if not customer.staff:
            customer.staff = True
            self._emit(CustomerIsStaff(customer.id, ts))
            log.info("customer #%d was seen in a staff-only zone: staff, not counted or alerted", customer.id)

    def _emit_for(self, customer: Customer, event: CustomerEvent) -> None:
        """An event about ``customer``; nothing about a member of staff reaches the sinks."""
        if not customer.staff:
            self._emit(event)

    def _emit(self, event: CustomerEvent) -> None:
        for sink in self.customer_sinks:
            sink.record(event)

    def _zones_of(self, box: np.ndarray) -> frozenset[str]:
        """The named zones the person's feet (bottom centre of the box) are in."""
        if not self.zones:
            return frozenset()
        feet = foot_point(box)
        return frozenset(name for name, polygon in self.zones.items() if point_in_polygon(feet, polygon))

    def _end_customer(self, track_id: int, frame: Frame) -> list[Alert]:
        customer, _ = self.customers.end(track_id)
        if customer is None:
            return []
        alerts = []
        if customer.votes.settled_by_slot() and customer.box is not None:
            # A customer who crossed quickly is decided with what was gathered (the exit rule);
            # one whose rule waited on an 'unless' garment that never settled is released. The
            # alert says 'exit' and carries the last box the person had (they are gone now).
            alerts = self._rules_for(customer, customer.box, frame, at_exit=True)
        customer.last_picture = None  # the customer left: no pixels of them are kept
        self._emit_for(customer, CustomerEnded(customer.id, frame.timestamp))
        return alerts

    @staticmethod
    def _picture(frame: Frame, box: np.ndarray) -> np.ndarray | None:
        """A copy of the person's pixels (the frame buffer may be reused by the source)."""
        h, w = frame.image.shape[:2]
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        return frame.image[y1:y2, x1:x2].copy() if x2 > x1 and y2 > y1 else None

    def _split_contradicted(self, frame: Frame, tracks: Detections) -> list[Alert]:
        """A re-acquired customer whose garments no longer agree *and* who looks different is
        somebody else: a new customer. Garments alone change when a person turns round or opens
        a jacket, so when the appearance since the re-acquisition is close to the customer's
        (or there is none to compare) the customer is kept."""
        alerts: list[Alert] = []
        for row, track_id in enumerate(tracks.track_ids):
            customer = self.customers.get(int(track_id))
            if customer is None or customer.since_reacquired is None:
                continue
            votes = customer.votes
            if not votes.contradicted:
                if not votes.verifying:
                    self.customers.settle_verification(customer)  # the same person: done
                continue
            since = customer.since_reacquired
            if not self._looks_different(since, customer.appearance):
                log.info("customer #%d re-acquired with other garments but the same appearance: kept", customer.id)
                votes.end_verification()
                self.customers.settle_verification(customer)
                continue
            # Somebody else: the old customer leaves with its own last box and time.
            customer.since_reacquired = None
            customer.box, customer.last_seen = customer.box_before_reacquired, customer.seen_before_reacquired
            new_id = self.tracker.split(customer.track_id)
            if new_id is not None:
                log.info("customer #%d re-acquired with other garments and appearance: now customer #%d",
                         customer.id, new_id)
                tracks.track_ids[row] = new_id
                alerts += self._follow_customers(self.tracker.events(), frame, tracks[[row]])
                newcomer = self.customers.get(new_id)
                if newcomer is not None:
                    newcomer.appearance = since
        return alerts

    def _looks_different(self, seen, known) -> bool:
        """Strong evidence of another person: the closest views are farther than the split distance."""
        found = seen.distance(known)
        if found is None:
            return False
        kind, d = found
        return d >= split_limit(self.identity, kind)

    def _recognise(self, customer: Customer, ts: float, frame_size: tuple[int, int]) -> Customer:
        """A new customer's first readings are compared with recent customers (the gallery, and
        those whose track is lost): a match continues that customer instead (same id, its rules
        already fired stay fired). Returns the customer the track follows now."""
        cfg = self.identity
        if not cfg.enabled or customer.votes.looks > cfg.match_readings or customer.track_id != customer.id \
                or customer.reacquired:
            return customer
        view = View(frame_size[0], frame_size[1], self.entrances)
        found = self.customers.gallery.find(customer, self.customers.lost(ts), view)
        if found is None:
            return customer
        known, kind, d = found
        self.tracker.forget(known.track_id)  # its old track, if still alive, must not take it twice
        self._emit(CustomerMerged(customer.id, into=known.id))
        known = self.customers.continue_customer(customer, known)
        if customer.staff:  # the newcomer was seen in a staff zone before it was recognised
            self._mark_staff(known, ts)
        self._emit_for(known, CustomerSeen(known.id, ts))
        log.info("track %d is customer #%d coming back (%s distance %.3f)", known.track_id, known.id, kind, d)
        return known

    # -- garments ------------------------------------------------------------------------------
    def _scan_budget(self, frame: Frame, spent_ms: float) -> float | None:
        live = frame.source_time_s is None
        if live:
            self.scheduler.observe(frame.timestamp)
        return self.scheduler.budget_ms(live, spent_ms)

    def _scan(self, frame: Frame, tracks: Detections, budget_ms: float | None) -> tuple[int, int]:
        """Look at the garments of the customers who need it most, within the budget; returns
        (customers scanned, classifier calls)."""
        ts = frame.timestamp
        requests = []
        for row, (box, track_id) in enumerate(zip(tracks.xyxy, tracks.track_ids)):
            customer = self.customers.get(int(track_id))
            if customer is None or not customer.wants_scan:
                continue
            if customer.last_scan is not None \
                    and ts - customer.last_scan < customer.scan_interval_s(self.config.consensus) - TIME_EPS:
                continue
            requests.append(ScanRequest(customer, row, box))
        chosen = self.scheduler.choose(requests, budget_ms, frame.image.shape)
        if not chosen:
            return 0, 0
        t0 = time.perf_counter()
        calls = self._vote_on_garments(frame, tracks, chosen)
        self.scheduler.spent(len(chosen), (time.perf_counter() - t0) * 1000.0, limited=budget_ms is not None)
        t1 = time.perf_counter()
        for request in chosen:
            customer = request.customer
            customer.last_scan = ts
            customer.views_now.add_colour(self.tracker.appearance_of(customer.track_id))
            self._recognise(customer, ts, frame.image.shape[:2])
        self.timer.add("identity", time.perf_counter() - t1)  # part of 'garments' (the embedding comes free)
        return len(chosen), calls

    def _garments_on_persons(self, frame: Frame, rows: list[int], tracks: Detections) -> Detections:
        """Run the garment detector on each chosen person crop; boxes in frame pixels, and in
        ``data["origin"]`` the row of the person whose crop each box came from."""
        detector = self.models.garment_detector
        found = []
        for row in rows:
            x1, y1, x2, y2 = (int(v) for v in tracks.xyxy[row])
            garments = detector.detect(frame.image[max(0, y1):y2, max(0, x1):x2]).with_label(*detector.garment_labels)
            garments.xyxy[:, [0, 2]] += max(0, x1)
            garments.xyxy[:, [1, 3]] += max(0, y1)
            garments.data["origin"] = np.full(len(garments), row, np.int64)
            found.append(garments)
        if not found:
            empty = Detections.empty(detector.labels)
            empty.data["origin"] = np.zeros(0, np.int64)
            return empty
        return Detections(np.concatenate([g.xyxy for g in found]), np.concatenate([g.scores for g in found]),
                          np.concatenate([g.class_ids for g in found]), detector.labels,
                          data={"origin": np.concatenate([g.data["origin"] for g in found])})

    def _vote_on_garments(self, frame: Frame, tracks: Detections, chosen: list[ScanRequest]) -> int:
        rows = [request.row for request in chosen]
        by_row = {request.row: request.customer for request in chosen}
        if self.use_garment_boxes:
            t0 = time.perf_counter()
            garments = self._garments_on_persons(frame, rows, tracks)
            self.timer.add("garment_detect", time.perf_counter() - t0)  # part of 'garments'
            # Ownership is judged against every tracked person, not only the scanned ones.
            crops = garment_crops(frame.image, tracks, garments, self.config.garments)
        else:
            crops = garment_crops(frame.image, tracks[rows], None, self.config.garments)
            crops = [c for c in crops if c.track_id is not None]
            for crop in crops:
                crop.person_index = rows[crop.person_index]
        calls = 0
        ts = frame.timestamp
        for customer in by_row.values():
            customer.votes.look()
        for crop in crops:
            if crop.person_index in by_row:
                by_row[crop.person_index].votes.seen(crop.slot)
        for crop in crops:
            customer = by_row.get(crop.person_index)
            if customer is None or not crop.good or not customer.votes.wants(crop.slot, ts):
                continue
            label, score, used_classifier, embedding = self.naming.name(crop, self.models.classifier.classify)
            calls += used_classifier
            customer.classifier_calls += used_classifier
            customer.votes.vote(crop.slot, label, score, ts, crop_weight(crop.crop))
            if embedding is not None and score >= self.config.consensus.min_score:
                customer.add_embedding(label, embedding)  # a counted vote's crop: the outfit embedding
        if self.models.attributes is not None:
            t0 = time.perf_counter()
            for row, customer in by_row.items():
                self._vote_on_attributes(frame, tracks.xyxy[row], customer)
            self.timer.add("attributes", time.perf_counter() - t0)  # part of 'garments'
        return calls

    def _vote_on_attributes(self, frame: Frame, box: np.ndarray, customer: Customer) -> None:
        """One attribute reading of the customer's person crop; each attribute votes in its own slot."""
        reader = self.models.attributes
        x1, y1, x2, y2 = person_box_with_margin(box, reader.margin, frame.image.shape)
        crop = frame.image[y1:y2, x1:x2]
        if crop.size == 0:
            return
        reading = reader.read(crop)
        customer.views_now.add_embedding(reading.embedding)
        weight = crop_weight(crop)
        ts = frame.timestamp
        for vote in attribute_votes(reading, reader.thresholds):
            customer.votes.seen(vote.slot)
            if customer.votes.wants(vote.slot, ts):
                customer.votes.vote(vote.slot, vote.label, vote.score, ts, weight)

    # -- rules ---------------------------------------------------------------------------------
    def _evaluate_rules(self, frame: Frame, tracks: Detections) -> list[Alert]:
        alerts: list[Alert] = []
        for box, track_id in zip(tracks.xyxy, tracks.track_ids):
            customer = self.customers.get(int(track_id))
            if customer is not None and customer.votes.settled_by_slot():
                alerts += self._rules_for(customer, box, frame)
        return alerts

    def _rules_for(self, customer: Customer, box: np.ndarray, frame: Frame, at_exit: bool = False) -> list[Alert]:
        if customer.staff:  # staff are no customers: no verdicts for the analytics, no alerts
            return []
        garments = customer.settled_scores()
        pending = customer.votes.pending()
        # What the customer wears now and what the rules decided of it (a vetoed dress is none).
        self._emit(CustomerSettled(customer.id, garments_only(garments),
                                   frozenset(self.rules.garment_verdicts(garments, pending)),
                                   self._assign_style(customer)))
        when = datetime.fromtimestamp(frame.timestamp, tz=timezone.utc).astimezone()
        matches = self.rules.evaluate(customer.fired_rules, garments, foot_point(box), when, pending=pending)
        alerts = []
        for match in matches:
            self._emit(CustomerAlerted(customer.id, match.rule_name))
            alerts.append(
                Alert(
                    camera=self.camera.name,
                    track_id=customer.id,
                    rule=match.rule_name,
                    garments=[(label, round(float(score), 3)) for label, score in match.garments],
                    box=[round(float(v), 1) for v in box],
                    frame_index=frame.index,
                    source_time_s=frame.source_time_s,
                    timestamp=frame.timestamp,
                    decided="exit" if at_exit else customer.decided_by([label for label, _ in match.garments]),
                    catalog=self._catalog_matches(customer, match.rule_name, [label for label, _ in match.garments]),
                    picture=(customer.last_picture if at_exit else self._picture(frame, box))
                    if self.keep_pictures else None,
                )
            )
        return alerts

    # -- outfit embedding: styles and catalogue (issue 14) -------------------------------------
    def _assign_style(self, customer: Customer) -> str | None:
        """The settled customer's nearest style (None: styles off or no embedding yet); only its
        name reaches the analytics."""
        if self.models.styles is None:
            return None
        embedding = customer.outfit_embedding()
        if embedding is None:
            return None
        customer.style = self.models.styles.assign(embedding).name
        return customer.style

    def _catalog_matches(self, customer: Customer, rule: str, labels: list[str]) -> list[dict] | None:
        """Top catalogue items like the alert's garments (their crops' pooled embedding, else the
        whole outfit): ids and scores only."""
        cfg = self.config.catalog
        if self.models.catalog is None or (cfg.rules and rule not in cfg.rules):
            return None
        embedding = customer.garment_embedding(labels)
        if embedding is None:
            embedding = customer.outfit_embedding()
        if embedding is None:
            return []
        return [{"id": m.id, "score": m.score} for m in self.models.catalog.search(embedding, cfg.top_k)]

    def counts(self) -> dict:
        return self.analytics.counts()

    def finish(self) -> FrameResult | None:
        """End of a file source or shutdown: every customer leaves (exit decisions may alert),
        then every open window closes. None if no frame was ever processed."""
        if self.last_frame is None:
            self.analytics.flush(time.time())
            return None
        frame = self.last_frame
        nobody = Detections.empty(self.models.detector.labels)
        nobody.track_ids = np.zeros(0, np.int64)
        alerts = self._follow_customers(self.tracker.end_all(), frame, nobody)
        windows = self.analytics.flush(self.last_timestamp)
        return FrameResult(frame, nobody, alerts, windows, detected=False)
