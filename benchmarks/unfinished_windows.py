"""Benchmark: how many of a GAN's training samples never ended, window by window, from its logged `gen/eos_rate`.

    python benchmarks/unfinished_windows.py RUN [RUN ...] [--window 1000]

Each logged step records the share of that step's generated batch that emitted EOS (`gen/eos_rate`) and its
mean length; this prints, for each window of `--window` steps, the mean share that did not (in %), the number of
samples it covers (logged batches x train.batch_size) and the mean length. A rate of one in a thousand is
invisible in one evaluation's 1,000 samples and plain over 100 logged batches.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langan.runs.records import read_config
from langan.runs.rundir import RunDir


def windows(run: Path, size: int) -> list[tuple[int, float, int, float]]:
    """(first step, % unfinished, samples, mean length) per window of `size` steps."""
    record = RunDir(run)
    batch = int(read_config(record)["train"]["batch_size"])
    groups: dict[int, list[tuple[float, float]]] = {}
    for row in record.read_metrics():  # skips a line cut by a crash
        if "gen/eos_rate" in row:
            groups.setdefault(row["step"] // size, []).append((row["gen/eos_rate"], row.get("gen/mean_length", 0.0)))
    return [(w * size, 100 * (1 - sum(e for e, _ in v) / len(v)), len(v) * batch, sum(m for _, m in v) / len(v))
            for w, v in sorted(groups.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (REINFORCE GAN runs)")
    parser.add_argument("--window", type=int, default=1000, help="steps a window (default 1,000)")
    args = parser.parse_args()
    for run in args.runs:
        print(run)
        for start, unfinished, samples, length in windows(run, args.window):
            print(f"  steps {start}-{start + args.window - 1}: {unfinished:.3f}% unfinished of {samples} samples, "
                  f"mean length {length:.2f}")


if __name__ == "__main__":
    main()
