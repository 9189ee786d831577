"""Run records: list the runs of a directory, diff two runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from langan.config import config_changes
from langan.errors import LanganError
from langan.runs.rundir import RunDir


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def list_runs(runs_dir: str | Path = "runs") -> list[dict[str, Any]]:
    root = Path(runs_dir)
    if not root.is_dir():
        raise LanganError(f"runs directory '{root}' does not exist; train something first "
                          "(`langan train configs/names-mle.yaml`)")
    rows = []
    for path in sorted(p for p in root.iterdir() if (p / "config.yaml").is_file()):
        run = RunDir(path)
        meta = run.read_meta()
        rows.append({"name": run.name, "algorithm": meta.get("algorithm", "?"),
                     "data": Path(str(meta.get("data_source", "?"))).name,
                     "steps": f"{meta.get('steps_done', 0)}/{meta.get('total_steps', '?')}",
                     "status": run.status(meta), "best_valid_nll": _number(meta.get("best_valid_nll")),
                     "started": str(meta.get("started", "?"))[:16].replace("T", " "),
                     "changed": _changed_keys(meta)})
    return rows


def _changed_keys(meta: dict[str, Any], width: int = 48) -> str:
    """'vs RUN: key, key' from meta.json's change report (shortened to `width` characters)."""
    changes = meta.get("changes")
    if not changes:
        return "-"
    keys = ", ".join(c[0] for c in changes["changed"]) or "none"
    text = f"vs {changes['against']}: {keys}"
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no runs)"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    lines += ["  ".join(str(r[k]).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def read_config(run: RunDir) -> dict[str, Any]:
    return yaml.safe_load(run.config_path.read_text(encoding="utf-8")) or {}


def previous_run(runs_dir: str | Path, preset: str | None) -> RunDir | None:
    """The most recently started run in `runs_dir` made from the same preset (meta.json "preset")."""
    root = Path(runs_dir)
    if preset is None or not root.is_dir():
        return None
    found = []
    for path in root.iterdir():
        if (path / "config.yaml").is_file():
            meta = RunDir(path).read_meta()
            if meta.get("preset") == preset:
                found.append((str(meta.get("started", "")), path.stat().st_mtime, path))
    return RunDir(max(found)[2]) if found else None


def _record(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    run = RunDir.open(path)
    cfg = read_config(run)
    results = json.loads(run.eval_path.read_text(encoding="utf-8")) if run.eval_path.is_file() else {}
    results = {"best_valid_nll": run.read_meta().get("best_valid_nll"), **results}
    return cfg, results


def diff_runs(a: str | Path, b: str | Path) -> dict[str, list[tuple[str, Any, Any]]]:
    """Config keys and final metrics that differ between two runs: {'config': [...], 'metrics': [...]}."""
    (cfg_a, res_a), (cfg_b, res_b) = _record(a), _record(b)
    config = config_changes(cfg_a, cfg_b)
    metrics = [(k, res_a.get(k), res_b.get(k)) for k in res_a.keys() | res_b.keys()
               if isinstance(res_a.get(k, res_b.get(k)), (int, float)) and res_a.get(k) != res_b.get(k)]
    return {"config": config, "metrics": sorted(metrics)}


def format_diff(diff: dict[str, list[tuple[str, Any, Any]]]) -> str:
    lines = []
    for section, rows in diff.items():
        lines.append(f"{section}:" if rows else f"{section}: no differences")
        lines += [f"  {key}: {old} → {new}" for key, old, new in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- seed groups

# two-sided 95% Student t quantiles by degrees of freedom (1..30); beyond 30 the normal 1.96 is close enough
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t95(df: float) -> float:
    """Two-sided 95% t quantile; fractional df (Welch) round down, which errs on the wide side."""
    return T95[max(int(df), 1) - 1] if df < 31 else 1.96


def final_metrics(run: RunDir) -> dict[str, float]:
    """A run's final figures: best valid NLL, its last evaluation during training, and eval.json's numbers."""
    meta = run.read_meta()
    out = {"best_valid_nll": meta.get("best_valid_nll")} | dict(meta.get("last_eval") or {})
    if run.eval_path.is_file():
        out |= json.loads(run.eval_path.read_text(encoding="utf-8"))
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)}


def group_members(path: str | Path) -> list[RunDir]:
    """A run directory alone, or the runs inside a group directory (`langan train --seeds`)."""
    root = Path(path)
    if (root / "config.yaml").is_file():
        return [RunDir(root)]
    members = sorted(p for p in root.iterdir() if (p / "config.yaml").is_file()) if root.is_dir() else []
    if not members:
        raise LanganError(f"'{root}' is neither a run nor a group of runs (no config.yaml in it or below it)")
    return [RunDir(p) for p in members]


def summarize(values: list[float]) -> dict[str, float]:
    """n, mean, sample standard deviation and the 95% confidence interval of the mean (Student t)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    half = t95(n - 1) * std / math.sqrt(n) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def distinguishable(a: list[float], b: list[float]) -> bool | None:
    """Whether two groups differ at 95% (Welch: the CI of the difference of means excludes 0); None if
    either group has fewer than two runs."""
    if len(a) < 2 or len(b) < 2:
        return None
    sa, sb = summarize(a), summarize(b)
    va, vb = sa["std"] ** 2 / len(a), sb["std"] ** 2 / len(b)
    if va + vb == 0:
        return sa["mean"] != sb["mean"]
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return abs(sa["mean"] - sb["mean"]) > t95(df) * math.sqrt(va + vb)


def compare_groups(paths: list[str], metric: str) -> list[str]:
    """Lines: one per group (n, mean ± std, 95% CI), then a verdict for each pair of groups."""
    groups = {}
    for path in paths:
        values = [final_metrics(r).get(metric) for r in group_members(path)]
        found = [v for v in values if v is not None]
        if not found:
            raise LanganError(f"no run in '{path}' has a final '{metric}' (try best_valid_nll, eval/nll, or a "
                              "metric of eval.json after `langan eval`)")
        groups[Path(path).name] = found
    w = max(24, *(len(name) for name in groups))
    lines = [f"{'group':<{w}} {'n':>3} {'mean':>10} {'std':>9}  95% CI of the mean"]
    for name, values in groups.items():
        s = summarize(values)
        lines.append(f"{name:<{w}} {s['n']:>3} {s['mean']:>10.4f} {s['std']:>9.4f}  "
                     f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]")
    names = list(groups)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            verdict = distinguishable(groups[a], groups[b])
            text = ("needs 2+ seeds per group to tell" if verdict is None else
                    "differ at 95%" if verdict else "NOT distinguishable from seed noise at 95%")
            lines.append(f"{a} vs {b}: {text}")
    return lines
