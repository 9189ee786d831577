"""Logging sinks (metrics.jsonl + TensorBoard) and the console progress display."""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from langan.fileio import atomic_write_text
from langan.runs.rundir import RunDir


class MetricsLogger:
    """One JSON object per logged step in metrics.jsonl, mirrored to TensorBoard when it is installed."""

    def __init__(self, run: RunDir, resume_step: int = 0, tensorboard: bool = True):
        self.run = run
        if resume_step:
            self._drop_after(resume_step)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

                self.writer = SummaryWriter(str(run.tensorboard_dir), purge_step=resume_step or None)
            except ImportError:
                self.writer = None
        self._file = open(run.metrics_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def _drop_after(self, step: int) -> None:
        """On resume, forget records logged after the checkpoint (they will be logged again)."""
        rows = [r for r in self.run.read_metrics() if r.get("step", 0) <= step]
        atomic_write_text(self.run.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        clean = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
        self._file.write(json.dumps({"step": step, **clean}) + "\n")
        self._file.flush()
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)

    def log_text(self, tag: str, text: str, step: int) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def close(self) -> None:
        self._file.close()
        if self.writer is not None:
            self.writer.close()


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rem = divmod(seconds, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


class Progress:
    """A tqdm bar on a terminal; otherwise a plain line every ~5% of the run (logs stay readable)."""

    def __init__(self, total: int, start: int = 0, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.total, self.start_step = total, start
        self.tty = self.stream.isatty() and not quiet
        self.quiet = quiet
        self.every = max(total // 20, 1)
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=total, initial=start, file=self.stream, dynamic_ncols=True,
                        unit="step") if self.tty else None

    def update(self, step: int, fields: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in fields.items()},
                                 refresh=True)
        elif not self.quiet and (step % self.every == 0 or step == self.total):
            elapsed = time.perf_counter() - self.t0
            rate = (step - self.start_step) / max(elapsed, 1e-9)
            eta = (self.total - step) / max(rate, 1e-9)
            text = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
            print(f"step {step}/{self.total} {text} eta {_duration(eta)}", file=self.stream, flush=True)

    def write(self, line: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
