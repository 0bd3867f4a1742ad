"""The alert: one rule that fired for one customer, in the one form every consumer reads.

The pipeline creates it (with its id); MQTT, the event list, the web page and the console take it
from there: ``payload(site)`` is the MQTT message (docs/mqtt.md, checked against
edge/schemas/alert.schema.json), ``web_entry()`` the web page's line. ``picture`` never leaves
the process: a sink that stores or sends pictures encodes it (only with snapshots.enabled).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from .mqtt.payloads import make_alert


@dataclass
class Alert:
    camera: str
    track_id: int  # the customer's id (a returning customer keeps theirs)
    rule: str
    garments: list[tuple[str, float]]
    box: list[float]  # the customer's box in the frame the decision was made (the last box at exit)
    frame_index: int
    source_time_s: float | None
    timestamp: float
    decided: str = "consensus"  # how the garments were decided: consensus / early / exit
    # catalogue matches [{"id", "score"}] when catalog.enabled covers this rule (ids only), else None
    catalog: list[dict] | None = None
    # snapshots.enabled only: the customer's pixels for the alert's picture (the current frame's crop,
    # or at an exit decision the last frame the customer was seen in); None: no picture is taken
    picture: np.ndarray | None = field(default=None, repr=False)
    # one id from the decision on: the MQTT payload, the event list and a false-alert mark share it
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def payload(self, site: str) -> dict:
        """The MQTT alert message (time: when it is rendered, i.e. published)."""
        return make_alert(site=site, camera=self.camera, track_id=self.track_id, rule=self.rule,
                          garments=self.garments, box=self.box, frame_index=self.frame_index,
                          source_time_s=self.source_time_s, decided=self.decided, catalog=self.catalog,
                          alert_id=self.id)

    def web_entry(self) -> dict:
        """The web page's line for the alert (no picture: the page fetches it from the event list)."""
        return {"id": self.id, "camera": self.camera, "rule": self.rule, "track_id": self.track_id,
                "garments": [list(g) for g in self.garments], "timestamp": self.timestamp or time.time(),
                "frame_index": self.frame_index, "decided": self.decided}
