"""Store-walk results side by side: runs (one per config) kept in one JSON by label, printed as
tables, written as markdown and drawn as PNGs (summary bars, and every customer's picture with
what each run alerted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .store_walk import GROUPS, RULES, Walk, group_figures, signature

MARK = {"TP": "✓", "FN": "miss", "FP": "FALSE", "TN": "", "excluded": ""}


def merge_run(path: Path, walk_: Walk, label: str, command: str, config: str, figures: dict,
              commit: str | None = None) -> dict:
    """Add (or replace) run ``label`` in the JSON at ``path``; runs of another walk are dropped."""
    data = json.loads(path.read_text()) if path.exists() else {}
    if data.get("walk") != signature(walk_):
        data = {"walk": signature(walk_), "runs": {}}
    data["runs"][label] = {"command": command, "config": config, "commit": commit, **figures}
    for run in data["runs"].values():  # group figures of earlier runs in today's definition
        run["groups"] = group_figures(run["per_customer"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    return data


def summary_table(runs: dict) -> str:
    lines = ["| run | rule | precision | recall | alerts | right customers / positives | false (unmatched) | "
             "on excluded | duplicates |", "|---|---|---|---|---|---|---|---|---|"]
    for label, run in runs.items():
        for rule in RULES:
            r = run["rules"][rule]
            lines.append(f"| {label} | {rule} | {r['precision']} | {r['recall']} | {r['alerts']} | "
                         f"{r['alerted']} / {r['positives']} | {r['false_alerts']} ({r['unmatched']}) | "
                         f"{r['on_excluded']} (of {r['excluded']}) | {r['duplicates']} |")
    return "\n".join(lines)


def group_table(runs: dict) -> str:
    head = "| group | customers | " + " | ".join(f"{label}: dress (without a dress) / suit / outwear alerts"
                                                  for label in runs) + " |"
    lines = [head, "|---|---|" + "---|" * len(runs)]
    first = next(iter(runs.values()))
    for group in GROUPS:
        cells = [f"{g['dress_alerts']} ({g['dress_alerts_without_dress']}) / {g['suit_alerts']} / {g['outwear_alerts']}"
                 for g in (run["groups"][group] for run in runs.values())]
        lines.append(f"| {group} | {first['groups'][group]['customers']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def identity_table(runs: dict) -> str:
    lines = ["| run | customers | counted | tracks | ID switches | IDF1 | merged | calls / customer |",
             "|---|---|---|---|---|---|---|---|"]
    for label, run in runs.items():
        i = run["identity"]
        lines.append(f"| {label} | {run['customers']} | {i['customers_counted']} | {i['tracks']} | {i['id_switches']} | "
                     f"{i['idf1']} | {i['merged_tracks']} | {run['calls_per_customer']} |")
    return "\n".join(lines)


def _truth_text(truth: dict) -> str:
    return " ".join(f"{rule}={'?' if v is None else int(v)}" for rule, v in truth.items())


def customer_table(runs: dict) -> str:
    """One row per customer: truth and, per run, the alerts with their verdicts."""
    labels = list(runs)
    lines = ["| # | source | identity | views | px | groups | truth | " + " | ".join(labels) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(labels)]
    rows = [run["per_customer"] for run in runs.values()]
    for i, row in enumerate(rows[0]):
        cells = []
        for run_rows in rows:
            r = run_rows[i]
            parts = [f"{rule} {MARK[r['verdict'][rule]]}".strip() if r["alerts"].get(rule) else
                     (f"{rule} {MARK['FN']}" if r["verdict"][rule] == "FN" else "") for rule in RULES]
            parts += [f"{rule} x{n}" for rule, n in r["alerts"].items() if n > 1]
            cells.append(", ".join(p for p in parts if p) or "-")
        lines.append(f"| {row['customer']} | {row['source']} | {row['identity']} | {row['views']} | "
                     f"{row['height_px'][0]}-{row['height_px'][1]} | {' '.join(row['groups'])} | "
                     f"{_truth_text(row['truth'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(path: Path, data: dict, png: Path | None, sheet: Path | None) -> None:
    runs = data["runs"]
    commands = "\n".join(f"- `{label}`: `{run['command']}` (config `{run['config']}`"
                         + (f", code at {run['commit']}" if run.get("commit") else "") + ")" for label, run in runs.items())
    pictures = ""
    if png is not None:
        pictures += f"\n![store walk summary]({png.name})\n"
    if sheet is not None:
        pictures += f"\n![every customer]({sheet.name})\n"
    path.write_text(STORE_WALK_DOC.format(commands=commands, summary=summary_table(runs), groups=group_table(runs),
                                          identity=identity_table(runs), customers=customer_table(runs),
                                          pictures=pictures))


def draw_summary(path: Path, runs: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(runs)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / max(len(labels), 1)
    ax = axes[0]
    names = [f"{rule}\n{kind}" for rule in RULES for kind in ("precision", "recall")]
    for k, label in enumerate(labels):
        raw = [runs[label]["rules"][rule][kind] for rule in RULES for kind in ("precision", "recall")]
        x = np.arange(len(names)) + (k - (len(labels) - 1) / 2) * width
        bars = ax.bar(x, [v or 0.0 for v in raw], width, label=label)
        # precision without any alert is undefined, not 0
        ax.bar_label(bars, labels=["no alert" if v is None else f"{v:.2f}" for v in raw], fontsize=7)
    ax.set_xticks(np.arange(len(names)), names, fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_title("per-customer alerts on the store walk", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    groups = [g for g in GROUPS if g != "dress"]
    for k, label in enumerate(labels):
        values = [runs[label]["groups"][g]["dress_alerts_without_dress"] for g in groups]
        x = np.arange(len(groups)) + (k - (len(labels) - 1) / 2) * width
        bars = ax.bar(x, values, width, label=label)
        ax.bar_label(bars, fontsize=7)
    first = runs[labels[0]]["groups"]
    ax.set_xticks(np.arange(len(groups)), [f"{g}\n({first[g]['customers']})" for g in groups], fontsize=8)
    ax.set_title("dress alerts on customers not known to wear a dress\n(group: customers in it)", fontsize=10)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_customers(path: Path, walk_: Walk, runs: dict, columns: int = 14) -> None:
    """Every customer's first view with its truth and each run's alerts (green right, red false,
    orange missed)."""
    import cv2

    cell_w, cell_h, pic_h = 120, 200, 130
    labels = list(runs)
    n = len(walk_.people)
    rows = (n + columns - 1) // columns
    sheet = np.full((rows * cell_h, columns * cell_w, 3), 255, np.uint8)
    colours = {"TP": (40, 150, 40), "FP": (30, 30, 220), "FN": (0, 140, 255)}
    for i, person in enumerate(walk_.people):
        y0, x0 = (i // columns) * cell_h, (i % columns) * cell_w
        image = person.views[0].image
        scale = pic_h / image.shape[0]
        pw = max(1, min(cell_w - 4, int(round(image.shape[1] * scale))))
        pic = cv2.resize(image, (pw, pic_h), interpolation=cv2.INTER_AREA)
        sheet[y0 + 2:y0 + 2 + pic_h, x0 + 2:x0 + 2 + pw] = pic
        truth = person.truth
        text = [f"#{i} {person.source[:4]}", " ".join(f"{r[0]}{'?' if v is None else int(v)}" for r, v in truth.items())]
        for k, line in enumerate(text):
            cv2.putText(sheet, line, (x0 + 2, y0 + pic_h + 14 + 12 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        for k, label in enumerate(labels):
            row = runs[label]["per_customer"][i]
            marks = [(rule, row["verdict"][rule]) for rule in RULES if row["verdict"][rule] in colours
                     or (row["verdict"][rule] == "excluded" and row["alerts"].get(rule))]
            x = x0 + 2
            cv2.putText(sheet, f"{k + 1}:", (x, y0 + pic_h + 40 + 12 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
            x += 14
            for rule, verdict in marks:
                colour = colours.get(verdict, (128, 128, 128))
                cv2.putText(sheet, rule[:4], (x, y0 + pic_h + 40 + 12 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1)
                x += 30
    legend = np.full((40, sheet.shape[1], 3), 255, np.uint8)
    line = "  ".join(f"{k + 1} = {label}" for k, label in enumerate(labels))
    cv2.putText(legend, f"runs: {line}   green: right alert, red: false alert, orange: missed, grey: alert on "
                "an excluded truth (d/s/o = dress/suit/outwear truth, ? = unknown)", (4, 24),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.imwrite(str(path), np.vstack([legend, sheet]), [cv2.IMWRITE_JPEG_QUALITY, 80])


STORE_WALK_DOC = """# Store walk: per-customer dress, suit and outwear alerts at CCTV scale

CCTV-sized customers (80-250 px tall) walk across a store backdrop, a few at once, rendered from
**validation** people only: PETA val identities (split by identity exactly as the attribute
model's training: `load_peta(root, "val", 0.2, 42)`, several views per identity shown one after
another), Clothing Co-Parsing val images (`load_co_parsing(root, "val", 0.2, 42)`, cut to the
mask's person box) and colorful-fashion `splits/val.txt` people (dresses, skirts, long coats).
Each run is the daemon's own `CameraPipeline` on the same clip. How the walk is laid out, the truth
of each customer and the scoring: `scenarios/store_walk.py`; the short version is in
`docs/scenarios.md` (section "Store walk"). Runs:

{commands}
{pictures}
## Alerts per rule

Precision counts alerts on positive customers over alerts on positive or negative customers
(an alert on a track matched to no customer is false); alerts on customers whose truth is unknown
for that rule (a PETA skirt for dress, a suit half-labelled in PETA) are shown as "on excluded".

{summary}

## Alerts on each group of customers

{groups}

## Identity

{identity}

## Every customer

Truth: 1 worn, 0 not worn, ? unknown (excluded). Per run: the rules that alerted (✓ right,
FALSE wrong), "miss" for a positive customer without an alert, xN when a rule fired N times.

{customers}
"""
