"""The training loop. It knows nothing about GANs: it draws batches, calls `algorithm.step`, evaluates,
samples, logs and checkpoints. Stopping (Ctrl-C, SIGTERM, `stop_after`) finishes the current step and
writes a checkpoint from which `langan train --resume RUN_DIR` continues exactly.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from langan import __version__, dist
from langan.algorithms.base import Algorithm
from langan.config import Config, flatten, to_dict
from langan.data.batching import BatchIterator
from langan.data.dataset import DataBundle
from langan.errors import LanganError
from langan.eval.during import evaluate_during_training
from langan.runs import checkpoint
from langan.runs.rundir import RunDir
from langan.tokens import PAD
from langan.train.logging import MetricsLogger, Progress


@dataclass
class _Window:
    start: float  # perf_counter at the last log
    tokens: int  # training tokens since then
    step: int  # the step then


class Trainer:
    def __init__(self, cfg: Config, run: RunDir, data: DataBundle, algorithm: Algorithm, total_steps: int,
                 quiet: bool = False):
        self.cfg, self.run, self.data, self.algorithm = cfg, run, data, algorithm
        self.total_steps, self.quiet = total_steps, quiet
        self.batches = BatchIterator(data.train.tokens, cfg.train.batch_size, cfg.train.seed,
                                     cfg.train.length_grouping)
        self.step = 0
        self.best_valid_nll = math.inf
        self.tokens_seen = 0
        self.elapsed = 0.0
        self.last_eval: dict[str, float] = {}
        self.evals_since_best = 0
        self.early_stopped = False
        self.out_of_time = False  # stopped by train.time_budget
        self._stop_signal: int | None = None
        self.rank, self.world_size = dist.rank(), dist.world_size()  # rank 0 alone writes the run directory

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "data": self.batches.state_dict(),
                "best_valid_nll": self.best_valid_nll if math.isfinite(self.best_valid_nll) else None,
                "tokens_seen": self.tokens_seen, "elapsed_seconds": self.elapsed,
                "total_steps": self.total_steps, "last_eval": self.last_eval,
                "evals_since_best": self.evals_since_best, "langan_version": __version__,
                "config": flatten(to_dict(self.cfg))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.batches.load_state_dict(state["data"])
        self.best_valid_nll = math.inf if state["best_valid_nll"] is None else float(state["best_valid_nll"])
        self.tokens_seen = int(state["tokens_seen"])
        self.elapsed = float(state["elapsed_seconds"])
        self.last_eval = dict(state.get("last_eval", {}))
        self.evals_since_best = int(state.get("evals_since_best", 0))

    def save(self, name: str | None = None) -> None:
        """Every rank calls it (the ranks' RNG and local state go to rank 0, which writes the checkpoint)."""
        ranks = dist.gather({"rng": checkpoint.capture_rng(), "local": self.algorithm.local_state()}) \
            if self.world_size > 1 else None
        if self.rank == 0:
            checkpoint.save_checkpoint(self.run, name or f"step-{self.step}", self.algorithm.networks(),
                                       self.algorithm.state_dict(), self.state_dict(), ranks=ranks)
            if name is None:
                checkpoint.prune(self.run, self.cfg.train.keep_checkpoints)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, logger: MetricsLogger | None, progress: Progress) -> None:
        """Rank 0 evaluates; every rank then learns whether the validation NLL improved (all save `best` then)."""
        improved = self._evaluate(logger, progress) if self.rank == 0 else False
        improved, self.evals_since_best, self.best_valid_nll = dist.broadcast(
            (improved, self.evals_since_best, self.best_valid_nll))
        if improved:
            self.save("best")

    def _evaluate(self, logger: MetricsLogger, progress: Progress) -> bool:
        results, lines = evaluate_during_training(self.cfg, self.data, self.algorithm, self.step)
        (self.run.samples_dir / f"step-{self.step}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        logger.log(self.step, results)
        logger.log_text("samples", "\n\n".join(f"`{line}`" for line in lines), self.step)
        self.last_eval = results
        improved = False
        if "eval/nll" in results:  # no validation split: nothing to select or early-stop on
            improved = results["eval/nll"] < self.best_valid_nll
            if improved:
                self.best_valid_nll = results["eval/nll"]
                self.evals_since_best = 0
            else:
                self.evals_since_best += 1
        summary = " ".join(f"{k[5:]} {v:.4f}" for k, v in results.items())
        shown = ", ".join(line.split("\t", 1)[1] for line in lines[:6])
        progress.write(f"step {self.step}: {summary} | {shown}")
        return improved

    # ------------------------------------------------------------------ the loop

    def _check_finite(self) -> None:
        """Stop when one network has had `train.max_skipped_steps` non-finite steps in a row."""
        limit = self.cfg.train.max_skipped_steps
        failing = [name for name, n in self.algorithm.consecutive_skips.items() if n >= limit]
        if failing:
            found = checkpoint.step_checkpoints(self.run)
            last = f"checkpoints/{found[-1].name}" if found else "none yet"
            raise LanganError(f"step {self.step}: {limit} steps in a row had a non-finite loss or gradient in the "
                              f"{failing[0]} network (skipped, weights unchanged); stopping. Last good checkpoint: "
                              f"{last} in {self.run.path}. Lower its learning rate or clip gradients in config.yaml, "
                              f"then `langan train --resume {self.run.path} --force`")

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask for a clean stop after the current step (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        def handler(signum: int, _frame: object) -> None:
            self._stop_signal = signum

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def _eval_due(self) -> bool:
        """Every eval.every steps; once a GAN's earlier phases are over, every eval.every_adversarial steps
        (counted from the end of pretraining, which is evaluated) when that is set."""
        every, adversarial = self.cfg.eval.every, self.cfg.eval.every_adversarial
        start = self.algorithm.phase_steps(self.cfg)
        if adversarial and start <= self.step:  # start = 0: a GAN started from an MLE run (train.init_from)
            return (self.step - start) % adversarial == 0
        return self.step % every == 0

    def _log(self, metrics: dict[str, Any], window: _Window, logger: MetricsLogger | None,
             progress: Progress) -> None:
        """The step's metrics (averaged over ranks) with throughput since the last log, to the log and the bar."""
        now = time.perf_counter()
        seconds = max(now - window.start, 1e-9)
        values = {k: float(v) for k, v in metrics.items()}
        values["train/skipped_steps"] = self.algorithm.skipped_steps
        values["train/tokens_per_s"] = window.tokens / seconds
        values["train/steps_per_s"] = (self.step - window.step) / seconds
        window.start, window.tokens, window.step = now, 0, self.step
        values = dist.mean_values(values)  # every rank's metrics, averaged (all ranks call it)
        if logger is not None:
            logger.log(self.step, values)
        shown = {k.replace("/", "_"): v for k, v in values.items() if k.endswith("/loss") or k == "reward/mean"}
        progress.update(self.step, shown | {"tok/s": int(values["train/tokens_per_s"])})

    def fit(self, stop_after: int | None = None) -> str:
        """Train until total_steps (or stop_after, or a signal). Returns 'finished' or 'stopped'."""
        tcfg = self.cfg.train
        main = self.rank == 0
        logger = MetricsLogger(self.run, resume_step=self.step) if main else None
        progress = Progress(self.total_steps, self.step, quiet=self.quiet or not main)
        window = _Window(time.perf_counter(), 0, self.step)  # since the last log: throughput
        try:
            with self._stop_on_signals():
                while self.step < self.total_steps:
                    t0 = time.perf_counter()
                    batch = next(self.batches)  # the global batch; each rank steps on its own shard of it
                    shard = batch.shard(self.rank, self.world_size) if self.world_size > 1 else batch
                    metrics = self.algorithm.step(shard)
                    self.step += 1
                    self._check_finite()
                    n_tokens = int((batch.targets != PAD).sum())
                    self.tokens_seen += n_tokens
                    window.tokens += n_tokens
                    self.elapsed += time.perf_counter() - t0
                    signalled, out_of_time = dist.any_rank(self._stop_signal is not None,
                                                           0 < tcfg.time_budget <= self.elapsed)
                    last = self.step == self.total_steps or out_of_time
                    stop = signalled or self.step == stop_after
                    if self.step % tcfg.log_every == 0 or last:
                        self._log(metrics, window, logger, progress)
                    eval_due = self._eval_due()
                    if eval_due or last:
                        self.evaluate(logger, progress)
                        if 0 < tcfg.early_stop <= self.evals_since_best and not last:
                            progress.write(f"early stop at step {self.step}: valid NLL has not improved in "
                                           f"{self.evals_since_best} evaluations (train.early_stop)")
                            self.early_stopped = stop = True
                    ckpt_due = self.step % tcfg.checkpoint_every == 0 if tcfg.checkpoint_every else eval_due
                    if ckpt_due or last or stop:
                        self.save()
                        if main:
                            self.run.update_meta(steps_done=self.step, best_valid_nll=self.best_valid_nll,
                                                 last_eval=self.last_eval)
                    if out_of_time and self.step < self.total_steps:
                        progress.write(f"time budget reached at step {self.step}: {self.elapsed:.0f} s of training "
                                       f"(train.time_budget={tcfg.time_budget:g})")
                        self.out_of_time = True
                        break
                    if stop:
                        break
        finally:
            if logger is not None:
                logger.close()
            progress.close()
        if self._stop_signal is not None and main:
            name = signal.Signals(self._stop_signal).name
            print(f"stopped by {name} at step {self.step}; checkpoint written. "  # shown even with --quiet
                  f"Resume with: langan train --resume {self.run.path}", file=sys.stderr)
        done = self.step >= self.total_steps or self.early_stopped or self.out_of_time
        return "finished" if done else "stopped"
