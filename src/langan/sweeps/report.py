"""`langan sweep show NAME` (the trials, best first) and `langan sweep plot NAME --x KEY --y METRIC [--hue KEY]`
(mean ± std over seeds against one config key, one line per value of another: a scaling curve; PNG + CSV).

Both read the study alone (its spec is recorded in it), so they work on any machine that reaches the storage;
a point's final figures are re-read from its runs when they are on this machine (e.g. after `langan eval`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from langan.errors import LanganError
from langan.fileio import write_csv_beside
from langan.runs.records import final_metrics, format_table, summarize
from langan.runs.rundir import RunDir
from langan.sweeps import study as studies
from langan.sweeps.spec import SweepSpec, load_spec, read_spec_json


def open_sweep(name: str, runs_dir: str | Path, storage: str | None = None) -> tuple[Any, SweepSpec]:
    """A sweep by NAME (or by its SWEEP.yaml): its study and recorded spec."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        spec = load_spec(name)
        name, storage = spec.name, storage or spec.storage
    record = studies.sweep_dir(runs_dir, name) / "sweep.json"
    if storage is None and record.is_file():
        storage = json.loads(record.read_text(encoding="utf-8"))["storage"]
    if storage is None:
        raise LanganError(f"no sweep '{name}' in {studies.sweep_dir(runs_dir, '')} (give --runs-dir, or --storage URL "
                          "for a sweep kept in another database)")
    study = studies.load_study(name, storage)
    if "spec" not in study.user_attrs:
        raise LanganError(f"study '{name}' in {storage} was not made by `langan sweep`")
    return study, read_spec_json(study.user_attrs["spec"])


def seed_finals(t: Any) -> dict[str, dict[str, float]]:
    """seed -> final figures of a trial's runs: from the run folders when present, else as recorded."""
    recorded = t.user_attrs.get("finals", {})
    folder = Path(t.user_attrs.get("folder", ""))
    out = {}
    for seed in t.user_attrs.get("seeds", []):
        run = folder / f"seed-{seed}"
        out[str(seed)] = final_metrics(RunDir(run)) if (run / "meta.json").is_file() else recorded.get(str(seed), {})
    return out


ORDER = {"COMPLETE": 0, "PRUNED": 1, "RUNNING": 2, "FAIL": 3, "WAITING": 4}


def show_rows(study: Any, spec: SweepSpec) -> list[dict[str, Any]]:
    trials = [t for t in study.get_trials(deepcopy=False) if studies.claimed(t)
              and not any(k in t.user_attrs for k in studies.SKIPPED)]
    sign = 1 if spec.direction == "minimize" else -1
    trials.sort(key=lambda t: (ORDER.get(t.state.name, 5), sign * t.value if t.value is not None else 0, t.number))
    short = {k: k.rsplit(".", 1)[-1] for k in spec.space}
    if len(set(short.values())) < len(short):
        short = {k: k for k in spec.space}
    rows = []
    for t in trials:
        values = [float(v) for v in t.user_attrs.get("values", {}).values()]
        s = summarize(values) if values else None
        row = {"trial": t.number, "state": t.state.name.lower()}
        row |= {short[k]: _fmt(t.params.get(k)) for k in spec.space}
        row[spec.metric] = "-" if s is None else f"{s['mean']:.4f}"
        row["± std"] = "-" if s is None or len(values) < 2 else f"{s['std']:.4f}"
        row["seeds"] = len(values) if values else "-"
        row["runs"] = _near(t.user_attrs.get("folder", "-"))
        rows.append(row)
    return rows


def _near(folder: str) -> str:
    """A folder relative to the working directory when it lies below it."""
    try:
        return str(Path(folder).relative_to(Path.cwd()))
    except ValueError:
        return folder


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def show(name: str, runs_dir: str | Path, storage: str | None = None) -> str:
    study, spec = open_sweep(name, runs_dir, storage)
    rows = show_rows(study, spec)
    counts = {s: sum(r["state"] == s for r in rows) for s in ("complete", "pruned", "running", "fail")}
    head = (f"sweep {spec.name}: {counts['complete']} complete, {counts['pruned']} pruned, "
            f"{counts['running']} running, {counts['fail']} failed of {spec.n_trials} ({spec.sampler}); "
            f"{spec.metric} ({spec.direction}) "
            f"= mean over seeds {','.join(map(str, spec.seeds))}")
    return head + "\n" + format_table(rows)


# ----------------------------------------------------------------------------- plot


def curve_rows(study: Any, spec: SweepSpec, x: str, y: str, hue: str | None) -> list[dict[str, Any]]:
    """One row per (hue value, x value): n, mean, std and 95% CI of `y` over every seed run of complete trials."""
    groups: dict[tuple[str, Any], list[float]] = {}
    seen: set[str] = set()
    for t in study.get_trials(deepcopy=False):
        if t.state.name != "COMPLETE":
            continue
        x_value, hue_value = spec.value_of(x, t.params), spec.value_of(hue, t.params) if hue else ""
        for finals in seed_finals(t).values():
            seen |= set(finals)
            if isinstance(finals.get(y), (int, float)) and math.isfinite(finals[y]):
                groups.setdefault((hue_value, x_value), []).append(float(finals[y]))
    if not groups:
        raise LanganError(f"no complete trial has a final '{y}'" + (f"; they recorded {', '.join(sorted(seen))}"
                                                                    if seen else " (no trial is complete yet)"))
    rows = []
    order = sorted(groups, key=lambda hx: (_sort_key(hx[0]), _sort_key(hx[1])))
    for (hue_value, x_value), values in ((hx, groups[hx]) for hx in order):
        s = summarize(values)
        rows.append({**({hue: hue_value} if hue else {}), x: x_value, "metric": y, "n": s["n"], "mean": s["mean"],
                     "std": s["std"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                     "values": " ".join(f"{v:.6g}" for v in values)})
    return rows


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, str(value))


def draw(rows: list[dict[str, Any]], x: str, y: str, hue: str | None, title: str, png: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LanganError("the PNG needs matplotlib: pip install 'langan[plot]' (the CSV was written)") from None
    numeric = all(isinstance(r[x], (int, float)) and not isinstance(r[x], bool) for r in rows)
    categories = list(dict.fromkeys(str(r[x]) for r in rows))
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for hue_value in dict.fromkeys(r[hue] for r in rows) if hue else [None]:
        points = [r for r in rows if hue is None or r[hue] == hue_value]
        xs = [r[x] if numeric else categories.index(str(r[x])) for r in points]
        stds = [0.0 if math.isnan(r["std"]) else r["std"] for r in points]
        ax.errorbar(xs, [r["mean"] for r in points], yerr=stds, marker="o", capsize=3,
                    label=None if hue is None else f"{hue}={hue_value}")
    if not numeric:
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(x)
    ax.set_ylabel(f"{y} (mean ± std over seeds)")
    ax.set_title(title, fontsize=10)
    if hue:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def plot(name: str, x: str, y: str, hue: str | None, out: Path, runs_dir: str | Path,
         storage: str | None = None) -> tuple[Path, Path, list[dict[str, Any]]]:
    """Writes OUT (PNG) and the CSV beside it; returns both paths and the rows."""
    study, spec = open_sweep(name, runs_dir, storage)
    rows = curve_rows(study, spec, x, y, hue)
    csv_path = write_csv_beside(out, rows)
    seeds = max(r["n"] for r in rows)
    others = [k for k in spec.space if k not in (x, hue)]
    title = f"sweep {spec.name}\n{y} vs {x}, mean ± std of up to {seeds} runs per point"
    if others:
        title += f"\n(pooled over {', '.join(others)})"
    draw(rows, x, y, hue, title, out)
    return out, csv_path, rows
