"""SWEEP.yaml: a base preset, fixed overrides and a search space over any config keys — read and checked
before anything runs, so a mistake is one line naming the key, not a failed trial an hour later.

```
name: gamma-context                  # the study; runs go to RUNS_DIR/sweeps/NAME/
base: ../configs/names-reinforce.yaml  # relative to this file (or to the working directory)
overrides: [train.steps=60]          # fixed for every trial
space:                               # key -> {grid: [...]} | {choices: [...]} | {low, high, log?, step?}
  reward.gamma: {grid: [0.5, 0.9]}
  data.max_length: {grid: [12, 32]}
sampler: grid                        # grid | random | tpe
n_trials: 4                          # default: the grid's size
metric: eval/nll                     # best_valid_nll, eval/nll or eval/<metric in eval.metrics>
direction: minimize
seeds: [0, 1, 2]                     # each trial is one run per seed; its objective is their mean
pruner: none                         # none | median | {type: median, startup_trials: 2, warmup_steps: 0}
storage: sqlite:///runs/sweeps/gamma-context/study.db   # default; any database URL Optuna accepts
```
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from langan.config import DURING_METRIC_NAMES, closest, flatten, load_config, read_yaml, to_dict
from langan.errors import LanganError

KEYS = ("name", "base", "overrides", "space", "sampler", "n_trials", "metric", "direction", "seeds", "pruner",
        "storage", "sampler_seed")
SAMPLERS = ("grid", "random", "tpe")
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Param:
    """One searched config key: a list of values (grid / choices) or a numeric range."""

    key: str
    kind: str  # "grid" | "choices" | "int" | "float"
    values: tuple[Scalar, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def distribution(self) -> Any:
        import optuna.distributions as d

        if self.kind in ("grid", "choices"):
            return d.CategoricalDistribution(self.values)
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return d.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def to_json(self) -> dict[str, Any]:
        if self.kind in ("grid", "choices"):
            return {self.kind: list(self.values)}
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step, "type": self.kind}


@dataclass
class SweepSpec:
    name: str
    base: Path
    overrides: list[str]
    space: dict[str, Param]  # in the file's order
    sampler: str
    n_trials: int
    metric: str
    direction: str
    seeds: list[int]
    pruner: dict[str, Any]
    storage: str | None
    sampler_seed: int | None = None
    base_config: dict[str, Any] = field(default_factory=dict)  # the resolved base + overrides, flattened

    def grid(self) -> list[dict[str, Scalar]]:
        """Every point of a grid/choices space, in the file's order (the last key varies fastest)."""
        keys = list(self.space)
        return [dict(zip(keys, combo, strict=True)) for combo in
                itertools.product(*(self.space[k].values for k in keys))]

    def overrides_for(self, params: dict[str, Any], seed: int | None = None) -> list[str]:
        extra = [f"{k}={json.dumps(v)}" for k, v in params.items()]
        return [*self.overrides, *extra, *([f"train.seed={seed}"] if seed is not None else [])]

    def value_of(self, key: str, params: dict[str, Any]) -> Any:
        """A config value of a trial: its searched value, or the fixed one of the base config."""
        if key in params:
            return params[key]
        if key not in self.base_config:
            raise LanganError(f"'{key}' is neither a searched key ({', '.join(self.space)}) nor a config key"
                              f"{closest(key, self.base_config)}")
        return self.base_config[key]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "base": str(self.base), "overrides": self.overrides,
                "space": {k: p.to_json() for k, p in self.space.items()}, "sampler": self.sampler,
                "n_trials": self.n_trials, "metric": self.metric, "direction": self.direction,
                "seeds": self.seeds, "pruner": self.pruner, "storage": self.storage,
                "sampler_seed": self.sampler_seed, "base_config": self.base_config}

    def fingerprint(self) -> str:
        """What makes two sweeps the same experiment: the resolved config, space, metric, seeds."""
        d = self.to_json()
        same = {k: d[k] for k in ("base_config", "space", "metric", "direction", "seeds", "sampler")}
        return hashlib.sha256(json.dumps(same, sort_keys=True, default=str).encode()).hexdigest()[:16]


def point_key(params: dict[str, Any]) -> str:
    """Canonical text of a point, to compare trials' params."""
    return json.dumps(params, sort_keys=True)


def point_dir_name(params: dict[str, Any]) -> str:
    """A readable, unique folder name for a point, e.g. `gamma0.9_max_length16-3fa2c1`: every seed run of
    the point (and every retry of it) lives there, so a retry resumes instead of starting again."""
    last = [k.rsplit(".", 1)[-1] for k in params]
    parts = []
    for (key, value), short in zip(params.items(), last, strict=True):
        label = short if last.count(short) == 1 else key
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{label}{text}")
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", "_".join(parts))[:80] or "point"
    return f"{slug}-{hashlib.sha1(point_key(params).encode()).hexdigest()[:6]}"


# ----------------------------------------------------------------------------- reading and checking


def _scalars(key: str, what: str, values: Any) -> tuple[Scalar, ...]:
    if not isinstance(values, list) or not values:
        raise LanganError(f"space '{key}': {what} must be a non-empty list of values, e.g. {what}: [0.5, 0.9]")
    for v in values:
        if not (v is None or isinstance(v, (str, int, float, bool))):
            raise LanganError(f"space '{key}': {what} values must be numbers, strings or booleans, got {v!r}")
    if len({json.dumps(v) for v in values}) != len(values):
        raise LanganError(f"space '{key}': {what} lists a value twice")
    return tuple(values)


def _number(key: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LanganError(f"space '{key}': {name} must be a number, got {value!r}")
    return value


def parse_param(key: str, raw: Any) -> Param:
    """{grid: [...]} | {choices: [...]} | {low, high, log?, step?} (ints if low, high and step are whole)."""
    if not isinstance(raw, dict):
        raise LanganError(f"space '{key}': give {{grid: [...]}}, {{choices: [...]}} or {{low: L, high: H}}, "
                          f"got {raw!r}")
    for kind in ("grid", "choices"):
        if kind in raw:
            if set(raw) != {kind}:
                raise LanganError(f"space '{key}': '{kind}' takes no other settings (got {', '.join(sorted(raw))})")
            return Param(key, kind, _scalars(key, kind, raw[kind]))
    unknown = set(raw) - {"low", "high", "log", "step"}
    if unknown or not {"low", "high"} <= set(raw):
        raise LanganError(f"space '{key}': a range needs low and high (and optionally log, step); "
                          f"got {', '.join(sorted(raw))}")
    low, high = _number(key, "low", raw["low"]), _number(key, "high", raw["high"])
    step = None if raw.get("step") is None else _number(key, "step", raw["step"])
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise LanganError(f"space '{key}': log must be true or false, got {log!r}")
    if not low < high or (log and low <= 0) or (step is not None and (step <= 0 or log)):
        raise LanganError(f"space '{key}': need low < high, low > 0 with log, and a positive step without log")
    whole = all(isinstance(v, int) for v in (raw["low"], raw["high"], raw.get("step", 1)))
    return Param(key, "int" if whole else "float", low=low, high=high, log=log, step=step)


def _metric(metric: Any, eval_metrics: list[str]) -> str:
    known = ["best_valid_nll", "eval/nll", *(f"eval/{m}" for m in eval_metrics)]
    if not isinstance(metric, str) or not metric:
        raise LanganError(f"metric: give one of {', '.join(known)}")
    if metric in known:
        return metric
    name = metric.removeprefix("eval/")
    if metric.startswith("eval/") and name not in DURING_METRIC_NAMES:
        return metric  # other eval/... keys are the algorithm's own evaluation figures
    if name in DURING_METRIC_NAMES:
        raise LanganError(f"metric '{metric}' is not computed during training: add it to the base config's "
                          f"eval.metrics (e.g. overrides: [eval.metrics=[{name}]]) or pick one of {', '.join(known)}")
    raise LanganError(f"metric '{metric}' is not recorded by training runs; use one of {', '.join(known)}")


def _direction(raw: dict[str, Any], metric: str) -> str:
    direction = raw.get("direction")
    if direction is None:
        if "nll" in metric and "self" not in metric:
            return "minimize"
        raise LanganError(f"direction: say whether {metric} should be minimized or maximized (direction: maximize)")
    if direction not in ("minimize", "maximize"):
        raise LanganError(f"direction must be minimize or maximize, got {direction!r}")
    return direction


def _pruner(raw: Any) -> dict[str, Any]:
    raw = {"type": raw or "none"} if isinstance(raw, str) or raw is None else raw
    if not isinstance(raw, dict) or raw.get("type", "none") not in ("none", "median") or \
            set(raw) - {"type", "startup_trials", "warmup_steps"}:
        raise LanganError("pruner: none, median, or {type: median, startup_trials: N, warmup_steps: S}")
    out = {"type": raw.get("type") or "none", "startup_trials": raw.get("startup_trials", 2),
           "warmup_steps": raw.get("warmup_steps", 0)}
    if not all(isinstance(out[k], int) and out[k] >= 0 for k in ("startup_trials", "warmup_steps")):
        raise LanganError("pruner: startup_trials and warmup_steps must be whole numbers >= 0")
    return out


def parse_seeds(value: Any) -> list[int]:
    """[0, 1, 2], 3 (= 0,1,2) or '0,1,2'."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = list(range(value))
    if isinstance(value, str):
        try:
            value = [int(x) for x in value.split(",") if x.strip()]
        except ValueError:
            value = None
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in value) or len(set(value)) != len(value):
        raise LanganError("seeds: give distinct whole numbers, e.g. seeds: [0, 1, 2] or --seeds 0,1,2")
    return value


def _base_path(raw: Any, sweep_file: Path) -> Path:
    if not isinstance(raw, str) or not raw:
        raise LanganError(f"'{sweep_file}': give base: PRESET.yaml (e.g. base: configs/names-reinforce.yaml)")
    for candidate in (sweep_file.parent / raw, Path(raw)):
        if candidate.is_file():
            return candidate.resolve()
    raise LanganError(f"base preset '{raw}' not found next to '{sweep_file}' nor in the working directory")


def load_spec(path: str | Path, seeds: str | None = None) -> SweepSpec:
    """Read and check SWEEP.yaml (`seeds` from the command line replaces the file's)."""
    path = Path(path)
    if not path.is_file():
        raise LanganError(f"sweep file '{path}' not found (see benchmarks/sweeps/ for an example)")
    raw = read_yaml(path)
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        raise LanganError(f"'{path}': unknown sweep key '{unknown[0]}'{closest(str(unknown[0]), KEYS)}; "
                          f"known: {', '.join(KEYS)}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise LanganError(f"name: '{name}' must be letters, digits, '.', '_' or '-' (it names a folder)")
    overrides = raw.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise LanganError("overrides: give a list of key.sub=value strings, e.g. [train.steps=60]")
    base = _base_path(raw.get("base"), path)
    base_cfg = load_config(base, overrides)
    space = _space(raw.get("space"), flatten(to_dict(base_cfg)))
    sampler = raw.get("sampler", "grid")
    if sampler not in SAMPLERS:
        raise LanganError(f"sampler: '{sampler}' is not one of {', '.join(SAMPLERS)}")
    spec = SweepSpec(name, base, overrides, space, sampler, 0, _metric(raw.get("metric", "eval/nll"),
                     base_cfg.eval.metrics), "", parse_seeds(seeds if seeds is not None else raw.get("seeds", [0])),
                     _pruner(raw.get("pruner")), raw.get("storage"), raw.get("sampler_seed"),
                     flatten(to_dict(base_cfg)))
    spec.direction = _direction(raw, spec.metric)
    spec.n_trials = _n_trials(spec, raw.get("n_trials"))
    if spec.storage is not None and (not isinstance(spec.storage, str) or "://" not in spec.storage):
        raise LanganError(f"storage: '{spec.storage}' is not a database URL (e.g. sqlite:///sweep.db, "
                          "postgresql://user@host/db)")
    _check_points(spec)
    return spec


def _space(raw: Any, known: dict[str, Any]) -> dict[str, Param]:
    if not isinstance(raw, dict) or not raw:
        raise LanganError("space: give at least one config key to search, e.g. "
                          "space: {reward.gamma: {grid: [0.5, 0.9]}}")
    for key in raw:
        if key not in known:
            raise LanganError(f"space: unknown config key '{key}'{closest(str(key), known)}")
        if key == "train.seed":
            raise LanganError("space: train.seed is not searched; list seeds under `seeds:` (or --seeds)")
        if isinstance(known[key], (list, dict)):
            raise LanganError(f"space: '{key}' holds a list; only single values can be searched")
    return {key: parse_param(key, value) for key, value in raw.items()}


def _n_trials(spec: SweepSpec, raw: Any) -> int:
    gridded = all(p.kind in ("grid", "choices") for p in spec.space.values())
    if spec.sampler == "grid" and not gridded:
        ranged = next(k for k, p in spec.space.items() if p.kind not in ("grid", "choices"))
        raise LanganError(f"sampler grid needs a list of values for every key; '{ranged}' is a range "
                          "(give grid: [...], or use sampler: random / tpe)")
    size = len(spec.grid()) if gridded else None
    if raw is None:
        if size is None:
            raise LanganError(f"n_trials: say how many trials the {spec.sampler} sampler should run")
        return size
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise LanganError(f"n_trials must be a whole number >= 1, got {raw!r}")
    return min(raw, size) if spec.sampler == "grid" and size is not None else raw


def _check_points(spec: SweepSpec) -> None:
    """Build the config of every grid point (or both ends of every range) so a bad value fails now."""
    if all(p.kind in ("grid", "choices") for p in spec.space.values()):
        points = spec.grid()
    else:
        points = [{k: p.low if p.kind == "float" else int(p.low)} for k, p in spec.space.items()
                  if p.kind in ("int", "float")] + [{k: p.high if p.kind == "float" else int(p.high)}
                                                    for k, p in spec.space.items() if p.kind in ("int", "float")]
    for params in points[:2000]:
        try:
            load_config(spec.base, spec.overrides_for(params))
        except LanganError as err:
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            raise LanganError(f"space point {shown}: {err}") from None


def read_spec_json(data: dict[str, Any]) -> SweepSpec:
    """The spec as recorded in a study (so `sweep show/plot` need no YAML file)."""
    space = {}
    for key, p in data["space"].items():
        kind = next((k for k in ("grid", "choices") if k in p), None)
        space[key] = Param(key, kind, tuple(p[kind])) if kind else \
            Param(key, p["type"], low=p["low"], high=p["high"], log=p["log"], step=p["step"])
    return SweepSpec(data["name"], Path(data["base"]), data["overrides"], space, data["sampler"], data["n_trials"],
                     data["metric"], data["direction"], data["seeds"], data["pruner"], data["storage"],
                     data.get("sampler_seed"), data.get("base_config", {}))


def dump_yaml(spec: SweepSpec) -> str:
    return yaml.safe_dump({k: v for k, v in spec.to_json().items() if k != "base_config"}, sort_keys=False)
