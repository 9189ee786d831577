"""Cheap sample metrics. Each docstring states the exact definition."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from langan.config import ORACLE_ONLY_METRICS, SAMPLE_METRIC_NAMES
from langan.data.dataset import DataBundle
from langan.data.oracle import OracleLSTM
from langan.errors import LanganError
from langan.eval.bleu import bleu, self_bleu
from langan.eval.samples import Samples
from langan.tokens import BOS, EOS, PAD, SPECIALS


@dataclass
class Reference:
    """What sample metrics compare with: training texts (novelty) and reference rows (BLEU).

    `rows` are token ids without BOS/EOS/PAD of the test split for `langan eval`, of the validation split
    during training (so the test split stays unseen until the end)."""

    train_texts: set[str]
    rows: list[list[int]]
    texts: list[str] = field(default_factory=list)  # the reference split as text (fed)
    oracle: OracleLSTM | None = None  # data.source=oracle: the true model, for nll_oracle
    oracle_ids: Tensor | None = None  # [V] vocabulary id -> oracle token id (-1 for the specials)


def reference_for(data: DataBundle, split: str) -> Reference:
    """Metric references from a DataBundle: its training texts and the content rows of `split`."""
    part = getattr(data, split)
    if data.oracle is None:
        return Reference(data.train_set, content_rows(part.tokens), list(part.texts))
    itos = data.tokenizer.itos
    ids = torch.tensor([-1] * len(SPECIALS) + [int(s) for s in itos[len(SPECIALS):]])
    return Reference(data.train_set, content_rows(part.tokens), list(part.texts), data.oracle, ids)


def content_rows(tokens: Tensor) -> list[list[int]]:
    """[N, T] ids -> one list of content ids per row (BOS, EOS and PAD dropped)."""
    return [[t for t in row if t not in (PAD, BOS, EOS)] for row in tokens.tolist()]


def unique(samples: Samples, ref: Reference) -> float:
    """Fraction of samples that are distinct texts: |set(samples)| / N."""
    return len(set(samples.texts)) / max(len(samples.texts), 1)


def novelty(samples: Samples, ref: Reference) -> float:
    """Fraction of samples (with repeats) whose text is not in the training split."""
    return sum(t not in ref.train_texts for t in samples.texts) / max(len(samples.texts), 1)


def mean_length(samples: Samples, ref: Reference) -> float:
    """Mean number of generated tokens per sample, EOS included."""
    return float(samples.lengths.float().mean()) if len(samples.lengths) else float("nan")


def eos_rate(samples: Samples, ref: Reference) -> float:
    """Fraction of samples that ended with EOS (the rest hit the maximum length)."""
    return float(samples.ended.float().mean()) if len(samples.ended) else float("nan")


def _ngrams(tokens: Iterable[int], n: int) -> list[tuple[int, ...]]:
    seq = list(tokens)
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def distinct(n: int) -> Callable[[Samples, Reference], float]:
    def metric(samples: Samples, ref: Reference) -> float:
        rows = content_rows(samples.tokens)
        grams = [g for row in rows for g in _ngrams(row, n)]
        return len(set(grams)) / max(len(grams), 1)

    metric.__doc__ = (f"distinct-{n}: distinct {n}-grams of tokens over all {n}-grams of all samples "
                      "(EOS and PAD excluded), Li et al. 2016.")
    return metric


def bleu_metric(n: int) -> Callable[[Samples, Reference], float]:
    def metric(samples: Samples, ref: Reference) -> float:
        return bleu(content_rows(samples.tokens), ref.rows, n)

    metric.__doc__ = (f"BLEU-{n}: mean sentence BLEU of each sample against all reference rows (the whole test "
                      "split), uniform weights, nltk method1 smoothing (langan.eval.bleu).")
    return metric


def self_bleu_metric(n: int) -> Callable[[Samples, Reference], float]:
    def metric(samples: Samples, ref: Reference) -> float:
        return self_bleu(content_rows(samples.tokens), n)

    metric.__doc__ = (f"self-BLEU-{n}: mean sentence BLEU of each sample against all the other samples, never "
                      "itself (lower = more diverse).")
    return metric


def nll_oracle(samples: Samples, ref: Reference) -> float:
    """NLL_oracle (SeqGAN): mean negative log-likelihood per token of the samples under the true oracle
    (fixed-length samples, no EOS; the oracle's own samples score its entropy rate, 5.75 for SeqGAN's)."""
    if ref.oracle is None or ref.oracle_ids is None:
        raise LanganError("nll_oracle needs data.source=oracle (it scores samples with the true oracle)")
    ids = ref.oracle_ids[samples.tokens.clamp(min=0)]  # [N, L]
    if (ids < 0).any():
        raise LanganError("nll_oracle: samples hold special tokens; oracle runs sample with EOS disallowed")
    return float(-ref.oracle.log_prob(ids).mean())


def fed_metric(samples: Samples, ref: Reference) -> float:
    """FED: Fréchet distance between all-MiniLM-L6-v2 sentence-embedding Gaussians of the samples and of the
    reference split, same N on both sides (langan.eval.fed; needs the `fed` extra)."""
    from langan.eval.fed import fed

    return fed(samples.texts, ref.texts)


SAMPLE_METRICS: dict[str, Callable[[Samples, Reference], float]] = {
    "unique": unique, "novelty": novelty, "mean_length": mean_length, "eos_rate": eos_rate,
    **{f"distinct{n}": distinct(n) for n in range(1, 5)},
    **{f"bleu{n}": bleu_metric(n) for n in range(2, 6)},
    **{f"self_bleu{n}": self_bleu_metric(n) for n in range(2, 6)},
    "nll_oracle": nll_oracle,
    "fed": fed_metric,
}
# `eval.metrics` accepts exactly these names (the config's list, which config keeps without importing eval)
assert tuple(SAMPLE_METRICS) == SAMPLE_METRIC_NAMES, "langan.config.SAMPLE_METRIC_NAMES differs from SAMPLE_METRICS"
ORACLE_ONLY = ORACLE_ONLY_METRICS


def compute_sample_metrics(names: Iterable[str], samples: Samples, ref: Reference) -> dict[str, float]:
    return {name: SAMPLE_METRICS[name](samples, ref) for name in names}

