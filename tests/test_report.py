"""`fashion-edge report` charts: units and time zone on the axes, partial windows marked, empty
windows written out, one colour per label in every chart, `--out` on a file is one line."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from edge.analytics import Analytics, read_windows  # noqa: E402
from edge.commands.report import (NO_CUSTOMERS, NO_GARMENTS, PARTIAL_NOTE, customers_figure,  # noqa: E402
                                  garment_mix_figure)
from edge.customer_events import CustomerEnded, CustomerSeen, CustomerSettled  # noqa: E402
from edge.plot_style import label_colour  # noqa: E402

T0 = 1_800_000_000.0  # a multiple of 60


def visit(a: Analytics, track_id: int, start: float, end: float, garments: dict | None = None):
    for ts in (start, (start + end) / 2, end):
        a.record(CustomerSeen(track_id, T0 + ts))
    if garments:
        a.record(CustomerSettled(track_id, garments))
    a.record(CustomerEnded(track_id, T0 + end + 2))


@pytest.fixture
def windows(tmp_path):
    """Four one-minute windows: customers with garments, nobody, a customer whose garments never
    settled, and a partial one (the daemon stopped) with a dress."""
    db = tmp_path / "analytics.sqlite"
    a = Analytics(db, "store", "door", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 10, {"dress": 0.9})
    visit(a, 2, 5, 25, {"blazer": 0.9, "pants": 0.8})
    visit(a, 3, 125, 130)  # window 2: a customer, no garment settled
    visit(a, 4, 185, 190, {"dress": 0.8})
    a.flush(T0 + 200)  # window 3 is partial
    b = Analytics(db, "store", "till", window_s=60, min_dwell_s=1.0)
    visit(b, 1, 2, 6, {"pants": 0.9})
    b.poll(T0 + 240)
    rows = read_windows(db)
    assert [w["window_start"] - T0 for w in rows if w["camera"] == "door"] == [0, 60, 120, 180]
    return rows


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_axes_name_units_and_the_time_zone(windows):
    for build in (customers_figure, garment_mix_figure):
        fig = build(windows)
        try:
            ax = fig.axes[0]
            assert "UTC" in ax.get_xlabel() and "1-minute windows" in ax.get_xlabel()
            assert "people per window" in ax.get_ylabel()
        finally:
            plt.close(fig)


def test_partial_windows_are_marked(windows):
    for build in (customers_figure, garment_mix_figure):
        fig = build(windows)
        try:
            ax = fig.axes[0]
            ticks = [t.get_text() for t in ax.get_xticklabels()]
            assert ticks[-1].endswith("*") and not any(t.endswith("*") for t in ticks[:-1]), ticks
            hatched = {round(p.get_x() + p.get_width() / 2) for p in ax.patches if p.get_hatch() == "//"
                       and p.get_height() > 0}
            assert hatched == {3}  # only the partial window's bars
            assert PARTIAL_NOTE in [t.get_text() for t in ax.get_legend().get_texts()]
        finally:
            plt.close(fig)


def test_empty_windows_say_so(windows, tmp_path):
    fig = customers_figure(windows)
    try:
        texts = fig.axes[0].texts
        assert [(t.get_text(), round(t.get_position()[0])) for t in texts] == [(NO_CUSTOMERS, 1)]
    finally:
        plt.close(fig)
    fig = garment_mix_figure(windows)
    try:
        texts = fig.axes[0].texts
        assert sorted((t.get_text(), round(t.get_position()[0])) for t in texts) == [(NO_CUSTOMERS, 1),
                                                                                    (NO_GARMENTS, 2)]
    finally:
        plt.close(fig)

    # A database with only empty windows: the chart says so instead of a blank axis.
    db = tmp_path / "empty.sqlite"
    a = Analytics(db, "store", "door", window_s=60, min_dwell_s=1.0)
    a.record(CustomerSeen(1, T0 + 1))
    a.record(CustomerEnded(1, T0 + 1.5))  # a glimpse, not a customer
    a.poll(T0 + 130)
    nobody = read_windows(db)
    assert [w["customers"] for w in nobody] == [0, 0]
    for build in (customers_figure, garment_mix_figure):
        fig = build(nobody)
        try:
            assert _texts(fig.axes[0]) == [f"{NO_CUSTOMERS} in any window"]
        finally:
            plt.close(fig)


def test_one_colour_per_label_across_charts(windows):
    from training.detector.evaluate import pr_curves
    from training.plots import pr_figure

    from test_plots import _evaluators

    fig = garment_mix_figure(windows)
    try:
        ax = fig.axes[0]
        mix = {}
        for container in ax.containers:
            colours = {to_hex(p.get_facecolor()) for p in container.patches}
            assert len(colours) == 1
            mix[container.get_label()] = colours.pop()
        assert set(mix) == {"blazer", "dress", "pants"}
        assert all(mix[label] == label_colour(label) for label in mix)
    finally:
        plt.close(fig)
    evaluators, labels = _evaluators()
    fig = pr_figure(pr_curves(evaluators, labels), "PR")
    try:
        pr = {line.get_label().split(" AP50")[0]: to_hex(line.get_color()) for line in fig.axes[0].get_lines()}
    finally:
        plt.close(fig)
    assert pr["dress"] == mix["dress"] and pr["pants"] == mix["pants"]  # the same colour in both charts
    fig = customers_figure(windows)
    try:
        ax = fig.axes[0]
        cameras = {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in ax.containers}
        assert cameras == {"door": label_colour("door"), "till": label_colour("till")}
        assert cameras["door"] != cameras["till"]
    finally:
        plt.close(fig)


def _report(repo_dir, *args):
    return subprocess.run([sys.executable, "-m", "edge", "report", *map(str, args)], cwd=repo_dir,
                          capture_output=True, text=True, timeout=120)


def test_report_out_on_an_existing_file_is_one_line(tmp_path, repo_dir):
    db = tmp_path / "analytics.sqlite"
    a = Analytics(db, "store", "door", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 10, {"dress": 0.9})
    a.poll(T0 + 60)
    a.close()
    not_a_folder = tmp_path / "report.png"
    not_a_folder.write_bytes(b"keep me")
    for out in (not_a_folder, not_a_folder / "charts"):
        result = _report(repo_dir, "--db", db, "--out", out)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
        assert str(not_a_folder) in result.stderr and "not a folder" in result.stderr
    assert not_a_folder.read_bytes() == b"keep me"
    ok = _report(repo_dir, "--db", db, "--out", tmp_path / "charts")
    assert ok.returncode == 0 and (tmp_path / "charts" / "garment_mix.png").is_file(), ok.stderr


def test_report_marks_shares_an_older_version_counted(tmp_path, repo_dir):
    """A schema-1 row (its dress share counted vetoed dresses) is marked in the table."""
    import sqlite3

    db = tmp_path / "analytics.sqlite"
    a = Analytics(db, "store", "door", window_s=60, min_dwell_s=1.0)
    visit(a, 1, 0, 10, {"dress": 0.9})
    a.record(CustomerSettled(1, {}, frozenset({"dress"})))
    visit(a, 2, 65, 70, {"dress": 0.9, "pants": 0.8})
    a.poll(T0 + 130)
    a.close()
    with sqlite3.connect(db) as conn:  # the second window as an older version stored it
        conn.execute("UPDATE windows SET schema_version = 1, matched = NULL, dress_customers = 1 "
                     "WHERE window_start = ?", (T0 + 60,))
    result = _report(repo_dir, "--db", db, "--out", tmp_path / "charts")
    assert result.returncode == 0, result.stderr
    first, second = (line for line in result.stdout.splitlines() if "door" in line)
    assert "100%" in first and "~" not in first
    assert "100%~" in second
    assert "~ share counted by an older version" in result.stdout


def test_report_counts_customers_per_named_zone(tmp_path, repo_dir):
    """Windows that counted named zones: one line of totals and a zone chart; windows without zones
    (a camera without any) draw no zone chart."""
    db = tmp_path / "analytics.sqlite"
    a = Analytics(db, "store", "door", window_s=60, min_dwell_s=1.0)
    for customer, start, zones in ((1, 0, {"door"}), (2, 5, {"door", "rail"}), (3, 65, {"rail"})):
        a.record(CustomerSeen(customer, T0 + start, frozenset(zones)))
        a.record(CustomerSeen(customer, T0 + start + 4))
        a.record(CustomerEnded(customer, T0 + start + 5))
    a.poll(T0 + 130)
    a.close()
    result = _report(repo_dir, "--db", db, "--out", tmp_path / "charts")
    assert result.returncode == 0, result.stderr
    assert "customers per named zone: door 2, rail 2" in result.stdout
    assert (tmp_path / "charts" / "zone_mix.png").is_file()

    plain = tmp_path / "plain.sqlite"
    b = Analytics(plain, "store", "door", window_s=60, min_dwell_s=1.0)
    visit(b, 1, 0, 10, {"dress": 0.9})
    b.poll(T0 + 60)
    b.close()
    result = _report(repo_dir, "--db", plain, "--out", tmp_path / "plain-charts")
    assert result.returncode == 0 and "named zone" not in result.stdout
    assert not (tmp_path / "plain-charts" / "zone_mix.png").exists()
