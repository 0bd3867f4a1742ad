"""Analytics: window rollover, customers and dwell, garment mix and shares, SQLite persistence."""

from __future__ import annotations

import sqlite3

import pytest

from edge.analytics import MAX_EMPTY_WINDOWS, Analytics, read_windows
from edge.customer_events import CustomerAlerted, CustomerEnded, CustomerSeen, CustomerSettled
from edge.errors import FashionEdgeError

T0 = 1_800_000_000.0  # a multiple of 60: windows start at T0, T0 + 60, ...


def visit(a: Analytics, track_id: int, start: float, end: float, step: float = 0.5, ended: bool = True):
    ts = start
    while ts <= end + 1e-9:
        a.record(CustomerSeen(track_id, T0 + ts))
        ts += step
    if ended:
        a.record(CustomerEnded(track_id, T0 + end + 3))  # the tracker reports the end a few seconds later


@pytest.fixture
def db(tmp_path):
    return tmp_path / "state" / "analytics.sqlite"


def test_window_rollover_summarises_customers_garments_shares_and_dwell(db):
    a = Analytics(db, site="store", camera="cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 10)
    a.record(CustomerSettled(1, {"dress": 0.9}, frozenset({"dress"})))
    visit(a, 2, 20, 21.5)
    a.record(CustomerSettled(2, {"blazer": 0.8, "pants": 0.7}, frozenset({"suit"})))
    a.record(CustomerAlerted(2, "suit"))
    visit(a, 3, 30, 30.5)  # 0.5 s: a passer-by glimpse, not a customer
    visit(a, 4, 50, 70, ended=False)  # arrives in window 0, still in view after it ends
    a.record(CustomerSettled(4, {"pants": 0.9}))
    assert a.poll(T0 + 59) == []
    assert a.poll(T0 + 70) == []  # window 0 ended but track 4 is still in view
    a.record(CustomerEnded(4, T0 + 73))
    (window,) = a.poll(T0 + 74)
    assert window["window_start"] == T0 and window["window_end"] == T0 + 60
    assert window["start"] == "2027-01-15T08:00:00Z"
    assert (window["tracks"], window["customers"], window["open_tracks"]) == (4, 3, 0)
    assert window["garments"] == {"blazer": 1, "dress": 1, "pants": 2}
    assert window["rules"] == window["customers_alerted"] == {"suit": 1}
    assert window["customers_matched"] == {"dress": 1, "suit": 1} and window["schema_version"] == 2
    assert window["dress_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert window["suit_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert window["dwell_mean_s"] == pytest.approx((10 + 1.5 + 20) / 3, abs=0.01)
    assert window["dwell_p50_s"] == pytest.approx(10)
    assert window["dwell_p95_s"] == pytest.approx(10 + 0.9 * 10, abs=0.01)  # linear interpolation
    assert window["partial"] is False
    assert read_windows(db) == [window]
    assert a.poll(T0 + 100) == []  # window 1 has not ended


def test_a_long_stay_closes_its_window_one_window_later_with_dwell_so_far(db):
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 10, 119, step=1.0, ended=False)
    assert a.poll(T0 + 119) == []
    first, second = a.poll(T0 + 120)
    assert (first["customers"], first["open_tracks"], first["dwell_p50_s"]) == (1, 1, 109.0)
    assert (second["window_start"], second["customers"]) == (T0 + 60, 0)  # nobody arrived then
    a.record(CustomerEnded(1, T0 + 150))  # ends after its window was summarised: nothing double-counted
    visit(a, 2, 125, 130)
    (third,) = a.poll(T0 + 181)
    assert third["customers"] == 1 and third["dwell_p50_s"] == 5.0
    assert [w["customers"] for w in read_windows(db)] == [1, 0, 1]


def test_empty_windows_are_summarised_and_a_long_gap_is_skipped(db):
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 5)
    assert [w["customers"] for w in a.poll(T0 + 200)] == [1, 0, 0]  # windows 0, 1, 2
    far = T0 + 60 * (MAX_EMPTY_WINDOWS + 50)
    visit(a, 2, far - T0, far - T0 + 5)
    closed = a.poll(far + 60)
    assert closed[-1]["window_start"] == far and closed[-1]["customers"] == 1
    assert len(closed) == 1  # the daemon was off: no row per empty window in between


def test_flush_closes_the_current_window_and_reopening_merges(db):
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 4, ended=False)
    a.record(CustomerSettled(1, {"dress": 0.9}, frozenset({"dress"})))
    (partial,) = a.flush(T0 + 30)
    assert partial["customers"] == 1 and partial["partial"] is True and partial["dwell_p50_s"] == 4.0
    a.close()

    # Restart within the same window: new process, new track ids from 1 again.
    b = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(b, 1, 35, 41)
    b.record(CustomerSettled(1, {"dress": 0.8, "pants": 0.9}, frozenset(set())))  # dress unless pants: the rules decided this is no dress
    (merged,) = b.poll(T0 + 61)
    assert merged["customers"] == 2 and merged["partial"] is False
    assert merged["garments"] == {"dress": 2, "pants": 1} and merged["dress_share"] == 0.5
    assert merged["customers_matched"] == {"dress": 1}
    assert merged["dwell_p50_s"] == pytest.approx(5.0)  # samples 4 and 6 kept for the merge
    rows = read_windows(db)
    assert len(rows) == 1 and rows[0] == merged
    (tail,) = b.flush(T0 + 61)  # the second window was watched for 1 s: an empty partial row
    assert (tail["window_start"], tail["customers"], tail["partial"]) == (T0 + 60, 0, True)


def test_wal_mode_and_two_cameras_share_one_file(db):
    a = Analytics(db, "store", "door", window_s=60)
    b = Analytics(db, "store", "till", window_s=60)
    visit(a, 1, 0, 5)
    visit(b, 1, 0, 2)
    visit(b, 2, 10, 20)
    a.poll(T0 + 60)
    b.poll(T0 + 60)
    assert {w["camera"]: w["customers"] for w in read_windows(db)} == {"door": 1, "till": 2}
    assert [w["camera"] for w in read_windows(db, camera="till")] == ["till"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_counts_are_live(db):
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 5, ended=False)
    a.record(CustomerSettled(1, {"suit": 0.9}))
    visit(a, 2, 4, 4.5, ended=False)  # too short to be a customer yet
    assert a.counts() == {
        "camera": "cam1",
        "people_now": 2,
        "window_start": "2027-01-15T08:00:00Z",
        "customers_window": 1,
        "garments_window": {"suit": 1},
    }
    a.record(CustomerEnded(2, T0 + 6))
    assert a.counts()["people_now"] == 1


def test_min_dwell_zero_counts_every_track(db):
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=0)
    a.record(CustomerSeen(1, T0 + 1))
    a.record(CustomerEnded(1, T0 + 2))
    assert a.poll(T0 + 60)[0]["customers"] == 1


def test_unreadable_database_is_a_one_line_error(tmp_path):
    bad = tmp_path / "analytics.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FashionEdgeError, match="analytics.sqlite"):
        Analytics(bad, "store", "cam1")
    with pytest.raises(FashionEdgeError, match="not found"):
        read_windows(tmp_path / "missing.sqlite")


# -- fashion-edge report -----------------------------------------------------------------------

def _report(repo_dir, *args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "edge", "report", *map(str, args)], cwd=repo_dir,
                          capture_output=True, text=True, timeout=120)


def _fill(db) -> None:
    a = Analytics(db, "store", "door", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 10)
    a.record(CustomerSettled(1, {"dress": 0.9}, frozenset({"dress"})))
    a.record(CustomerAlerted(1, "dress"))
    visit(a, 2, 5, 25)
    a.record(CustomerSettled(2, {"blazer": 0.9, "pants": 0.8}, frozenset({"suit"})))
    a.record(CustomerAlerted(2, "suit"))
    visit(a, 3, 70, 74)
    a.record(CustomerSettled(3, {"pants": 0.9, "t-shirt": 0.8}))
    a.poll(T0 + 130)
    b = Analytics(db, "store", "till", window_s=60, min_dwell_s=1.0)
    visit(b, 1, 2, 6)
    b.flush(T0 + 30)


def test_report_prints_the_table_and_writes_pngs(db, tmp_path, repo_dir):
    cv2 = pytest.importorskip("cv2")
    _fill(db)
    out = tmp_path / "charts"
    result = _report(repo_dir, "--db", db, "--out", out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["start", "(UTC)", "camera"]
    door_first = next(line for line in lines if "door" in line and "08:00:00" in line)
    assert "  2  " in door_first and "blazer 1, dress 1, pants 1" in door_first
    assert "50%" in door_first and "15.0 s" in door_first  # dress 1/2, suit 1/2, p50 of 10 and 20
    assert any("till" in line and "08:00:00*" in line for line in lines)  # flushed: partial
    assert "3 window(s), 4 customer(s)" in result.stdout
    charts = [line.removeprefix("wrote ") for line in lines if line.startswith("wrote ")]
    assert [p.rsplit("/", 1)[-1] for p in charts] == ["customers_per_window.png", "garment_mix.png"]
    for path in charts:
        image = cv2.imread(path)
        assert image is not None and image.shape[0] > 200 and image.std() > 5  # a drawn chart

    only_till = _report(repo_dir, "--db", db, "--out", out, "--camera", "till")
    assert "door" not in only_till.stdout and "1 window(s), 1 customer(s)" in only_till.stdout


def test_report_with_config_uses_its_state_dir(tmp_path, repo_dir):
    state = tmp_path / "state"
    _fill(state / "analytics.sqlite")
    config = tmp_path / "store.yaml"
    config.write_text(
        "cameras: [{name: door, source: clip.mp4}]\n"
        "detector: {model: det.tflite}\nclassifier: {model: cls.tflite}\n"
        "service: {state_dir: state}\n"
    )
    result = _report(repo_dir, "--config", config, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "3 window(s)" in result.stdout and (tmp_path / "out" / "garment_mix.png").is_file()


def test_report_missing_database_is_one_line(tmp_path, repo_dir):
    result = _report(repo_dir, "--db", tmp_path / "nope.sqlite")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nope.sqlite" in result.stderr and "not found" in result.stderr
    both = _report(repo_dir)
    assert both.returncode == 2 and "--config or --db" in both.stderr


# -- shares count what the rules decided (issue 13) ---------------------------------------------

def _dress_unless_pants_engine():
    from edge.config import RuleConfig
    from edge.rules import RuleEngine

    return RuleEngine([RuleConfig(name="dress", when=["dress"], unless=["pants"], min_confidence=0.5),
                       RuleConfig(name="suit", when=["suit", "blazer+pants"], min_confidence=0.5)], "cam1")


def test_a_dress_vetoed_by_unless_is_not_in_the_dress_share(db):
    """Real rule engine + analytics: a long top over trousers (dress and pants settled) is voted a
    dress but the rule `dress unless pants` vetoes it: the garment mix still shows the dress vote,
    the dress share is 0; a real dress (no pants) counts."""
    from datetime import datetime

    engine = _dress_unless_pants_engine()
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    noon = datetime(2027, 1, 18, 12, 0)
    for tid, garments in ((1, {"dress": 0.9, "pants": 0.8}), (2, {"dress": 0.8, "pants": 0.7})):
        visit(a, tid, 10 * tid, 10 * tid + 5)
        a.record(CustomerSettled(tid, garments, frozenset(engine.garment_verdicts(garments))))
        for match in engine.evaluate(set(), garments, (0, 0), noon):
            a.record(CustomerAlerted(tid, match.rule_name))
    (vetoed,) = a.poll(T0 + 60)
    assert vetoed["garments"] == {"dress": 2, "pants": 2}  # what the votes said
    assert vetoed["dress_share"] == 0.0 and vetoed["customers_matched"] == {}
    assert vetoed["customers_alerted"] == {}

    garments = {"dress": 0.9, "shoe": 0.8}
    visit(a, 3, 65, 70)
    a.record(CustomerSettled(3, garments, frozenset(engine.garment_verdicts(garments))))
    for match in engine.evaluate(set(), garments, (0, 0), noon):
        a.record(CustomerAlerted(3, match.rule_name))
    (fired,) = a.poll(T0 + 120)
    assert fired["dress_share"] == 1.0 and fired["customers_matched"] == {"dress": 1}
    assert fired["customers_alerted"] == {"dress": 1}


def test_a_verdict_is_withdrawn_when_a_veto_garment_settles_later(db):
    engine = _dress_unless_pants_engine()
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 5)
    assert engine.garment_verdicts({"dress": 0.9}, pending={"pants"}) == set()  # waiting on pants
    a.record(CustomerSettled(1, {}, frozenset(engine.garment_verdicts({"dress": 0.9}))))
    a.record(CustomerSettled(1, {}, frozenset(engine.garment_verdicts({"dress": 0.9, "pants": 0.9}))))  # pants settled after
    (window,) = a.poll(T0 + 60)
    assert window["dress_share"] == 0.0


def test_a_database_of_the_previous_version_is_upgraded_and_its_rows_say_so(db):
    """Schema 1 rows (shares from settled garments) stay readable, marked schema_version 1."""
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute("""CREATE TABLE windows (site TEXT NOT NULL, camera TEXT NOT NULL, window_start REAL NOT NULL,
            window_end REAL NOT NULL, tracks INTEGER NOT NULL, customers INTEGER NOT NULL, garments TEXT NOT NULL,
            rules TEXT NOT NULL, dress_customers INTEGER NOT NULL, suit_customers INTEGER NOT NULL,
            dwell_s TEXT NOT NULL, open_tracks INTEGER NOT NULL, partial INTEGER NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY (site, camera, window_start))""")
        conn.execute("INSERT INTO windows VALUES ('store','cam1',?,?,1,1,'{\"dress\": 1}','{}',1,0,'[5.0]',0,0,0)",
                     (T0 - 60, T0))
    a = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 5)
    a.poll(T0 + 60)
    old, new = read_windows(db)
    assert (old["schema_version"], old["customers_matched"], old["dress_share"]) == (1, None, 1.0)
    assert (new["schema_version"], new["customers_matched"]) == (2, {})
    a.close()
    # A restart within the old row's window merges into it: the merged row still says schema 1.
    b = Analytics(db, "store", "cam1", window_s=60, min_dwell_s=1.0)
    visit(b, 1, -50, -45)
    (merged,) = b.poll(T0 + 5)
    assert merged["window_start"] == T0 - 60 and merged["customers"] == 2 and merged["schema_version"] == 1


@pytest.mark.parametrize("unless, dress_share, alerts", [(["pants", "shorts"], 0.5, ["dress"]),
                                                         (["shoes"], 0.0, [])])
def test_pipeline_dress_share_follows_the_dress_rule(shared_dir, tmp_path, repo_dir, unless, dress_share, alerts):
    """The real pipeline on a street photo of a woman in a dress (and a passer-by in a shirt):
    with the demo's `dress unless [pants, shorts]` the rule fires and she counts (1 of 2
    customers); with `unless: [shoes]` (she wears shoes) the rule vetoes her dress: no alert and a
    dress share of 0, although the garment mix still shows the dress vote."""
    import sys

    sys.path.insert(0, str(repo_dir / "tests"))
    from test_pipeline import _dress_photo_canvas

    from edge.config import load_config
    from edge.pipeline import CameraPipeline
    from edge.sources import Frame

    config = load_config(repo_dir / "configs" / "demo.yaml")
    next(rule for rule in config.rules if rule.name == "dress").unless = unless
    pipeline = CameraPipeline(config, config.cameras[0], state_dir=tmp_path)
    canvas = _dress_photo_canvas(shared_dir)
    fired = []
    for index in range(30):
        fired += [a.rule for a in pipeline.process(Frame(canvas, index, T0 + index / 10, index / 10)).alerts]
    end = pipeline.finish()
    fired += [a.rule for a in end.alerts]
    (window,) = end.closed_windows
    assert fired == alerts
    assert window["customers"] == 2 and window["garments"].get("dress") == 1
    assert window["dress_share"] == dress_share
    assert window["customers_alerted"].get("dress", 0) == len(alerts)
