"""Benchmark: does a GAN end its samples too early, and does its discriminator object?

    python benchmarks/eos_bias.py GAN_RUN BASELINE_RUN [--cut 0.6] [--threads 1]

Two measurements on the validation split's real rows:
1. each generator's probability of EOS after every real prefix, where the real row goes on (and where it ends),
   by the number of tokens so far: a generator that ends too early puts more mass on EOS where the data continues;
2. the GAN's discriminator (per-step logits) at the real row's EOS, at the EOS of the same row cut after
   `--cut` of its tokens (at least 3), and at the real token in that place: how much D prefers a row that goes on
   to one that stops early.
"""

from __future__ import annotations

import argparse

import torch

from langan.data.batching import trim
from langan.runs.loading import load_run
from langan.tokens import EOS, PAD


def eos_probabilities(generator: torch.nn.Module, rows: torch.Tensor) -> torch.Tensor:
    """P(EOS | prefix) [N, T] for right-padded rows `BOS x EOS PAD...` [N, T+1] (entry t: after t tokens)."""
    with torch.no_grad():
        return generator.eval()(rows[:, :-1])[0].float().softmax(-1)[..., EOS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gan_run", help="a REINFORCE (or other GAN) run with a per-step discriminator")
    parser.add_argument("baseline_run", help="e.g. the MLE preset's run")
    parser.add_argument("--cut", type=float, default=0.6, help="where rows are cut, as a share of their tokens")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gan, baseline = load_run(args.gan_run, "latest"), load_run(args.baseline_run)
    rows = trim(gan.data.valid.tokens)
    targets = rows[:, 1:]
    goes_on, ends = (targets != PAD) & (targets != EOS), targets == EOS
    p_gan, p_base = eos_probabilities(gan.algorithm.generator, rows), eos_probabilities(baseline.algorithm.generator,
                                                                                          rows)
    print(f"{len(rows)} validation rows; P(EOS) of {args.gan_run} / {args.baseline_run}\n")
    print("| after k tokens | where the row goes on | rows | where the row ends | rows |\n|---|---|---|---|---|")
    position = torch.arange(targets.shape[1])[None]
    for k in range(1, int((targets != PAD).sum(1).max())):
        on, end = goes_on & (position == k), ends & (position == k)
        if on.sum() + end.sum() >= 10:
            cell = lambda m: f"{p_gan[m].mean():.3f} / {p_base[m].mean():.3f}" if m.any() else "-"
            print(f"| {k} | {cell(on)} | {int(on.sum())} | {cell(end)} | {int(end.sum())} |")
    print(f"| all | {p_gan[goes_on].mean():.3f} / {p_base[goes_on].mean():.3f} | {int(goes_on.sum())} | "
          f"{p_gan[ends].mean():.3f} / {p_base[ends].mean():.3f} | {int(ends.sum())} |")

    tokens = rows[:, 1:]  # the discriminator reads rows without BOS
    letters = (tokens != PAD).sum(1) - 1
    long = letters >= 5
    tokens, letters = tokens[long], letters[long]
    cut_at = (letters.float() * args.cut).long().clamp(min=3)  # [N]: the position that becomes EOS
    cut = tokens.clone()
    cut[position[:, : cut.shape[1]] == cut_at[:, None]] = EOS
    cut[position[:, : cut.shape[1]] > cut_at[:, None]] = PAD
    disc, index = gan.algorithm.disc.eval(), torch.arange(len(tokens))
    with torch.no_grad():
        whole, shortened = disc(tokens)[0], disc(cut)[0]  # per-step logits [N, T]
    at_eos, at_cut, real_there = whole[index, letters], shortened[index, cut_at], whole[index, cut_at]
    print(f"\nthe GAN's discriminator on {len(tokens)} validation rows of 5 or more tokens, cut after {args.cut:.0%}:")
    print(f"mean logit at the real EOS {at_eos.mean():.3f}; at the EOS of the cut row {at_cut.mean():.3f}; "
          f"at the real token in that place {real_there.mean():.3f}; cut rows scored above their whole row's EOS: "
          f"{(at_cut > at_eos).float().mean():.3f}")


if __name__ == "__main__":
    main()
