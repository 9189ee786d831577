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
import torch.nn.functional as F

from langan.data.batching import trim
from langan.eval.learned import SCORER, _batches
from langan.generation import sample
from langan.models.discriminator import TransformerDiscriminator
from langan.runs.loading import load_run
from langan.tokens import PAD


def ceiling(real: torch.Tensor, fake: torch.Tensor, shape: dict, vocab: int, length: int, steps: list[int],
            seed: int = 0, batch_size: int = 64, lr: float = 1e-3) -> dict[int, float]:
    """Held-out balanced accuracy after each of `steps` optimiser steps (real, fake: [N, T] without BOS)."""
    n = min(len(real), len(fake))
    g = torch.Generator().manual_seed(seed)
    width = max(real.shape[1], fake.shape[1])
    rows = torch.cat([F.pad(real[:n], (0, width - real.shape[1]), value=PAD),
                      F.pad(fake[:n], (0, width - fake.shape[1]), value=PAD)])
    labels = torch.cat([torch.ones(n), torch.zeros(n)])
    half = n // 2
    train = torch.cat([torch.arange(half), n + torch.arange(half)])
    held = torch.cat([torch.arange(half, n), n + torch.arange(half, n)])
    torch.manual_seed(seed)
    disc = TransformerDiscriminator(vocab, length, **shape)
    opt = torch.optim.AdamW(disc.parameters(), lr=lr, weight_decay=0.01)
    out = {}
    for done, index in enumerate(_batches(len(train), batch_size, max(steps), g), 1):
        disc.train()
        pick = train[index]
        loss = F.binary_cross_entropy_with_logits(disc(trim(rows[pick]))[1], labels[pick])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if done in steps:
            disc.eval()
            with torch.no_grad():
                scores = torch.cat([disc(trim(b))[1] for b in rows[held].split(512)])
            hit = ((scores > 0).float() == labels[held]).float()
            out[done] = round(float((hit[labels[held] == 1].mean() + hit[labels[held] == 0].mean()) / 2), 4)
    return out


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
            acc = ceiling(real, out.tokens, shape, data.tokenizer.vocab_size, data.max_length, steps)
            print(json.dumps({"run": path, "checkpoint": args.checkpoint, "temperature": args.temperature,
                              "classifier": name,
                              "n": min(args.n, len(real)),
                              "accuracy_after_steps": acc, "seconds": round(time.time() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
