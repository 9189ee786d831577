"""Argument types and options shared by commands: whole numbers, ranged floats, the sampling options."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def ranged(name: str, low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not (low < value <= high if low_open else low <= value <= high):
            raise argparse.ArgumentTypeError(f"{name} must be in {'(' if low_open else '['}{low}, {high}]")
        return value

    return parse


def sampling_args(p: argparse.ArgumentParser, n: int) -> None:
    """RUN_DIR and the sampling options of `sample` and `eval`; `n` is the default --n."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. runs/names-mle-1")
    p.add_argument("--n", type=positive_int, default=n, help=f"number of samples (default {n})")
    p.add_argument("--temperature", type=ranged("temperature", 0, 100), default=1.0,
                   help="softmax temperature; 0 = greedy (default 1.0)")
    p.add_argument("--top-p", type=ranged("top-p", 0, 1, low_open=True), default=1.0,
                   help="nucleus sampling mass in (0, 1] (default 1.0 = off)")
    p.add_argument("--top-k", type=int, choices=range(0, 1 << 20), metavar="K", default=0,
                   help="keep the K most likely tokens (default 0 = off)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--checkpoint", default="auto", help="auto (default: best valid NLL for MLE runs, else latest), "
                   "latest, best, or step-N")
