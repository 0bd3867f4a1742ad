"""Which customers get a garment scan this frame: spend a per-frame compute budget where it counts.

A *scan* is one person crop through the garment detector plus the classifier calls on the
garments it finds (or the body-region classifier calls). Instead of every K frames, unsettled
customers are scanned whenever the budget allows:

* The budget (ms per frame) is ``consensus.scan_budget_ms`` when set. Otherwise, on a live camera
  it is ``scan_budget_share`` of the frame period (from ``fps_cap``, or the shortest recent gap
  between frames)
  minus what detection and tracking took, so the daemon keeps real time; on a file source there
  is no real-time constraint and every frame may be used (no limit).
* The budget is a token bucket: unspent budget carries over for up to two frames' worth (so a
  scan that costs more than one frame's budget still happens every other frame instead of never).
  A scan is charged the running mean cost of a scan, corrected by the measured time afterwards.
* A customer asks for a scan at most once per ``Customer.scan_interval_s`` (the pipeline checks it):
  the vote interval, or once a second (``absent_scan_interval_s``) while its only undecided
  garments are ones the scans keep not finding (``GarmentVotes.only_absent_open``).
* Customers are served in need order: fewest scans so far first (a new customer has none, and a
  customer on whom nothing is ever found cannot starve the others), then fewest counted votes,
  then those near the frame edge (arriving or about to leave), then the longest unscanned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ConsensusConfig
from .customer import Customer

EDGE_SHARE = 0.1  # within this share of the frame width/height from a side: near the edge


@dataclass
class ScanRequest:
    customer: Customer
    row: int  # the customer's row in this frame's tracks
    box: np.ndarray


class ScanScheduler:
    def __init__(self, cfg: ConsensusConfig, fps_cap: float | None = None):
        self.cfg = cfg
        self.fps_cap = fps_cap
        self.scan_ms = 10.0  # running mean cost of one scan (first guess: one 416 px garment YOLO)
        self.credit_ms = 0.0
        self._period_s: float | None = None  # measured live frame period
        self._last_ts: float | None = None
        self.budget_used_ms = 0.0  # totals for the benchmark
        self.budget_offered_ms = 0.0

    def observe(self, timestamp: float) -> None:
        """A frame arrived at ``timestamp`` (live: capture time): track the frame period."""
        if self._last_ts is not None and timestamp > self._last_ts:
            gap = timestamp - self._last_ts
            # Follow a shorter gap at once, a longer one slowly: with newest-frame-wins a busy
            # pipeline sees longer gaps, and a budget grown from them would make it busier still.
            if self._period_s is None or gap < self._period_s:
                self._period_s = gap
            else:
                self._period_s = 0.95 * self._period_s + 0.05 * gap
        self._last_ts = timestamp

    def budget_ms(self, live: bool, spent_ms: float) -> float | None:
        """This frame's scan budget; None = no limit. ``spent_ms``: detection + tracking so far."""
        if self.cfg.scan_budget_ms is not None:
            return self.cfg.scan_budget_ms
        if not live:
            return None
        period_s = 1.0 / self.fps_cap if self.fps_cap else self._period_s
        if period_s is None:
            return 0.0  # first live frame: no period known yet
        return max(0.0, self.cfg.scan_budget_share * period_s * 1000.0 - spent_ms)

    @staticmethod
    def _near_edge(box: np.ndarray, frame_shape) -> bool:
        h, w = frame_shape[:2]
        return bool(box[0] < EDGE_SHARE * w or box[2] > (1 - EDGE_SHARE) * w
                    or box[1] < EDGE_SHARE * h or box[3] > (1 - EDGE_SHARE) * h)

    def choose(self, requests: list[ScanRequest], budget_ms: float | None, frame_shape) -> list[ScanRequest]:
        ordered = sorted(
            requests,
            key=lambda r: (r.customer.votes.looks, r.customer.votes.counted_votes, not self._near_edge(r.box, frame_shape),
                           -1e18 if r.customer.last_scan is None else r.customer.last_scan),
        )
        if budget_ms is None:
            return ordered
        self.budget_offered_ms += budget_ms
        self.credit_ms = min(self.credit_ms + budget_ms, 2.0 * max(budget_ms, self.scan_ms))
        chosen = []
        for request in ordered:
            if self.credit_ms < self.scan_ms:
                break
            chosen.append(request)
            self.credit_ms -= self.scan_ms
        return chosen

    def spent(self, scans: int, elapsed_ms: float, limited: bool) -> None:
        """``scans`` scans took ``elapsed_ms``: correct the charge and the running mean."""
        if scans <= 0:
            return
        if limited:
            self.credit_ms += scans * self.scan_ms - elapsed_ms
            self.budget_used_ms += elapsed_ms
        self.scan_ms = 0.8 * self.scan_ms + 0.2 * (elapsed_ms / scans)
