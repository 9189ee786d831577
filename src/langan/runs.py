"""Run records: list the runs of a directory, diff two runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from langan.config import config_changes
from langan.errors import LanganError
from langan.train.rundir import RunDir


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
