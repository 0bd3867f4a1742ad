"""The exit-code policy (edge/exit_policy.py): one line per problem naming what and where, and the
most serious problem decides the code, whatever order the problems came in."""

from __future__ import annotations

from pathlib import Path

from edge.exit_policy import (EXIT_ALERTS_LOST, EXIT_ANALYTICS_UNSTORED, EXIT_CAMERA_FAILED, EXIT_UNDELIVERED,
                              EXIT_VIDEO_ENDED_EARLY, CameraFacts, DeliveryFacts, RunProblem, broker_reason,
                              camera_problems, delivery_problems, exit_code)

STATE = Path("/var/lib/fashion-edge")


def test_a_clean_run_is_0():
    facts = CameraFacts("door", "rtsp://cam/1")
    assert camera_problems(facts, STATE / "analytics.sqlite") == []
    assert delivery_problems(DeliveryFacts(STATE / "outbox.sqlite", "127.0.0.1", 1883, ever_connected=True)) == []
    assert exit_code([]) == 0


def test_the_most_serious_problem_decides_in_any_order():
    problems = [RunProblem(EXIT_UNDELIVERED, "a"), RunProblem(EXIT_VIDEO_ENDED_EARLY, "b"),
                RunProblem(EXIT_ANALYTICS_UNSTORED, "c"), RunProblem(EXIT_ALERTS_LOST, "d")]
    assert exit_code(problems) == EXIT_ALERTS_LOST
    assert exit_code(list(reversed(problems))) == EXIT_ALERTS_LOST
    assert exit_code(problems + [RunProblem(EXIT_CAMERA_FAILED, "e")]) == EXIT_CAMERA_FAILED
    assert exit_code(problems[:2]) == EXIT_VIDEO_ENDED_EARLY


def test_camera_lines_name_the_camera_the_file_and_the_cause():
    facts = CameraFacts("door", "/videos/door.mp4", hung_stages="door:pipeline running for 31 s", error="boom",
                        analytics_unstored=2, analytics_error="disk I/O error",
                        source_stats={"ended_early": True, "frames_read": 40, "frames_expected": 100,
                                      "corrupt_frames": 3})
    lines = {p.code: p.line for p in camera_problems(facts, STATE / "analytics.sqlite")}
    problems = camera_problems(facts, STATE / "analytics.sqlite")
    assert [p.code for p in problems] == [EXIT_CAMERA_FAILED, EXIT_CAMERA_FAILED, EXIT_ANALYTICS_UNSTORED,
                                          EXIT_VIDEO_ENDED_EARLY]
    assert "did not stop within the stop budget (door:pipeline running for 31 s)" in problems[0].line
    assert problems[1].line == "camera door failed: boom"
    assert str(STATE / "analytics.sqlite") in lines[EXIT_ANALYTICS_UNSTORED] and "disk I/O error" in lines[
        EXIT_ANALYTICS_UNSTORED]
    assert "/videos/door.mp4" in lines[EXIT_VIDEO_ENDED_EARLY] and "40 frames read of 100" in lines[
        EXIT_VIDEO_ENDED_EARLY]


def test_kept_alerts_say_why_in_words_an_operator_acts_on():
    assert broker_reason("broker refused: not authorised", True) == "broker refused: not authorised"
    assert broker_reason("TLS handshake failed: CERTIFICATE_VERIFY_FAILED; check the CA", False) == \
        "TLS handshake failed: CERTIFICATE_VERIFY_FAILED (check mqtt.tls)"
    assert broker_reason("no CONNACK within 10 s", False).endswith("(no CONNACK)")
    assert broker_reason(None, False) == "broker unreachable"
    assert broker_reason("connection reset", True) == "broker did not acknowledge"
    [kept] = delivery_problems(DeliveryFacts(STATE / "outbox.sqlite", "10.0.0.5", 8883, pending_alerts=3))
    assert kept.code == EXIT_UNDELIVERED
    assert kept.line == f"broker unreachable at 10.0.0.5:8883: 3 alert(s) kept in {STATE / 'outbox.sqlite'} " \
                        "for the next start"


def test_lost_alerts_are_listed_and_outrank_kept_ones():
    ids = [f"id-{i}" for i in range(25)]
    problems = delivery_problems(DeliveryFacts(STATE / "outbox.sqlite", "h", 1, alerts_lost=ids,
                                               store_error="database or disk is full", pending_alerts=1,
                                               ever_connected=True))
    assert [p.code for p in problems] == [EXIT_ALERTS_LOST, EXIT_UNDELIVERED]
    assert problems[0].line.startswith("25 alert(s) lost (database or disk is full; not delivered either): id-0, ")
    assert problems[0].line.endswith("id-19 and 5 more")
    assert exit_code(problems) == EXIT_ALERTS_LOST
