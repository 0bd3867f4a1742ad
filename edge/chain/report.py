"""``fashion-edge report --db postgresql://... [--since D] [--until D] [--out DIR]``: the chain view.

Per store and chain-wide, for the period [since, until) (UTC days; windows by their start, alerts by
their time): customers, garment mix (customers per settled garment, before the rules), dress and suit
share (customers the ``dress`` / ``suit`` rule's garment test accepted / customers), alerts per rule,
and dwell (the customer-weighted mean of the windows' mean dwell). Written: a table on stdout,
``chain_stores.csv`` (one row per store, then ``ALL``), and PNG charts comparing the stores:
``chain_customers.png``, ``chain_garment_mix.png`` (each store's garment composition), ``chain_shares.png``
(dress / suit share) and ``chain_alerts.png`` (alerts per rule).

The database password comes from the DSN or from libpq's own ``PGPASSWORD`` / ``~/.pgpass``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from ..errors import FashionEdgeError

ALL = "ALL"


def is_dsn(text: str | None) -> bool:
    return bool(text) and text.startswith(("postgresql://", "postgres://"))


@dataclass
class StoreFigures:
    site: str
    cameras: int = 0
    windows: int = 0
    customers: int = 0
    dress_customers: int = 0
    suit_customers: int = 0
    dwell_weighted_s: float = 0.0  # sum of dwell_mean_s x customers
    dwell_customers: int = 0  # customers of windows with a dwell
    garments: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)

    @property
    def dress_share(self) -> float | None:
        return self.dress_customers / self.customers if self.customers else None

    @property
    def suit_share(self) -> float | None:
        return self.suit_customers / self.customers if self.customers else None

    @property
    def dwell_mean_s(self) -> float | None:
        return self.dwell_weighted_s / self.dwell_customers if self.dwell_customers else None

    def as_dict(self) -> dict:
        """The figures as JSON values (the chain view's ``/api/chain``; same names as the CSV's columns)."""
        return {"site": self.site, "cameras": self.cameras, "windows": self.windows, "customers": self.customers,
                "dress_customers": self.dress_customers, "suit_customers": self.suit_customers,
                "dress_share": self.dress_share, "suit_share": self.suit_share, "dwell_mean_s": self.dwell_mean_s,
                "alerts": sum(self.alerts.values()), "alerts_per_rule": dict(sorted(self.alerts.items())),
                "garments": dict(sorted(self.garments.items(), key=lambda kv: (-kv[1], kv[0])))}

    def add(self, other: "StoreFigures") -> None:
        for name in ("cameras", "windows", "customers", "dress_customers", "suit_customers", "dwell_weighted_s",
                     "dwell_customers"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.garments, other.garments), (self.alerts, other.alerts)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n


def _day(text: str, flag: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=timezone.utc)
    except ValueError:
        raise FashionEdgeError(f"{text!r} is not a day (YYYY-MM-DD)", field=flag) from None


def period(since: str | None, until: str | None, today: date | None = None, days: int = 7,
           names: tuple[str, str] = ("--since", "--until")) -> tuple[datetime, datetime]:
    """[since, until) in UTC; default the ``days`` days up to and including today. ``names``: how the
    two bounds are called in an error (the CLI's flags, the chain view's query parameters)."""
    today = today or datetime.now(timezone.utc).date()
    end = _day(until, names[1]) if until else datetime.combine(today + timedelta(days=1), datetime.min.time(),
                                                               tzinfo=timezone.utc)
    start = _day(since, names[0]) if since else end - timedelta(days=days)
    if start >= end:
        raise FashionEdgeError(f"must be before {names[1]}", field=names[0])
    return start, end


def _connect(dsn: str):
    try:
        import psycopg
    except ImportError:
        raise FashionEdgeError("psycopg is not installed: pip install 'fashion-edge[chain]'") from None
    try:
        return psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise FashionEdgeError(f"cannot open the chain database ({' '.join(str(exc).split())})",
                               field="--db") from None


def chain_figures(conn, start: datetime, end: datetime) -> dict[str, StoreFigures]:
    """Figures per site for windows starting and alerts raised in [start, end)."""
    import psycopg

    stores: dict[str, StoreFigures] = {}

    def store(site: str) -> StoreFigures:
        return stores.setdefault(site, StoreFigures(site))

    try:
        for site, cameras, windows, customers, dress, suit, dwell_w, dwell_n in conn.execute(
                """SELECT site, count(DISTINCT camera), count(*), sum(customers), sum(dress_customers),
                          sum(suit_customers), sum(dwell_mean_s * customers) FILTER (WHERE dwell_mean_s IS NOT NULL),
                          sum(customers) FILTER (WHERE dwell_mean_s IS NOT NULL)
                   FROM windows WHERE window_start >= %s AND window_start < %s GROUP BY site""", (start, end)):
            s = store(site)
            s.cameras, s.windows, s.customers = int(cameras), int(windows), int(customers or 0)
            s.dress_customers, s.suit_customers = int(dress or 0), int(suit or 0)
            s.dwell_weighted_s, s.dwell_customers = float(dwell_w or 0.0), int(dwell_n or 0)
        for site, label, n in conn.execute(
                """SELECT site, g.key, sum(g.value::int) FROM windows, jsonb_each_text(garments) AS g
                   WHERE window_start >= %s AND window_start < %s GROUP BY site, g.key""", (start, end)):
            store(site).garments[label] = int(n)
        for site, rule, n in conn.execute(
                "SELECT site, rule, count(*) FROM alerts WHERE time >= %s AND time < %s GROUP BY site, rule",
                (start, end)):
            store(site).alerts[rule] = int(n)
    except psycopg.errors.UndefinedTable:
        raise FashionEdgeError("no chain tables in this database (start `fashion-edge collect` on it first)",
                               field="--db") from None
    return dict(sorted(stores.items()))


def chain_total(stores: dict[str, StoreFigures]) -> StoreFigures:
    total = StoreFigures(ALL)
    for figures in stores.values():
        total.add(figures)
    return total


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_table(stores: dict[str, StoreFigures], total: StoreFigures) -> str:
    header = ("store", "cameras", "windows", "customers", "top garments", "dress", "suit", "alerts", "dwell mean")
    rows = []
    for s in [*stores.values(), total]:
        top = sorted(s.garments.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        rows.append((s.site, str(s.cameras), str(s.windows), str(s.customers),
                     ", ".join(f"{k} {v}" for k, v in top) or "-", _pct(s.dress_share), _pct(s.suit_share),
                     str(sum(s.alerts.values())), "-" if s.dwell_mean_s is None else f"{s.dwell_mean_s:.1f} s"))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {1, 2, 3, 5, 6, 7, 8}
    lines = ["  ".join(c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(stores: dict[str, StoreFigures], total: StoreFigures, path: Path) -> Path:
    garments = sorted({g for s in [*stores.values(), total] for g in s.garments})
    rules = sorted({r for s in [*stores.values(), total] for r in s.alerts})
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["site", "cameras", "windows", "customers", "dress_customers", "suit_customers",
                         "dress_share", "suit_share", "dwell_mean_s", "alerts"]
                        + [f"garment_{g}" for g in garments] + [f"alerts_{r}" for r in rules])
        for s in [*stores.values(), total]:
            def fmt(v):
                return "" if v is None else round(v, 4)
            writer.writerow([s.site, s.cameras, s.windows, s.customers, s.dress_customers, s.suit_customers,
                             fmt(s.dress_share), fmt(s.suit_share), fmt(s.dwell_mean_s), sum(s.alerts.values())]
                            + [s.garments.get(g, 0) for g in garments] + [s.alerts.get(r, 0) for r in rules])
    return path


def _figure(n_stores: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(min(max(n_stores * 0.6, 6.0), 30) + 3.0, 4.4), layout="constrained")
    return plt, fig, ax


def write_charts(stores: dict[str, StoreFigures], start: datetime, end: datetime, out_dir: Path) -> list[Path]:
    import numpy as np

    from ..plot_style import distinct_colours

    span = f"{start:%Y-%m-%d} to {(end - timedelta(seconds=1)):%Y-%m-%d} (UTC)"
    sites = list(stores)
    x = np.arange(len(sites))
    written = []

    def save(plt, fig, ax, name: str, title: str, ylabel: str) -> None:
        ax.set_xticks(x, sites, rotation=90 if len(sites) > 10 else 0, fontsize=8)
        ax.set_xlabel("store (site)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}, {span}")
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
        written.append(out_dir / name)

    plt, fig, ax = _figure(len(sites))
    ax.bar(x, [stores[s].customers for s in sites], color="#4c72b0")
    save(plt, fig, ax, "chain_customers.png", "Customers per store", "customers (arrivals)")

    # garment mix as each store's composition (sums to 100 %: stores of different size side by side;
    # a customer wearing two garments counts once for each)
    labels = sorted({g for s in stores.values() for g in s.garments})
    colours = distinct_colours(labels)
    plt, fig, ax = _figure(len(sites))
    bottom = np.zeros(len(sites))
    for label in labels:
        share = np.array([100.0 * stores[s].garments.get(label, 0) / sum(stores[s].garments.values())
                          if stores[s].garments else 0 for s in sites])
        ax.bar(x, share, 0.8, bottom=bottom, label=label, color=colours[label])
        bottom += share
    if labels:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="garment")
    save(plt, fig, ax, "chain_garment_mix.png", "Garment mix per store (settled garments, before rules)",
         "% of the store's garments (customer x garment)")

    plt, fig, ax = _figure(len(sites))
    for k, (name, attr, colour) in enumerate((("dress", "dress_share", "#c44e52"), ("suit", "suit_share", "#55a868"))):
        values = [100.0 * (getattr(stores[s], attr) or 0.0) for s in sites]
        ax.bar(x - 0.2 + 0.4 * k, values, 0.4, label=name, color=colour)
    ax.legend(fontsize=8, title="rule's garment test")
    save(plt, fig, ax, "chain_shares.png", "Dress and suit share per store", "% of customers")

    rules = sorted({r for s in stores.values() for r in s.alerts})
    rule_colours = distinct_colours(rules)
    plt, fig, ax = _figure(len(sites))
    width = 0.8 / max(len(rules), 1)
    for k, rule in enumerate(rules):
        ax.bar(x - 0.4 + width * (k + 0.5), [stores[s].alerts.get(rule, 0) for s in sites], width, label=rule,
               color=rule_colours[rule])
    if rules:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="rule")
    else:
        ax.text(0.5, 0.5, "no alerts in this period", transform=ax.transAxes, ha="center", va="center")
    save(plt, fig, ax, "chain_alerts.png", "Alerts per rule and store", "alerts")
    return written


def main(args) -> int:
    from ..commands.report import check_out_dir

    if getattr(args, "camera", None) or getattr(args, "config", None):
        raise FashionEdgeError("applies to a store's own SQLite database, not to the chain report (--db postgresql://)",
                               field="--camera" if getattr(args, "camera", None) else "--config")
    start, end = period(getattr(args, "since", None), getattr(args, "until", None))
    out_dir = Path(args.out)
    check_out_dir(out_dir)
    with _connect(args.db) as conn:
        stores = chain_figures(conn, start, end)
    span = f"{start:%Y-%m-%d} .. {end:%Y-%m-%d} (UTC, end excluded)"
    if not stores:
        print(f"no windows or alerts from {span}")
        return 0
    total = chain_total(stores)
    print(f"chain report {span}: {len(stores)} store(s)")
    print(format_table(stores, total))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        written = [write_csv(stores, total, out_dir / "chain_stores.csv"), *write_charts(stores, start, end, out_dir)]
    except OSError as exc:
        raise FashionEdgeError(f"cannot write the report ({exc.strerror or exc})", path=out_dir) from None
    for path in written:
        print(f"wrote {path}")
    return 0
