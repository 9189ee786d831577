"""Benchmark: where a generator's samples lose likelihood under lm_score's LM: first token, middle tokens, EOS.

    python benchmarks/lm_score_parts.py RUN_OR_GROUP [...] [--n 2000] [--temperature 1] [--seed 1]

lm_score is the mean NLL per token (EOS included) of a run's samples under a small LM fitted to the training
rows (`langan.eval.learned`, the same fit as `langan eval`'s: eval.lm_steps, seed 0). This splits that mean into
the NLL of the first token, of the tokens between first and EOS, and of EOS itself (where a sample chose to end),
and prints each run's length histogram beside the held-out rows' (the test split). A GAN whose gap to MLE sits in
EOS ends its words where real ones do not; one whose gap sits in the middle tokens spells worse.
Each RUN is a run or a seed group (every seed a row); the LM is fitted once, on the first run's training rows.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
from torch import Tensor

from langan.data.batching import trim
from langan.eval.learned import as_rows, fit_lm
from langan.eval.samples import draw_samples
from langan.runs.loading import load_run
from langan.runs.records import group_members
from langan.tokens import PAD


def token_nll(lm: torch.nn.Module, rows: Tensor) -> tuple[Tensor, Tensor]:
    """NLL of every target of right-padded rows `BOS x EOS PAD...` [N, T+1] -> ([N, T] nats, [N] tokens incl. EOS)."""
    rows = trim(rows)
    with torch.no_grad():
        logits = lm(rows[:, :-1])[0].float()  # [N, T, V]
    targets = rows[:, 1:]
    nll = -torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]
    return nll.masked_fill(targets == PAD, 0.0), (targets != PAD).sum(1)


def parts(lm: torch.nn.Module, rows: Tensor) -> tuple[dict[str, float], Counter]:
    """Mean NLL overall / of the first token / of the middle tokens / of EOS, and the histogram of lengths
    (letters, EOS excluded). A row of EOS alone counts only as EOS."""
    nll, count = token_nll(lm, rows)
    index = torch.arange(len(rows))
    eos = nll[index, count - 1]  # [N]: each row's last target is its EOS
    first = nll[count > 1, 0]
    positions = torch.arange(nll.shape[1])[None]  # [1, T]
    middle_mask = (positions > 0) & (positions < (count - 1)[:, None])  # [N, T]: after the first, before EOS
    figures = {"overall": float(nll.sum() / count.sum()), "first": float(first.mean()),
               "middle": float(nll[middle_mask].mean()), "eos": float(eos.mean()),
               "letters": float((count - 1).float().mean())}
    return figures, Counter((count - 1).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run or seed-group directories")
    parser.add_argument("--n", type=int, default=2000, help="samples per run (default 2,000)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1, help="sampling seed")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    members = [m for path in args.runs for m in group_members(path)]
    first = load_run(members[0].path)
    data = first.data
    lm = fit_lm(data.train.tokens.cpu(), data.tokenizer.vocab_size, data.max_length + 1, first.cfg.eval.lm_steps, 0)
    rows = {"test split": data.test.tokens.cpu()}
    for member in members:
        loaded = first if member.path == first.run.path else load_run(member.path)
        drawn = draw_samples(loaded.algorithm.generator, data.tokenizer, args.n, data.max_length, seed=args.seed,
                             temperature=args.temperature)
        rows[str(member.path)] = as_rows(drawn.tokens)
    print(f"NLL (nats) under lm_score's LM, {args.n} samples a run at T = {args.temperature}\n")
    print("| rows | overall | first | middle | EOS | letters | lengths (letters: share %) |")
    print("|---|---|---|---|---|---|---|")
    for name, batch in rows.items():
        figures, lengths = parts(lm, batch)
        total = sum(lengths.values())
        histogram = " ".join(f"{k}:{100 * v / total:.0f}" for k, v in sorted(lengths.items()) if v / total >= 0.005)
        print(f"| {name} | {figures['overall']:.3f} | {figures['first']:.3f} | {figures['middle']:.3f} | "
              f"{figures['eos']:.3f} | {figures['letters']:.2f} | {histogram} |")


if __name__ == "__main__":
    main()
