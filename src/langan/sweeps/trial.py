"""One trial: the seed runs of a point as ordinary `langan train` processes (resumed when a run of the point
already exists, reused when it finished), watched through their metrics.jsonl for pruning.

Separate processes reuse all of `langan train` (recording, checkpoints, clean stops) and keep one crashed run
from taking the sweep down. Intermediate values reach Optuna under the step `position * STRIDE + step`
(position = the seed's place in the seed list), so the median pruner compares seed k at step s of a trial
only with seed k at step s of the other trials.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from langan.config import flatten, load_config, to_dict
from langan.errors import LanganError
from langan.runs.records import final_metrics, read_config
from langan.runs.rundir import RunDir, pid_alive
from langan.sweeps.spec import SweepSpec
from langan.sweeps.study import HEARTBEAT_S, Claim

STRIDE = 1_000_000
POLL_S = 0.5
IGNORED = {"train.threads"}  # may differ between a run and its retry without changing the experiment


@dataclass
class Outcome:
    state: str  # "complete" | "pruned" | "failed"
    values: dict[int, float] = field(default_factory=dict)  # seed -> objective
    finals: dict[int, dict[str, float]] = field(default_factory=dict)  # seed -> every final figure
    message: str = ""


@dataclass
class SeedRun:
    seed: int
    position: int
    run: RunDir
    command: list[str] | None = None  # None: the run already finished
    proc: subprocess.Popen | None = None
    log: IO[str] | None = None
    reported: set[int] = field(default_factory=set)

    def step(self) -> tuple[int, int | None]:
        """(steps done, total steps) as the run records them."""
        meta = self.run.read_meta()
        rows = self.run.read_metrics()
        return (rows[-1].get("step", 0) if rows else 0), meta.get("total_steps")


class Heartbeat:
    def __init__(self, storage: Any, trial_id: int):
        self.storage, self.trial_id, self.last = storage, trial_id, time.monotonic()

    def beat(self) -> None:
        if time.monotonic() - self.last >= HEARTBEAT_S:
            self.storage.record_heartbeat(self.trial_id)
            self.last = time.monotonic()


def _die_with_parent() -> None:
    """Linux: the run gets SIGTERM (a clean stop with a checkpoint) when the sweep process dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _wait_for_dead_owner(run: RunDir, heartbeat: Heartbeat, timeout: float = 300) -> None:
    """A run still written by a process of a dead worker (it stops on SIGTERM): wait until it has exited."""
    deadline = time.monotonic() + timeout
    while run.status() == "running" and pid_alive(run.read_meta().get("pid", -1)):
        if time.monotonic() > deadline:
            raise LanganError(f"run '{run.path}' is still being written by pid {run.read_meta().get('pid')}")
        heartbeat.beat()
        time.sleep(POLL_S)


def _plan(spec: SweepSpec, params: dict[str, Any], claim: Claim, position: int, seed: int, threads: int | None,
          heartbeat: Heartbeat) -> SeedRun:
    """What to do for one seed: nothing (finished), resume (stopped or killed), or a new run."""
    run = RunDir(claim.folder / f"seed-{seed}")
    base = [sys.executable, "-m", "langan", "train"]
    new = [*base, str(spec.base), *spec.overrides_for(params, seed), *([f"train.threads={threads}"] if threads else []),
           "--runs-dir", str(claim.folder), "--name", run.name, "--quiet"]
    if not run.config_path.is_file():
        return SeedRun(seed, position, run, new + (["--overwrite"] if run.path.exists() else []))
    _wait_for_dead_owner(run, heartbeat)
    wanted = flatten(to_dict(load_config(spec.base, spec.overrides_for(params, seed))))
    differ = [k for k, v in flatten(read_config(run)).items() if k not in IGNORED and wanted.get(k) != v]
    if differ:
        raise LanganError(f"run '{run.path}' holds a different config ({differ[0]}: {wanted.get(differ[0])!r} wanted); "
                          "move it away or give the sweep another name")
    meta = run.read_meta()
    if run.status(meta) == "finished" or (meta.get("total_steps") and meta.get("steps_done") == meta["total_steps"]):
        return SeedRun(seed, position, run)
    if any(run.checkpoints_dir.glob("step-*")):
        return SeedRun(seed, position, run, [*base, "--resume", str(run.path), "--quiet"])
    return SeedRun(seed, position, run, [*new, "--overwrite"])  # killed before its first checkpoint


def _start(s: SeedRun) -> None:
    s.log = open(s.run.path.parent / f"seed-{s.seed}.log", "a", encoding="utf-8")  # noqa: SIM115 (closed in _finish)
    s.log.write(f"$ {' '.join(s.command or [])}\n")
    s.log.flush()
    s.proc = subprocess.Popen(s.command or [], stdout=s.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)


def _finish(s: SeedRun) -> str | None:
    """None when the run finished; else why not (the last line of its log)."""
    assert s.proc is not None and s.log is not None
    s.log.close()
    if s.proc.returncode == 0 and s.run.status() == "finished":
        return None
    lines = [x for x in (s.run.path.parent / f"seed-{s.seed}.log").read_text(encoding="utf-8").splitlines() if x]
    return f"seed {s.seed}: {lines[-1] if lines else f'exit code {s.proc.returncode}'}"


def new_values(s: SeedRun, metric: str) -> list[tuple[int, float]]:
    """(report step, value) of evaluations not reported yet; best_valid_nll is the running minimum of eval/nll."""
    key = "eval/nll" if metric == "best_valid_nll" else metric
    out, best = [], math.inf
    for row in s.run.read_metrics():
        value = row.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        best = min(best, value)
        step = s.position * STRIDE + int(row["step"])
        if step not in s.reported:
            s.reported.add(step)
            out.append((step, best if metric == "best_valid_nll" else float(value)))
    return out


def _stop(running: list[SeedRun], timeout: float = 120) -> None:
    """Ask runs to stop after their current step (they write a checkpoint), then wait for them."""
    for s in running:
        if s.proc is not None and s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    for s in running:
        if s.proc is not None:
            try:
                s.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()
        if s.log is not None and not s.log.closed:
            s.log.close()


def run_point(claim: Claim, spec: SweepSpec, jobs: int, heartbeat: Heartbeat,
              on_steps: Callable[[int, int | None], None] | None = None) -> Outcome:
    """Train (or resume, or reuse) every seed run of the claimed point; stop them all if the trial is pruned."""
    claim.folder.mkdir(parents=True, exist_ok=True)
    point = {"sweep": spec.name, "params": claim.params}
    (claim.folder / "point.json").write_text(json.dumps(point, indent=2) + "\n", encoding="utf-8")
    threads = max((os.cpu_count() or 1) // jobs, 1) if jobs > 1 else None  # share the cores between runs
    plans = [_plan(spec, claim.params, claim, i, seed, threads, heartbeat) for i, seed in enumerate(spec.seeds)]
    pending, running = [p for p in plans if p.command], []
    try:
        while pending or running:
            while pending and len(running) < jobs:
                running.append(pending.pop(0))
                _start(running[-1])
            time.sleep(POLL_S)
            heartbeat.beat()
            if on_steps is not None:
                progress = [p.step() for p in plans]
                totals = [t for _, t in progress]
                on_steps(sum(d for d, _ in progress), None if None in totals else sum(totals))
            pruned_at = report_new_values(claim.trial, running, spec)
            if pruned_at is not None:
                _stop(running)
                return Outcome("pruned", message=f"pruned at step {pruned_at[1]} of seed {pruned_at[0]}")
            for s in [s for s in running if s.proc is not None and s.proc.poll() is not None]:
                running.remove(s)
                problem = _finish(s)
                if problem is not None:
                    _stop(running)
                    return Outcome("failed", message=problem)
    except BaseException:
        _stop(running)
        raise
    return _collect(plans, spec.metric)


def report_new_values(trial: Any, running: list[SeedRun], spec: SweepSpec) -> tuple[int, int] | None:
    """Report new evaluations to the trial; (seed, step) if the pruner says stop."""
    last = None
    for s in running:
        for step, value in new_values(s, spec.metric):
            trial.report(value, step)
            last = (s.seed, step % STRIDE)
    if last is not None and spec.pruner["type"] != "none" and trial.should_prune():
        return last
    return None


def _collect(plans: list[SeedRun], metric: str) -> Outcome:
    out = Outcome("complete")
    for p in plans:
        finals = final_metrics(p.run)
        if metric not in finals:
            return Outcome("failed", message=f"run '{p.run.path}' has no final '{metric}' (it recorded "
                                             f"{', '.join(sorted(finals)) or 'nothing'})")
        out.values[p.seed], out.finals[p.seed] = finals[metric], finals
    return out
