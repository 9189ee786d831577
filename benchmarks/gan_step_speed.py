"""Benchmark: a REINFORCE GAN's adversarial step with passes by length groups against one padded pass.

    python benchmarks/gan_step_speed.py RUN [--checkpoint latest] [--steps 20] [--rounds 3] [--threads 2]

Loads RUN (a REINFORCE run, e.g. configs/names-scratch.yaml trained for 1,000 steps: a generator that has learned
to end its samples, so that most are short and an occasional one runs long) and times, alternately in the same
process, `--rounds` blocks of `--steps` adversarial steps (and each part of a step: one draw, one discriminator
update, one generator update) with the discriminator's and generator's passes split into groups of rows of similar
length (`Reinforce.group_overhead`, the default on CPU) and as one pass over the padded batch (overhead = inf).
Both variants keep training the same networks, so they see the same kind of samples. Prints a markdown table of
medians (ms) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator

import torch

from langan.data.batching import Batch, BatchIterator
from langan.runs.loading import LoadedRun, load_run


def timed(fn: Callable[[], object], n: int) -> float:
    """Mean milliseconds of fn over n calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000


def step_benchmark_args(doc: str, steps: int, rounds: int) -> argparse.ArgumentParser:
    """The arguments every REINFORCE step benchmark takes: RUN, --checkpoint, --steps, --rounds, --threads."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--checkpoint", default="latest", help="best, latest or step-N (default latest)")
    parser.add_argument("--steps", type=int, default=steps, help="calls per timed block")
    parser.add_argument("--rounds", type=int, default=rounds, help="blocks per variant, alternating")
    parser.add_argument("--threads", type=int, default=2)
    return parser


def load_reinforce(args: argparse.Namespace) -> tuple[LoadedRun, Iterator[Batch]]:
    """The run's REINFORCE GAN on args.threads threads, and an endless seeded stream of its training batches."""
    torch.set_num_threads(args.threads)
    loaded = load_run(args.run, args.checkpoint)
    if not hasattr(loaded.algorithm, "disc_fakes"):
        raise SystemExit(f"{args.run} is a '{loaded.cfg.algorithm}' run; this benchmark times the REINFORCE GAN's step")
    torch.manual_seed(0)
    return loaded, iter(BatchIterator(loaded.data.train.tokens, loaded.cfg.train.batch_size, 0))


def main() -> None:
    args = step_benchmark_args(__doc__, steps=20, rounds=3).parse_args()
    loaded, batches = load_reinforce(args)
    alg, cfg = loaded.algorithm, loaded.cfg
    grouped = alg.group_overhead
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for variant, overhead in (("one padded pass", float("inf")), ("length groups", grouped)):
            alg.group_overhead = overhead
            real = next(batches).tokens[:, 1:]
            fake = alg.draw(cfg.train.batch_size)
            parts = {"draw": lambda: alg.draw(cfg.train.batch_size),
                     "discriminator update": lambda r=real, f=fake: alg.disc_update(r, f.tokens),
                     "generator update": lambda f=fake: alg.gen_update(f),
                     "adversarial step": lambda: alg.adversarial_step(next(batches), train_gen=True)}
            for part, fn in parts.items():
                times.setdefault((part, variant), []).append(timed(fn, args.steps))
    print(f"{args.run}: {args.rounds} rounds x {args.steps} calls, {args.threads} threads; median ms per call\n")
    print("| part | one padded pass | length groups | ratio |\n|---|---|---|---|")
    for part in ("draw", "discriminator update", "generator update", "adversarial step"):
        one, groups = (statistics.median(times[(part, v)]) for v in ("one padded pass", "length groups"))
        print(f"| {part} | {one:.1f} | {groups:.1f} | {one / groups:.2f}x |")


if __name__ == "__main__":
    main()
