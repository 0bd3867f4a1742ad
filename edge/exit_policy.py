"""How a run ends: what each problem is called on stderr and which exit code the most serious one gives.

The daemon gathers the facts (``CameraFacts`` per camera, ``DeliveryFacts`` for MQTT) when it stops;
this module turns them into one line per problem and the process exit code (README,
docs/failure-modes.md). Pure functions: the policy is tested without running a daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# 2 = bad input is raised as FashionEdgeError before the run, see cli.py.
EXIT_CAMERA_FAILED = 1  # a camera thread died (or every camera failed): systemd restarts the service
EXIT_THREAD_DIED = 1  # a thread the service depends on died and could not be restarted (same code)
EXIT_UNDELIVERED = 3  # the run ended with alerts still in the outbox (nothing lost, kept on disk)
EXIT_VIDEO_ENDED_EARLY = 4  # a video file ended before the end its container declares (damaged)
EXIT_ANALYTICS_UNSTORED = 5  # closed analytics windows could not be written (published, not stored)
EXIT_ALERTS_LOST = 6  # alerts the outbox could not store (disk full) and the broker never acknowledged
# The most serious first: a lost alert outranks unstored analytics, which outrank a damaged video file.
SEVERITY = (EXIT_CAMERA_FAILED, EXIT_ALERTS_LOST, EXIT_ANALYTICS_UNSTORED, EXIT_VIDEO_ENDED_EARLY, EXIT_UNDELIVERED)


@dataclass(frozen=True)
class RunProblem:
    code: int
    line: str  # printed on stderr after "fashion-edge: "


@dataclass
class CameraFacts:
    name: str
    source: str
    hung_stages: str | None = None  # the camera thread never finished: what was running (None: it did)
    error: str | None = None
    analytics_unstored: int = 0
    analytics_error: str | None = None
    source_stats: dict = field(default_factory=dict)


@dataclass
class DeliveryFacts:
    outbox: Path
    host: str | None = None
    port: int | None = None
    alerts_lost: list[str] = field(default_factory=list)  # ids of alerts neither stored nor delivered
    store_error: str | None = None
    pending_alerts: int = 0  # alerts still in the outbox (windows not counted)
    last_error: str | None = None
    ever_connected: bool = False


def camera_problems(cam: CameraFacts, analytics_db: Path) -> list[RunProblem]:
    problems = []
    if cam.hung_stages is not None:
        # SIGTERM while a stage hangs: the camera never finished (its last windows, its counts)
        problems.append(RunProblem(EXIT_CAMERA_FAILED, f"camera {cam.name} did not stop within the stop budget "
                                                       f"({cam.hung_stages})"))
    if cam.error:
        problems.append(RunProblem(EXIT_CAMERA_FAILED, f"camera {cam.name} failed: {cam.error}"))
    if cam.analytics_unstored:
        problems.append(RunProblem(EXIT_ANALYTICS_UNSTORED, f"camera {cam.name}: {cam.analytics_unstored} analytics "
                                   f"window(s) could not be stored in {analytics_db} ({cam.analytics_error}); they "
                                   "were published on MQTT"))
    stats = cam.source_stats
    if stats.get("ended_early"):
        problems.append(RunProblem(EXIT_VIDEO_ENDED_EARLY, f"camera {cam.name}: {cam.source} ended before its end "
                                   f"({stats.get('frames_read', 0)} frames read of {stats.get('frames_expected')} "
                                   f"declared, {stats.get('corrupt_frames', 0)} unreadable): damaged or truncated "
                                   "video"))
    return problems


def broker_reason(last_error: str | None, ever_connected: bool) -> str:
    """Why alerts stayed in the outbox, in the words an operator acts on: a bad password or a
    certificate is not an outage."""
    problem = last_error or ""
    if problem.startswith("broker refused"):
        return problem
    if problem.startswith("TLS handshake"):
        return problem.split("; check")[0] + " (check mqtt.tls)"
    if "closed the connection before the MQTT handshake" in problem:
        return "broker closed the connection before the MQTT handshake"
    if problem.startswith("no CONNACK"):
        return "broker answered TCP but never the MQTT handshake (no CONNACK)"
    if not ever_connected:
        return "broker unreachable"
    return "broker did not acknowledge"


def delivery_problems(facts: DeliveryFacts) -> list[RunProblem]:
    problems = []
    lost = facts.alerts_lost
    if lost:
        shown = ", ".join(lost[:20]) + (f" and {len(lost) - 20} more" if len(lost) > 20 else "")
        reason = facts.store_error or f"cannot store in {facts.outbox}"
        problems.append(RunProblem(EXIT_ALERTS_LOST, f"{len(lost)} alert(s) lost ({reason}; not delivered either): "
                                                     f"{shown}"))
    if facts.pending_alerts:
        problems.append(RunProblem(EXIT_UNDELIVERED, f"{broker_reason(facts.last_error, facts.ever_connected)} at "
                                   f"{facts.host}:{facts.port}: {facts.pending_alerts} alert(s) kept in "
                                   f"{facts.outbox} for the next start"))
    return problems


def exit_code(problems: list[RunProblem]) -> int:
    """The code of the most serious problem (0 without any)."""
    codes = {p.code for p in problems}
    return next((code for code in SEVERITY if code in codes), 0)
