"""`fashion-edge report` as a store uses it (issue 23): this site's windows only when two configs share
a state folder, the charts under the state folder by default, the store's time zone in 24 h, garment
bars that never pass the customers, `report | head` without a traceback, a --help without notes
for developers."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from edge.analytics import Analytics, read_windows  # noqa: E402
from edge.commands.report import garment_mix_figure  # noqa: E402
from edge.customer_events import CustomerEnded, CustomerSeen, CustomerSettled  # noqa: E402

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC, a multiple of 60


def visit(a: Analytics, track_id: int, start: float, end: float, garments: dict | None = None):
    for ts in (start, end):
        a.record(CustomerSeen(track_id, T0 + ts))
    if garments:
        a.record(CustomerSettled(track_id, garments))
    a.record(CustomerEnded(track_id, T0 + end + 2))


def two_sites(state):
    """One state folder, two sites (two configs in one folder): store-042 2 customers, store-043 5."""
    db = state / "analytics.sqlite"
    state.mkdir(parents=True, exist_ok=True)
    for site, people in (("store-042", 2), ("store-043", 5)):
        a = Analytics(db, site, "entrance", window_s=60, min_dwell_s=1.0)
        for tid in range(people):
            visit(a, tid, 1, 10, {"dress": 0.9, "shoe": 0.8})
        a.poll(T0 + 130)
        a.close()
    return db


def config_file(tmp_path, shared_dir, site="store-042", time_zone=None) -> str:
    from conftest import demo_config_data

    data = demo_config_data(shared_dir)
    data["site"] = site
    data["service"] = {"state_dir": str(tmp_path / "state"), **({"time_zone": time_zone} if time_zone else {})}
    path = tmp_path / f"{site}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def cli(repo_dir, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edge", *map(str, args)], cwd=cwd or repo_dir, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(repo_dir), "PATH": "/usr/bin:/bin"})


def test_this_sites_windows_charts_under_the_state_folder_and_the_store_time_zone(tmp_path, repo_dir, shared_dir):
    two_sites(tmp_path / "state")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli(repo_dir, "report", "--config", config_file(tmp_path, shared_dir, time_zone="Asia/Tokyo"),
                 cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2 customer(s)" in out and "window(s) of other sites" in out, out  # not store-043's 5
    assert "camera(s) entrance read a video file: their windows are on the run's start + the time in the video" in out
    assert "start (Asia/Tokyo)" in out
    tokyo = datetime.fromtimestamp(T0, ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S")
    assert tokyo in out and "AM" not in out and "PM" not in out
    assert (tmp_path / "state" / "report" / "garment_mix.png").is_file()
    assert not any(elsewhere.iterdir()), "nothing written into the current folder"


def test_report_into_head_ends_without_a_traceback(tmp_path, repo_dir):
    db = tmp_path / "analytics.sqlite"
    a = Analytics(db, "store", "door", window_s=60, min_dwell_s=1.0)
    for w in range(1500):  # far more than a pipe buffer holds (64 KiB)
        visit(a, w, 60 * w + 1, 60 * w + 10, {"dress": 0.9})
    a.flush(T0 + 60 * 1500 + 30)
    a.close()
    run = subprocess.run(f"{sys.executable} -m edge report --db {db} | head -n 2", shell=True, cwd=repo_dir,
                         capture_output=True, text=True, timeout=120)
    assert len(run.stdout.splitlines()) == 2
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr, run.stderr


def test_help_is_for_operators(repo_dir):
    result = cli(repo_dir, "--help")
    assert result.returncode == 0
    assert "contract" not in result.stdout and "keep them" not in result.stdout
    assert result.stdout.splitlines()[2].startswith("fashion-edge: the in-store camera daemon")


def test_garment_bars_never_pass_the_customers(tmp_path):
    db = two_sites(tmp_path / "state")
    windows = [w for w in read_windows(db) if w["site"] == "store-042"]
    assert windows[0]["customers"] == 2 and windows[0]["garments"] == {"dress": 2, "shoe": 2}
    fig = garment_mix_figure(windows, "UTC")
    try:
        ax = fig.axes[0]
        heights = [p.get_height() for p in ax.patches]
        assert max(heights) == 2  # each bar: the customers wearing it; a stack would have shown 4
        marks = [c for c in ax.collections if c.get_label() == "customers in the window"]
        assert marks and marks[0].get_segments()[0][0][1] == 2
        assert ax.get_ylim()[1] >= 2
    finally:
        plt.close(fig)
