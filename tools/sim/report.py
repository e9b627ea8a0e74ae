"""Tables, target checks, CSV/JSON files and plots of simulation results."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from tools.sim.metrics import RunResult

COST_TARGET = 1.2  # dcaas node-hours over the lower bound
BSLD_TARGET = 1.5  # dcaas mean bounded slowdown over static's


# The engine's runs the targets are checked for: dynamic nodes and cloud nodes.
OURS = ("dcaas", "dcaas-cloud")


@dataclass(frozen=True)
class Check:
    trace: str
    target: str
    met: bool
    detail: str
    policy: str = "dcaas"


def _by(results: Sequence[RunResult]) -> dict[str, dict[str, RunResult]]:
    out: dict[str, dict[str, RunResult]] = {}
    for r in results:
        out.setdefault(r.trace, {})[r.policy] = r
    return out


def dominates(a: RunResult, b: RunResult) -> bool:
    """a is no worse than b on node-hours and mean wait, and better on one.

    A run that left jobs unfinished did not do all the work, so its
    node-hours are not its cost: it is judged by ``cost_to_finish`` (what it
    spent plus the least the unfinished jobs would still cost) and by its
    mean wait counted up to the end of the run. Both are lower bounds of what
    it would take, so a run with unfinished jobs is never said to dominate.
    """
    if a.unfinished:
        return False
    cost_a, cost_b = a.node_hours, b.cost_to_finish
    no_worse = cost_a <= cost_b and a.mean_wait_s <= b.mean_wait_s
    return no_worse and (cost_a < cost_b or a.mean_wait_s < b.mean_wait_s)


def checks(results: Sequence[RunResult]) -> list[Check]:
    """The targets of the issue, for every trace that has the runs they need."""
    out = []
    for trace, runs in _by(results).items():
        for name in OURS:
            if name in runs:
                out += _checks_of(trace, name, runs)
    return out


def _checks_of(trace: str, name: str, runs: dict[str, RunResult]) -> list[Check]:
    ours = runs[name]
    out = []
    if ours.unfinished:
        out.append(Check(trace, "every job runs", False, f"{ours.unfinished} jobs never finished (starved)", name))
    target = f"node-hours <= {COST_TARGET}x lower bound"
    out.append(Check(trace, target, ours.cost_ratio <= COST_TARGET, f"{ours.cost_ratio:.3f}x", name))
    static = runs.get("static")
    if static is not None:
        ratio = ours.mean_bsld / static.mean_bsld
        detail = f"{ours.mean_bsld:.2f} vs {static.mean_bsld:.2f} = {ratio:.2f}x"
        out.append(Check(trace, f"mean bounded slowdown <= {BSLD_TARGET}x static", ratio <= BSLD_TARGET, detail, name))
    for other in ("legacy", "powersave"):
        b = runs.get(other)
        if b is None:
            continue
        unfinished = (
            f" ({b.unfinished} jobs unfinished: node-h to finish >= {b.cost_to_finish:.0f})" if b.unfinished else ""
        )
        detail = (
            f"node-h {ours.node_hours:.0f} vs {b.node_hours:.0f}, "
            f"mean wait {ours.mean_wait_s:.0f}s vs {b.mean_wait_s:.0f}s{unfinished}"
        )
        out.append(Check(trace, f"Pareto-dominates {other}", dominates(ours, b), detail, name))
    return out


COLUMNS = (
    ("trace", "trace", "{}"),
    ("policy", "policy", "{}"),
    ("jobs", "jobs", "{:d}"),
    ("unfinished", "unfin", "{:d}"),
    ("node_hours", "node-h", "{:.0f}"),
    ("cost_ratio", "xLB", "{:.3f}"),
    ("mean_wait_s", "wait s", "{:.0f}"),
    ("p95_wait_s", "p95 wait s", "{:.0f}"),
    ("mean_bsld", "bsld", "{:.2f}"),
    ("launches", "launches", "{:d}"),
    ("failed_launches", "failed", "{:d}"),
    ("peak_nodes", "peak", "{:d}"),
    ("utilisation", "util", "{:.3f}"),
    ("wall_s", "sim s", "{:.1f}"),
    ("cpu_s", "cpu s", "{:.1f}"),
)


def _cells(r: RunResult) -> list[str]:
    row = r.row()
    return [fmt.format(row[key]) for key, _title, fmt in COLUMNS]


def table(results: Sequence[RunResult]) -> str:
    """One fixed-width table of every run."""
    rows = [[title for _key, title, _fmt in COLUMNS]] + [_cells(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(results: Sequence[RunResult]) -> str:
    head = [title for _key, title, _fmt in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results]
    return "\n".join(lines)


def write(results: Sequence[RunResult], directory: str, label: str, meta: dict) -> list[str]:
    """results-<label>.csv and .json (with the run parameters); return the paths."""
    os.makedirs(directory, exist_ok=True)
    rows = [r.row() for r in results]
    csv_path = os.path.join(directory, f"results-{label}.csv")
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _round(v) for k, v in row.items()})
    json_path = os.path.join(directory, f"results-{label}.json")
    doc = {
        "parameters": meta,
        "runs": [{k: _round(v) for k, v in row.items()} for row in rows],
        "targets": [c.__dict__ for c in checks(results)],
    }
    with open(json_path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, sort_keys=False)
        fh.write("\n")
    return [csv_path, json_path]


def _round(v):
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 4)
    return v


# --- plots ---------------------------------------------------------------------
MARKERS = {"static": "s", "powersave": "^", "legacy": "v", "dcaas": "o", "dcaas-cloud": "D"}
COLOURS = {
    "static": "tab:gray",
    "powersave": "tab:blue",
    "legacy": "tab:red",
    "dcaas": "tab:green",
    "dcaas-cloud": "tab:purple",
}


def resample(timeline: Sequence[tuple[float, int]], t0: float, t1: float, step: float) -> list[float]:
    """Time-weighted mean of a step function in bins of ``step`` seconds."""
    bins = max(1, math.ceil((t1 - t0) / step))
    acc = [0.0] * bins
    points = [*timeline, (t1, 0)]
    for (start, value), (stop, _next) in zip(points, points[1:]):
        a, b = max(start, t0), min(stop, t1)
        while a < b:
            i = min(int((a - t0) // step), bins - 1)
            edge = min(b, t0 + (i + 1) * step)
            acc[i] += value * (edge - a)
            a = edge if edge > a else b  # the last bin may end before t1 by rounding
    return [a / step for a in acc]


def _pyplot():
    import matplotlib  # lazily: only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str, dpi: int = 85) -> str:
    """Write a PNG with a 64-colour palette: plots are committed, and line
    plots need few colours (a third of the size of full colour)."""
    import io

    from PIL import Image  # matplotlib's own dependency

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    _pyplot().close(fig)
    buf.seek(0)
    quantize(Image.open(buf), path)
    return path


def quantize(image, path: str) -> None:
    image.convert("RGB").quantize(colors=64).save(path, optimize=True)


def plot_cost_wait(results: Sequence[RunResult], path: str) -> str:
    plt = _pyplot()
    traces = _by(results)
    fig, axes = plt.subplots(1, len(traces), figsize=(5 * len(traces), 4.2), squeeze=False)
    for ax, (trace, runs) in zip(axes[0], traces.items()):
        for policy, r in runs.items():
            label = f"{policy} ({r.unfinished} jobs never ran)" if r.unfinished else policy
            ax.scatter(
                r.mean_wait_s / 60.0,
                r.cost_ratio,
                marker=MARKERS.get(policy, "x"),
                color=COLOURS.get(policy),
                s=70,
                label=label,
            )
        ax.axhline(1.0, color="black", lw=0.8, ls=":")
        ax.axhline(COST_TARGET, color="tab:green", lw=0.8, ls="--")
        ax.set_xscale("symlog", linthresh=1.0)
        # Room right of the slowest policy on the log axis.
        ax.set_xlim(0, 3 * max(1.0, *(r.mean_wait_s / 60.0 for r in runs.values())))
        ax.margins(y=0.15)
        ax.set_title(trace, fontsize=10)
        ax.set_xlabel("mean wait (minutes)")
        ax.set_ylabel("node-hours / lower bound")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("Cost against wait (lower left is better; dashed: 1.2x lower bound)")
    fig.tight_layout()
    return _save(fig, path)


def plot_nodes(runs: Sequence[RunResult], path: str, zoom_days: float = 3.0) -> str:
    """Nodes over time per policy: whole run (hourly means) and the first days."""
    plt = _pyplot()
    t0 = min(r.timeline[0][0] for r in runs)
    t1 = max(r.timeline[-1][0] for r in runs)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7))
    step = 3600.0 if t1 - t0 <= 30 * 86400 else 6 * 3600.0
    for r in runs:
        series = resample(r.timeline, t0, t1, step)
        days = [(i + 0.5) * step / 86400.0 for i in range(len(series))]
        top.plot(days, series, label=r.policy, color=COLOURS.get(r.policy), lw=0.9)
        zoom = [(t, n) for t, n in r.timeline if t <= t0 + zoom_days * 86400]
        if zoom:
            xs = [(t - t0) / 86400.0 for t, _n in zoom] + [zoom_days]
            ys = [n for _t, n in zoom] + [zoom[-1][1]]
            bottom.step(xs, ys, where="post", label=r.policy, color=COLOURS.get(r.policy), lw=0.9)
    top.set_title(f"{runs[0].trace}: nodes in the cloud ({step / 3600:.0f}-hour means)")
    bottom.set_title(f"first {zoom_days:g} days, exact")
    for ax in (top, bottom):
        ax.set_xlabel("days since first submit")
        ax.set_ylabel("nodes")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
