"""``fashion-edge report [--config FILE | --db FILE] [--out DIR] [--camera C]``

(``--db postgresql://...``: the chain report of the head office's database, ``edge/chain/report.py``.)

Prints one line per analytics window (start in the store's time zone, 24 h: ``service.time_zone``
of ``--config``, else the system's; camera, customers, top-3 garments, dress %, suit %, median
dwell) and writes two PNG charts into ``--out`` (default: ``report/`` in the config's state
directory, or beside ``--db``): customers per window and the garment mix, one bar per garment
side by side with the window's customers marked. With ``--config`` the database is
``<state_dir>/analytics.sqlite`` of that config, and only that config's site is reported (two
configs sharing a state folder do not mix).

Charts: the time axis is the window start in that zone (like the table) with the window length; y is
people per window; a partial window is hatched and its tick has a ``*``; a window without
customers (or without a settled garment) says so on the chart, and a chart with nothing at all says
so in its middle; colours come from ``edge/plot_style.py`` (one colour per label in every chart).
The dress/suit columns are the rules' verdicts (``customers_matched``), the garment mix the settled
votes before the rules (``edge/analytics/windows.py``). ``--out`` must be a folder.

Then, per rule, the alerts kept in the device's event list (``events.sqlite`` beside the analytics
database, ``edge/events``) and how many a person marked as false alerts on the web page, printed and
written as ``rules.csv`` into ``--out`` (``rule,alerts,marked_false,false_share``).
"""

from __future__ import annotations

from pathlib import Path

from ..analytics import read_windows
from ..errors import FashionEdgeError
from ..localtime import local_text, store_time_zone, system_time_zone

DB_NAME = "analytics.sqlite"
RULES_CSV = "rules.csv"


def database_path(args) -> Path:
    return _source(args)[0]


def _source(args):
    """(analytics database, the config or None with --db)."""
    if bool(args.config) == bool(args.db):
        raise FashionEdgeError("give either --config or --db")
    if args.db:
        return Path(args.db), None
    from ..config import load_config

    config = load_config(args.config)
    return config.state_dir() / DB_NAME, config


def default_out_dir(db_path: Path, config=None) -> Path:
    """report/ in the config's state directory, or beside the database (never the current folder)."""
    return (config.state_dir() if config is not None else db_path.parent) / "report"


LEGACY_NOTE = "~ share counted by an older version (every settled garment, rule vetoes not applied)"


def _legacy(window: dict) -> str:
    return "~" if window.get("schema_version", 1) < 2 and window["customers"] else ""


def _percent(value: float, customers: int) -> str:
    return f"{100 * value:.0f}%" if customers else "-"


def format_table(windows: list[dict], zone: str = "UTC") -> str:
    header = (f"start ({zone})", "camera", "customers", "garment mix (top 3)", "dress", "suit", "dwell p50")
    rows = []
    for w in windows:
        top = sorted(w["garments"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        p50 = w["dwell_p50_s"]
        rows.append((
            local_text(w["window_start"], zone) + ("*" if w["partial"] else ""),
            w["camera"],
            str(w["customers"]),
            ", ".join(f"{label} {n}" for label, n in top) or "-",
            _percent(w["dress_share"], w["customers"]) + _legacy(w),
            _percent(w["suit_share"], w["customers"]) + _legacy(w),
            f"{p50:.1f} s" if p50 is not None else "-",
        ))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {2, 4, 5, 6}
    lines = []
    for r in [header, *rows]:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


PARTIAL_NOTE = "* partial window (the daemon stopped before it ended)"
NO_CUSTOMERS = "no customers"
NO_GARMENTS = "no garment settled"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _time_axis(windows: list[dict], zone: str | None = None):
    """Window starts in order, their tick labels (the store's time zone, 24 h, ``*`` = partial) and
    which are partial."""
    zone = zone or system_time_zone()
    starts = sorted({w["window_start"] for w in windows})
    partial = [any(w["partial"] for w in windows if w["window_start"] == s) for s in starts]
    ticks = [local_text(s, zone, "%m-%d %H:%M") + ("*" if p else "") for s, p in zip(starts, partial)]
    return starts, ticks, partial


def _window_minutes(windows: list[dict]) -> float:
    return round(max(w["window_end"] - w["window_start"] for w in windows) / 60.0, 2)


def _finish_axes(ax, windows: list[dict], ticks: list[str], totals, empty_texts: list[str], ylabel: str,
                 title: str, zone: str | None = None) -> None:
    """Shared look: time axis in the store's zone with window length, units on y, empty windows written out
    (``empty_texts[i]`` on window i when its total is 0; all empty: one text in the middle)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    x = np.arange(len(ticks))
    ax.set_xticks(x, ticks, rotation=90 if len(ticks) > 8 else 0, fontsize=8)
    ax.set_xlim(-0.6, len(ticks) - 0.4)
    ax.set_xlabel(f"window start, {zone or system_time_zone()} (MM-DD HH:MM, 24 h), "
                  f"{_window_minutes(windows):g}-minute windows")
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    top = max(float(np.max(totals)) if len(totals) else 0.0, 1.0)
    ax.set_ylim(0, top * 1.15)
    if not np.any(totals):
        # Nothing at all: say so in the middle instead of leaving a blank axis.
        overall = empty_texts[0] if len(set(empty_texts)) == 1 else NO_GARMENTS
        ax.text(0.5, 0.5, f"{overall} in {'this window' if len(ticks) == 1 else 'any window'}",
                transform=ax.transAxes, ha="center", va="center", fontsize=12, color="dimgrey")
        return
    for i, total in enumerate(totals):
        if not total:
            ax.text(i, top * 0.03, empty_texts[i], rotation=90, ha="center", va="bottom", fontsize=7, color="dimgrey")


def _partial_hatch(partial: list[bool], i: int) -> str | None:
    return "//" if partial[i] else None


def customers_figure(windows: list[dict], zone: str | None = None):
    """Customers per window, one bar per camera side by side (colour: ``label_colour(camera)``)."""
    import numpy as np
    from matplotlib.patches import Patch

    from ..plot_style import distinct_colours

    plt = _pyplot()
    starts, ticks, partial = _time_axis(windows, zone)
    index = {s: i for i, s in enumerate(starts)}
    cameras = sorted({w["camera"] for w in windows})
    colours = distinct_colours(cameras)
    x = np.arange(len(starts))
    # constrained layout leaves room for the legend right of the axes (never over the bars)
    fig, ax = plt.subplots(figsize=(min(max(len(starts) * 0.25, 6.0), 30) + 2.5, 4.2), layout="constrained")
    bar = 0.8 / len(cameras)
    totals = np.zeros(len(starts))
    for k, camera in enumerate(cameras):
        counts = np.zeros(len(starts))
        for w in windows:
            if w["camera"] == camera:
                counts[index[w["window_start"]]] += w["customers"]
        bars = ax.bar(x - 0.4 + bar * (k + 0.5), counts, bar, label=camera, color=colours[camera])
        for i, patch in enumerate(bars):
            patch.set_hatch(_partial_hatch(partial, i))
        totals += counts
    _finish_axes(ax, windows, ticks, totals, [NO_CUSTOMERS] * len(ticks), "customers (people per window, by arrival)",
                 "Customers per window (arrivals)", zone)
    handles, names = ax.get_legend_handles_labels()
    if any(partial):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//"))
        names.append(PARTIAL_NOTE)
    ax.legend(handles, names, title="camera", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _stacked_mix(windows: list[dict], mix_of, ylabel: str, title: str, empty_notes=None, zone: str | None = None):
    """(figure, axes, partial flags): customers per name of a per-window ``{name: customers}`` mix
    (``mix_of(window)``), stacked per window, one fixed colour per name; ``empty_notes(customers)``
    says what an empty window's text is (default: no customers)."""
    import numpy as np

    from ..plot_style import distinct_colours

    plt = _pyplot()
    starts, ticks, partial = _time_axis(windows, zone)
    index = {s: i for i, s in enumerate(starts)}
    names = sorted({name for w in windows for name in mix_of(w)})
    colours = distinct_colours(names)
    customers = np.zeros(len(starts))
    for w in windows:
        customers[index[w["window_start"]]] += w["customers"]
    x = np.arange(len(starts))
    # constrained layout leaves room for the legend right of the axes
    fig, ax = plt.subplots(figsize=(min(max(len(starts) * 0.25, 6.0), 30) + 3.5, 4.2), layout="constrained")
    bottom = np.zeros(len(starts))
    for name in names:
        counts = np.zeros(len(starts))
        for w in windows:
            counts[index[w["window_start"]]] += mix_of(w).get(name, 0)
        bars = ax.bar(x, counts, 0.8, bottom=bottom, label=name, color=colours[name])
        for i, patch in enumerate(bars):
            patch.set_hatch(_partial_hatch(partial, i))
        bottom += counts
    notes = empty_notes(customers) if empty_notes else [NO_CUSTOMERS] * len(starts)
    _finish_axes(ax, windows, ticks, bottom, notes, ylabel, title, zone)
    return fig, ax, partial


def garment_mix_figure(windows: list[dict], zone: str | None = None):
    """Customers per settled garment label, all cameras together, one bar per label side by side in
    each window (not stacked: one customer with shoes and a dress is in both bars, and a stack would
    pass the number of customers), with the window's customers as a black mark above them. Before
    the rules: a dress a rule vetoed is still a dress vote here (``edge/analytics/windows.py``)."""
    return _side_by_side_mix(windows, "garments", "customers with the garment (people per window)",
                             "Garment mix per window (settled votes, before rules)", zone)


def area_mix_figure(windows: list[dict], zone: str | None = None):
    """Customers per named zone of the cameras (``cameras[].zones``: their feet were in it), side by
    side like the garment mix (a customer who walked through two zones is in both bars); drawn only
    when some window counted zones."""
    return _side_by_side_mix(windows, "zones", "customers who were in the zone (people per window)",
                             "Customers per named zone and window", zone, none_note="customers in no named zone")


def _side_by_side_mix(windows: list[dict], key: str, ylabel: str, title: str, zone: str | None = None,
                      none_note: str = NO_GARMENTS):
    """One bar per name of the window's ``key`` mix, side by side, and the window's customers as a
    black mark; ``zone`` is the time zone of the axis."""
    import numpy as np
    from matplotlib.patches import Patch

    from ..plot_style import distinct_colours

    plt = _pyplot()
    starts, ticks, partial = _time_axis(windows, zone)
    index = {s: i for i, s in enumerate(starts)}
    names = sorted({name for w in windows for name in (w.get(key) or {})})
    colours = distinct_colours(names)
    customers = np.zeros(len(starts))
    for w in windows:
        customers[index[w["window_start"]]] += w["customers"]
    x = np.arange(len(starts))
    fig, ax = plt.subplots(figsize=(min(max(len(starts) * 0.25 * max(1, len(names) / 3), 6.0), 30) + 3.5, 4.2),
                           layout="constrained")
    width = 0.8 / max(1, len(names))
    tallest = np.zeros(len(starts))
    for k, name in enumerate(names):
        counts = np.zeros(len(starts))
        for w in windows:
            counts[index[w["window_start"]]] += (w.get(key) or {}).get(name, 0)
        bars = ax.bar(x - 0.4 + width * (k + 0.5), counts, width, label=name, color=colours[name])
        for i, patch in enumerate(bars):
            patch.set_hatch(_partial_hatch(partial, i))
        tallest = np.maximum(tallest, counts)
    if customers.any():
        ax.hlines(customers, x - 0.45, x + 0.45, colors="black", linewidths=1.5, label="customers in the window")
    # A window without customers says so; one with customers whose garments never settled the other.
    notes = [none_note if n else NO_CUSTOMERS for n in customers]
    _finish_axes(ax, windows, ticks, tallest, notes, ylabel, title, zone)
    if customers.any():  # the y range holds the customers marks too
        ax.set_ylim(0, max(float(customers.max()), 1.0) * 1.15)
    handles, labels = ax.get_legend_handles_labels()
    if any(partial):
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//"))
        labels.append(PARTIAL_NOTE)
    if handles:
        ax.legend(handles, labels, fontsize=8, ncol=2 if len(handles) > 12 else 1, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0))
    return fig


def style_mix_figure(windows: list[dict], zone: str | None = None):
    """Customers per style (nearest k-means style of the outfit embedding, docs/styles.md), stacked
    per window; drawn only when some window has a style mix (styles.enabled)."""
    fig, ax, _ = _stacked_mix(windows, lambda w: w.get("styles") or {}, "customers of the style (people per window)",
                              "Style mix per window (k-means styles)", zone=zone)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def write_charts(windows: list[dict], out_dir: Path, zone: str | None = None) -> list[Path]:
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    charts = [("customers_per_window.png", customers_figure), ("garment_mix.png", garment_mix_figure)]
    if any(w.get("styles") for w in windows):  # styles.enabled (issue 14)
        charts.append(("style_mix.png", style_mix_figure))
    if any(w.get("zones") for w in windows):  # cameras with named zones
        charts.append(("zone_mix.png", area_mix_figure))
    for name, build in charts:
        fig = build(windows, zone)
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
        written.append(out_dir / name)
    return written


def check_out_dir(out: Path) -> None:
    """``--out`` must be a folder (or not exist yet): a file there is one line, not a traceback."""
    if out.exists() and not out.is_dir():
        raise FashionEdgeError("is a file, not a folder (--out names the folder for the PNG charts)", path=out)
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise FashionEdgeError(f"{parent} is a file, not a folder (--out names the folder for the PNG charts)",
                               path=out)


def rule_figures(db_path: Path, config=None, camera: str | None = None) -> list[dict] | None:
    """Per rule (all cameras together): alerts in the event list and those marked false; None when the
    state directory has no event list (a database from before issue 23, or copied alone)."""
    from ..events import DB_NAME as EVENTS_DB, read_rule_counts

    counts = read_rule_counts(db_path.parent / EVENTS_DB, site=config.site if config is not None else None,
                              camera=camera)
    if counts is None:
        return None
    rules: dict[str, dict] = {}
    if config is not None:  # every rule of the config from 0, like the metrics
        for rule in config.rules:
            if camera is None or not rule.cameras or camera in rule.cameras:
                rules[rule.name] = {"rule": rule.name, "alerts": 0, "marked_false": 0}
    for (_, rule), n in counts.items():
        entry = rules.setdefault(rule, {"rule": rule, "alerts": 0, "marked_false": 0})
        entry["alerts"] += n["alerts"]
        entry["marked_false"] += n["false"]
    return [rules[r] for r in sorted(rules)]


def _false_share(row: dict) -> str:
    return f"{100 * row['marked_false'] / row['alerts']:.0f}%" if row["alerts"] else "-"


def format_rules(rows: list[dict]) -> str:
    """The per-rule table: rule, alerts, marked false, false %."""
    header = ("rule", "alerts", "marked false", "false %")
    body = [(r["rule"], str(r["alerts"]), str(r["marked_false"]), _false_share(r)) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line)).rstrip()
             for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_rules_csv(rows: list[dict], path: Path) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["rule", "alerts", "marked_false", "false_share"])
        for r in rows:
            writer.writerow([r["rule"], r["alerts"], r["marked_false"],
                             round(r["marked_false"] / r["alerts"], 4) if r["alerts"] else ""])
    return path


def _report_rules(db_path: Path, config, camera: str | None, out_dir: Path) -> None:
    rows = rule_figures(db_path, config, camera)
    if rows is None:
        return
    days = f", the last {config.events.retention_days:g} days (events.retention_days)" if config is not None else ""
    print()
    print(f"alerts per rule and those marked false on the web page (the device's event list{days}):")
    print(format_rules(rows) if rows else "no alerts stored")
    try:
        path = write_rules_csv(rows, out_dir / RULES_CSV)
    except OSError as exc:
        raise FashionEdgeError(f"cannot write {RULES_CSV} ({exc.strerror or exc})", path=out_dir) from None
    print(f"wrote {path}")


def main(args) -> int:
    from ..chain.report import is_dsn

    if args.db and is_dsn(args.db):  # issue 24: the chain view of the head office's PostgreSQL
        from ..chain.report import main as chain_main

        if args.out is None:  # the chain report's own default, as before (a head-office tool: no state folder)
            args.out = "report"
        return chain_main(args)
    db_path, config = _source(args)
    out_dir = Path(args.out) if args.out else default_out_dir(db_path, config)
    check_out_dir(out_dir)
    zone = store_time_zone(config)
    windows = read_windows(db_path, camera=args.camera)
    others = 0
    if config is not None:  # a state folder shared by two configs: this site's windows only
        others = sum(1 for w in windows if w["site"] != config.site)
        windows = [w for w in windows if w["site"] == config.site]
    if not windows:
        print(f"{db_path}: no analytics windows" + (f" for camera {args.camera}" if args.camera else "")
              + (f" of site {config.site} ({others} of other sites left out)" if others else ""))
        _report_rules(db_path, config, args.camera, out_dir)
        return 0
    print(format_table(windows, zone))
    if any(w["partial"] for w in windows):
        print(PARTIAL_NOTE)
    if any(_legacy(w) for w in windows):
        print(LEGACY_NOTE)
    if config is not None:  # which clock the windows are on
        files = [c.name for c in config.cameras if not c.is_live
                 and any(w["camera"] == c.name for w in windows)]
        if files:
            print(f"camera(s) {', '.join(files)} read a video file: their windows are on the run's start + the "
                  "time in the video, not the wall clock")
    total = sum(w["customers"] for w in windows)
    print(f"{len(windows)} window(s), {total} customer(s)"
          + (f"; {others} window(s) of other sites in {db_path} left out" if others else ""))
    areas: dict[str, int] = {}
    for w in windows:
        for name, n in (w.get("zones") or {}).items():
            areas[name] = areas.get(name, 0) + n
    if areas:  # a customer who walked through two zones counts in both
        print("customers per named zone: " + ", ".join(f"{name} {n}" for name, n in sorted(areas.items())))
    try:
        charts = write_charts(windows, out_dir, zone)
    except OSError as exc:
        raise FashionEdgeError(f"cannot write the charts ({exc.strerror or exc})", path=out_dir) from None
    for path in charts:
        print(f"wrote {path}")
    _report_rules(db_path, config, args.camera, out_dir)
    return 0
