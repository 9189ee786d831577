"""Metrics that train a fresh model: a classifier two-sample test and LM scores (Caccia et al. 2020).

Each trains from scratch with its own seeded RNG (the global RNG and the evaluated run are untouched):
  c2st_acc          a discriminator learns to separate held-out real text from samples on one half of
                    each, and is scored on the other half: balanced accuracy (0.5 = indistinguishable);
  lm_score          NLL per token of the samples under an LM trained on the training split (quality);
  reverse_lm_score  NLL per token of the test split under an LM trained on the samples (diversity and
                    coverage: a collapsed generator teaches an LM little about real text).
The scoring LM is a small transformer (hidden 64, 2 layers) trained `steps` steps with AdamW; both LM
scores count EOS and not BOS, like `nll`.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import Tensor

from langan.data.batching import iterate_in_order, trim
from langan.eval.nll import nll_per_token
from langan.losses import token_nll_sum
from langan.models.discriminator import TransformerDiscriminator
from langan.models.transformer import TransformerLM
from langan.tokens import BOS, PAD

SCORER = {"hidden_size": 64, "intermediate_size": 256, "num_layers": 2, "num_heads": 4, "rope_theta": 200.0}


def as_rows(samples: Tensor) -> Tensor:
    """Sampled ids [N, L] (PAD after EOS) -> right-padded training rows `BOS x EOS PAD...` [N, L+2]."""
    bos = torch.full_like(samples[:, :1], BOS)
    return torch.cat([bos, samples, torch.full_like(samples[:, :1], PAD)], 1)


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> list[Tensor]:
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(steps * batch_size // max(n, 1) + 1)])
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def fit_lm(rows: Tensor, vocab_size: int, max_length: int, steps: int = 1000, seed: int = 0,
           batch_size: int = 128, lr: float = 3e-3) -> TransformerLM:
    """A small LM trained by maximum likelihood on right-padded rows [N, T+1] (seeded, private RNG)."""
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # also when called under no_grad
        torch.manual_seed(seed)
        model = TransformerLM(vocab_size, max_length + 1, **SCORER)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
        g = torch.Generator().manual_seed(seed)
        model.train()
        for step, index in enumerate(_batches(len(rows), batch_size, steps, g)):
            for group in opt.param_groups:  # linear decay to 10%: a stable fit in a fixed budget
                group["lr"] = lr * (1 - 0.9 * step / steps)
            nll, n = token_nll_sum(model, trim(rows[index]))
            opt.zero_grad(set_to_none=True)
            (nll / n.clamp(min=1)).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    return model.eval()


# lm_score's LM depends only on the training rows and its settings, never on the samples: one fit serves every
# run and temperature a process scores on the same data (langan compare, sweep-temperature --pair lm)
_REAL_DATA_LMS: dict[tuple, TransformerLM] = {}


def lm_score(samples: Tensor, train_rows: Tensor, vocab_size: int, max_length: int, steps: int, seed: int) -> float:
    rows = train_rows.cpu().contiguous()
    key = (tuple(rows.shape), hashlib.sha256(rows.numpy().tobytes()).hexdigest(), vocab_size, max_length, steps,
           seed)
    if key not in _REAL_DATA_LMS:
        _REAL_DATA_LMS.clear()  # one data set at a time is the use; do not hold on to old models
        _REAL_DATA_LMS[key] = fit_lm(rows, vocab_size, max_length, steps, seed)
    return nll_per_token(_REAL_DATA_LMS[key], as_rows(samples))


def reverse_lm_score(samples: Tensor, test_rows: Tensor, vocab_size: int, max_length: int, steps: int,
                     seed: int) -> float:
    lm = fit_lm(as_rows(samples), vocab_size, max_length, steps, seed)
    return nll_per_token(lm, test_rows)


def learned_metrics(names: list[str], samples: Tensor, train_rows: Tensor, heldout_rows: Tensor, vocab_size: int,
                    max_length: int, lm_steps: int, c2st_steps: int, seed: int) -> dict[str, float]:
    """The named ones of c2st_acc, lm_score and reverse_lm_score of sampled rows [N, L] (PAD after EOS), against
    the training rows (lm_score's LM) and held-out rows with BOS (the test split in `langan eval`, the validation
    split during training)."""
    out = {}
    if "c2st_acc" in names:
        out["c2st_acc"] = c2st_accuracy(heldout_rows[:, 1:], samples, vocab_size, max_length, c2st_steps, seed)
    if "lm_score" in names:
        out["lm_score"] = lm_score(samples, train_rows, vocab_size, max_length, lm_steps, seed)
    if "reverse_lm_score" in names:
        out["reverse_lm_score"] = reverse_lm_score(samples, heldout_rows, vocab_size, max_length, lm_steps, seed)
    return out


def c2st_accuracy(real: Tensor, fake: Tensor, vocab_size: int, max_length: int, steps: int = 300, seed: int = 0,
                  batch_size: int = 64) -> float:
    """Balanced accuracy on held-out halves of a fresh discriminator trained on the other halves.

    real, fake: right-padded rows without BOS [N, T]; the larger set is cut to the smaller one's size."""
    return c2st_curve(real, fake, vocab_size, max_length, [steps], seed, batch_size)[steps]


def c2st_curve(real: Tensor, fake: Tensor, vocab_size: int, max_length: int, steps: list[int], seed: int = 0,
               batch_size: int = 64, shape: dict | None = None) -> dict[int, float]:
    """c2st_accuracy after each of `steps` optimiser steps of one classifier (`shape`: TransformerDiscriminator
    keyword arguments, default SCORER), e.g. to see where a discriminator of that size levels off."""
    n = min(len(real), len(fake))
    if n < 4:
        return dict.fromkeys(steps, float("nan"))
    g = torch.Generator().manual_seed(seed)
    real, fake = real[torch.randperm(len(real), generator=g)[:n]], fake[torch.randperm(len(fake), generator=g)[:n]]
    width = max(real.shape[1], fake.shape[1])
    rows = torch.cat([F.pad(real, (0, width - real.shape[1])), F.pad(fake, (0, width - fake.shape[1]))])
    labels = torch.cat([torch.ones(n), torch.zeros(n)])
    half = n // 2
    train = torch.cat([torch.arange(half), n + torch.arange(half)])
    held = torch.cat([torch.arange(half, n), n + torch.arange(half, n)])
    out = {}
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        disc = TransformerDiscriminator(vocab_size, max_length, **(shape or SCORER))
        opt = torch.optim.AdamW(disc.parameters(), lr=1e-3, weight_decay=0.01)
        for done, index in enumerate(_batches(len(train), batch_size, max(steps), g), 1):
            disc.train()
            pick = train[index]
            loss = F.binary_cross_entropy_with_logits(disc(trim(rows[pick]))[1], labels[pick])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if done in steps:
                out[done] = _balanced_accuracy(disc, rows[held], labels[held])
    return out


@torch.no_grad()
def _balanced_accuracy(disc: TransformerDiscriminator, rows: Tensor, labels: Tensor) -> float:
    disc.eval()
    scores = torch.cat([disc(trim(batch))[1] for batch in iterate_in_order(rows, 256)])
    correct = (scores > 0).float() == labels
    return float((correct[labels == 1].float().mean() + correct[labels == 0].float().mean()) / 2)
