"""Benchmark: a REINFORCE GAN's step with its discriminator's attention split into fewer or more heads.

    python benchmarks/disc_heads_speed.py RUN [--heads 8,4,2] [--steps 10] [--rounds 3] [--threads 2]

On CPU, scaled_dot_product_attention costs about as much per (row, head) pair as per element at these sizes
(hidden 64, ~10 positions): 8 heads of 8 dimensions cost far more than 2 of 32, for the same parameters and the
same matmuls. This loads RUN (a REINFORCE run, e.g. configs/names-scratch.yaml after some training, so its samples
have realistic lengths), builds one fresh discriminator (and optimiser) per head count from the run's disc config,
and times, alternately in one process, `--rounds` blocks of `--steps` discriminator updates and whole adversarial
steps (draw, generator update with that D's rewards, disc_steps_per_gen_step D updates) with each. Prints a
markdown table of medians (ms) and each variant's speed relative to the first.
"""

from __future__ import annotations

import dataclasses
import statistics

from gan_step_speed import load_reinforce, step_benchmark_args, timed

from langan.models.discriminator import build_discriminator
from langan.optim import build_optimizer


def main() -> None:
    parser = step_benchmark_args(__doc__, steps=10, rounds=3)
    parser.add_argument("--heads", default="8,4,2", help="comma-separated head counts (first: the reference)")
    args = parser.parse_args()
    loaded, batches = load_reinforce(args)
    alg, cfg = loaded.algorithm, loaded.cfg
    variants = {}
    for heads in (int(h) for h in args.heads.split(",")):
        disc = build_discriminator(dataclasses.replace(cfg.disc, num_heads=heads), loaded.data.tokenizer.vocab_size,
                                   cfg.data.max_length + 1)
        variants[heads] = (disc, build_optimizer(disc, cfg.optim.disc))
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        real = next(batches).tokens[:, 1:]
        fake = alg.draw(cfg.train.batch_size).tokens
        for heads, (disc, opt) in variants.items():
            alg.disc, alg.disc_opt = disc, opt
            parts = {"discriminator update": lambda r=real, f=fake: alg.disc_update(r, f),
                     "adversarial step": lambda: alg.adversarial_step(next(batches), train_gen=True)}
            for part, fn in parts.items():
                fn()  # warm-up
                times.setdefault((part, heads), []).append(timed(fn, args.steps))
    print(f"{args.run}: {args.rounds} rounds x {args.steps} calls, {args.threads} threads; median ms per call\n")
    first = next(iter(variants))
    print("| part | " + " | ".join(f"{h} heads" for h in variants) + " |\n|---|" + "---|" * len(variants))
    for part in ("discriminator update", "adversarial step"):
        medians = {h: statistics.median(times[(part, h)]) for h in variants}
        cells = [f"{m:.1f}" + ("" if h == first else f" ({medians[first] / m:.2f}x)") for h, m in medians.items()]
        print(f"| {part} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
