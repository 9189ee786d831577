"""Benchmark: how well can any discriminator of a given size tell a generator's samples from real text?

    python benchmarks/disc_ceiling.py RUN [RUN ...] [--checkpoint step-500] [--n 4000] [--steps 300,1000,3000]

For each run's generator (at --checkpoint), draws --n samples at --temperature (default 1) and trains a fresh
classifier on half of them against as many training rows, then reports its balanced accuracy on the other halves,
after each number of --steps: the ceiling a GAN's discriminator could reach against that generator if it were
trained to convergence on fixed samples. Two classifiers: c2st's scorer (hidden 64, 2 blocks: langan's c2st_acc) and
the run's own discriminator shape (disc.*). A GAN whose discriminator stays at 0.50 while this ceiling is well above
it is undertrained (learning rate, accumulation, steps); one whose ceiling is near 0.50 faces samples the data does
not tell apart at that size (benchmarks/README.md, "Why the pretrained preset's discriminator stays at chance").
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from langan.eval.learned import SCORER, c2st_curve
from langan.generation import sample
from langan.runs.loading import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--checkpoint", default="latest", help="best, latest or step-N (default latest)")
    parser.add_argument("--n", type=int, default=4000, help="samples (and training rows) per classifier")
    parser.add_argument("--steps", default="300,1000,3000")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature (a control: samples at 1.3 should be easy to tell apart)")
    args = parser.parse_args()
    steps = sorted(int(s) for s in args.steps.split(","))
    for path in args.runs:
        loaded = load_run(path, args.checkpoint)
        data, cfg = loaded.data, loaded.cfg
        torch.manual_seed(0)
        out = sample(loaded.algorithm.generator.eval(), args.n, data.max_length, args.temperature)
        real = data.train.tokens[torch.randperm(len(data.train))[:args.n], 1:]
        d = cfg.disc
        own = {"hidden_size": d.hidden_size, "intermediate_size": d.intermediate_size, "num_layers": d.num_layers,
               "num_heads": d.num_heads, "rope_theta": d.rope_theta}
        for name, shape in (("c2st scorer", SCORER), ("run's disc shape", own)):
            start = time.time()
            acc = c2st_curve(real, out.tokens, data.tokenizer.vocab_size, data.max_length, steps, shape=shape)
            print(json.dumps({"run": path, "checkpoint": args.checkpoint, "temperature": args.temperature,
                              "classifier": name, "n": min(args.n, len(real)),
                              "accuracy_after_steps": {k: round(v, 4) for k, v in acc.items()},
                              "seconds": round(time.time() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
