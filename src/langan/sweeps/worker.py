"""`langan sweep SWEEP.yaml`: one worker that claims points and runs them until the sweep is done.

Any number of workers (processes, machines) can run the same sweep at once when they share its storage; a
worker started again after a kill resumes the points that were cut off and never repeats a finished one.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from langan.config import load_config
from langan.errors import LanganError
from langan.fileio import atomic_write_text
from langan.runs.records import summarize
from langan.sweeps import study as studies
from langan.sweeps.spec import SweepSpec, point_key
from langan.sweeps.trial import Heartbeat, Outcome, run_point


def describe_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def mean_std(values: list[float]) -> str:
    s = summarize(values)
    return f"{s['mean']:.4f} ± {s['std']:.4f}" if len(values) > 1 else f"{s['mean']:.4f}"


class SweepProgress:
    """Two tqdm bars (trials, steps of the current trial) on a terminal; otherwise one line per trial event."""

    def __init__(self, total: int, done: int, quiet: bool = False, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty() and not quiet
        self.trials = tqdm(total=total, initial=done, desc="trials", unit="trial", file=self.stream,
                           position=0, dynamic_ncols=True) if self.tty else None
        self.steps = tqdm(total=None, desc="steps", unit="step", file=self.stream, position=1, leave=False,
                          dynamic_ncols=True) if self.tty else None

    def line(self, text: str) -> None:
        if self.trials is not None:
            self.trials.write(text, file=self.stream)
        elif not self.quiet:
            print(text, file=self.stream, flush=True)

    def trial_started(self, number: int) -> None:
        if self.steps is not None:
            self.steps.set_description(f"trial {number} steps")

    def on_steps(self, done: int, total: int | None) -> None:
        if self.steps is not None:
            self.steps.total = total
            self.steps.n = done
            self.steps.refresh()

    def trial_done(self, n_done: int) -> None:
        if self.trials is not None:
            self.trials.n = n_done
            self.trials.refresh()
        if self.steps is not None:
            self.steps.reset(total=None)

    def close(self) -> None:
        for bar in (self.steps, self.trials):
            if bar is not None:
                bar.close()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the worker like Ctrl-C: its runs stop with a checkpoint and its trial is marked lost."""
    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _n_done(study: Any) -> int:
    return len({point_key(t.params) for t in study.get_trials(deepcopy=False) if studies.is_done(t)})


def run_sweep(spec: SweepSpec, runs_dir: str | Path, jobs: int = 1, max_trials: int | None = None,
              quiet: bool = False) -> list[str]:
    """Run trials until the sweep is done (or `max_trials` by this worker); returns the closing lines."""
    root = studies.sweep_dir(runs_dir, spec.name)
    root.mkdir(parents=True, exist_ok=True)
    url = studies.storage_url(spec.storage, runs_dir, spec.name)
    study, storage, sampler = studies.open_study(spec, url)
    atomic_write_text(root / "sweep.json", json.dumps({**spec.to_json(), "storage": url}, indent=2) + "\n")
    display = SweepProgress(spec.n_trials, _n_done(study), quiet)
    display.line(f"sweep {spec.name}: {spec.n_trials} trials ({spec.sampler}), {len(spec.seeds)} seed(s) each, "
                 f"{spec.metric} ({spec.direction}); {_n_done(study)} done; storage {url}")
    rng = random.Random(f"{socket.gethostname()}-{os.getpid()}-{time.time()}")
    skip: set[str] = set()  # points that failed in this worker: not retried until the next `langan sweep`
    ran = 0
    try:
        with _sigterm_as_interrupt():
            while max_trials is None or ran < max_trials:
                for number in studies.reap(study):
                    display.line(f"trial {number}: its worker is gone; the point will be run again")
                claim = studies.claim(study, storage, spec, sampler, root, skip, rng)
                if claim is None:
                    break
                ran += 1
                if _run_claim(study, storage, spec, claim, jobs, display).state == "failed":
                    skip.add(point_key(claim.params))
                display.trial_done(_n_done(study))
    finally:
        display.close()
    return closing_lines(study, spec, ran)


def _run_claim(study: Any, storage: Any, spec: SweepSpec, claim: studies.Claim, jobs: int,
               display: SweepProgress) -> Outcome:
    trial, t0 = claim.trial, time.monotonic()
    display.trial_started(trial.number)
    display.line(f"trial {trial.number}: {describe_params(claim.params)} -> {claim.folder}"
                 + (" (again: finished runs are kept, cut-off runs resumed)" if claim.retry else ""))
    try:
        load_config(spec.base, spec.overrides_for(claim.params))
    except LanganError as err:  # a sampled point the config rejects (the grid was checked up front)
        studies.fail(study, trial, invalid=str(err))
        display.line(f"trial {trial.number} skipped: {err}")
        claim.lock.release()
        return Outcome("failed", message=str(err))
    try:
        try:
            outcome = run_point(claim, spec, jobs, Heartbeat(storage, trial._trial_id), display.on_steps)
        except LanganError as err:
            outcome = Outcome("failed", message=str(err))
    except BaseException:  # Ctrl-C, SIGTERM: the runs stopped with a checkpoint; the next worker resumes them
        studies.fail(study, trial, lost="interrupted")
        raise
    finally:
        claim.lock.release()
    _tell(study, trial, outcome)
    took = f"in {time.monotonic() - t0:.0f}s"
    if outcome.state == "complete":
        values = list(outcome.values.values())
        display.line(f"trial {trial.number} complete {took}: {spec.metric} {mean_std(values)} over "
                     f"{len(values)} seed(s)")
    else:
        display.line(f"trial {trial.number} {outcome.state} {took}: {outcome.message}"
                     + (" (the next `langan sweep` retries it)" if outcome.state == "failed" else ""))
    return outcome


def _tell(study: Any, trial: Any, outcome: Outcome) -> None:
    optuna = studies._optuna()
    state = optuna.trial.TrialState
    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
        trial.set_user_attr("values", {str(k): v for k, v in outcome.values.items()})
        trial.set_user_attr("finals", {str(k): v for k, v in outcome.finals.items()})
        if outcome.message:
            trial.set_user_attr("error" if outcome.state == "failed" else "note", outcome.message)
    if outcome.state == "complete":
        values = list(outcome.values.values())
        study.tell(trial, sum(values) / len(values), skip_if_finished=True)
    else:
        study.tell(trial, state=state.PRUNED if outcome.state == "pruned" else state.FAIL, skip_if_finished=True)


def closing_lines(study: Any, spec: SweepSpec, ran: int) -> list[str]:
    trials = study.get_trials(deepcopy=False)
    done = _n_done(study)
    running = sum(1 for t in trials if t.state.name == "RUNNING" and studies.claimed(t))
    lines = [f"sweep {spec.name}: {done}/{spec.n_trials} trials done ({ran} run by this worker)"
             + (f", {running} running in other workers" if running else "")]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if complete:
        best = (min if spec.direction == "minimize" else max)(complete, key=lambda t: t.value)
        values = [float(v) for v in best.user_attrs.get("values", {}).values()] or [best.value]
        lines.append(f"best: trial {best.number} {describe_params(best.params)}: {spec.metric} {mean_std(values)}")
    if done < spec.n_trials and not running:
        lines.append("not finished: run the same command again to continue (failed trials are retried)")
    lines.append(f"table: langan sweep show {spec.name}")
    return lines
