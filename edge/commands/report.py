"""``fashion-edge report [--config FILE | --db FILE] [--out DIR] [--camera C]``

Prints one line per analytics window (start UTC, camera, customers, top-3 garments, dress %,
suit %, median dwell) and writes two PNG charts into ``--out``: customers per window and the
garment mix as stacked bars. With ``--config`` the database is
``<state_dir>/analytics.sqlite`` of that config.
"""

from __future__ import annotations

from pathlib import Path

from ..analytics import read_windows
from ..errors import FashionEdgeError

DB_NAME = "analytics.sqlite"


def database_path(args) -> Path:
    if bool(args.config) == bool(args.db):
        raise FashionEdgeError("give either --config or --db")
    if args.db:
        return Path(args.db)
    from ..config import load_config

    return load_config(args.config).state_dir() / DB_NAME


def _percent(value: float, customers: int) -> str:
    return f"{100 * value:.0f}%" if customers else "-"


def format_table(windows: list[dict]) -> str:
    header = ("start (UTC)", "camera", "customers", "garment mix (top 3)", "dress", "suit", "dwell p50")
    rows = []
    for w in windows:
        top = sorted(w["garments"].items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        p50 = w["dwell_p50_s"]
        rows.append((
            w["start"].replace("T", " ").rstrip("Z") + ("*" if w["partial"] else ""),
            w["camera"],
            str(w["customers"]),
            ", ".join(f"{label} {n}" for label, n in top) or "-",
            _percent(w["dress_share"], w["customers"]),
            _percent(w["suit_share"], w["customers"]),
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


def write_charts(windows: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    out_dir.mkdir(parents=True, exist_ok=True)
    starts = sorted({w["window_start"] for w in windows})
    labels = [next(w["start"] for w in windows if w["window_start"] == s)[5:16].replace("T", " ") for s in starts]
    index = {s: i for i, s in enumerate(starts)}
    cameras = sorted({w["camera"] for w in windows})
    x = np.arange(len(starts))
    width = max(len(starts) * 0.25, 6.0)

    # Customers per window, one bar per camera side by side.
    fig, ax = plt.subplots(figsize=(min(width, 30), 4))
    bar = 0.8 / len(cameras)
    for k, camera in enumerate(cameras):
        counts = np.zeros(len(starts))
        for w in windows:
            if w["camera"] == camera:
                counts[index[w["window_start"]]] += w["customers"]
        ax.bar(x - 0.4 + bar * (k + 0.5), counts, bar, label=camera)
    ax.set_xticks(x, labels, rotation=90 if len(starts) > 8 else 0, fontsize=8)
    ax.set_ylabel("customers")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Customers per window (arrivals)")
    ax.legend(title="camera")
    fig.tight_layout()
    customers_png = out_dir / "customers_per_window.png"
    fig.savefig(customers_png, dpi=100)
    plt.close(fig)

    # Garment mix: customers per settled garment, stacked, all cameras together.
    garments = sorted({g for w in windows for g in w["garments"]})
    fig, ax = plt.subplots(figsize=(min(width, 30), 4))
    bottom = np.zeros(len(starts))
    for garment in garments:
        counts = np.zeros(len(starts))
        for w in windows:
            counts[index[w["window_start"]]] += w["garments"].get(garment, 0)
        ax.bar(x, counts, 0.8, bottom=bottom, label=garment)
        bottom += counts
    ax.set_xticks(x, labels, rotation=90 if len(starts) > 8 else 0, fontsize=8)
    ax.set_ylabel("customers")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Garment mix per window")
    if garments:
        ax.legend(fontsize=8, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    mix_png = out_dir / "garment_mix.png"
    fig.savefig(mix_png, dpi=100)
    plt.close(fig)
    return [customers_png, mix_png]


def main(args) -> int:
    db_path = database_path(args)
    windows = read_windows(db_path, camera=args.camera)
    if not windows:
        print(f"{db_path}: no analytics windows" + (f" for camera {args.camera}" if args.camera else ""))
        return 0
    print(format_table(windows))
    if any(w["partial"] for w in windows):
        print("* partial window (the daemon stopped before it ended)")
    total = sum(w["customers"] for w in windows)
    print(f"{len(windows)} window(s), {total} customer(s)")
    for path in write_charts(windows, Path(args.out)):
        print(f"wrote {path}")
    return 0
