"""Cheap sample metrics. Each docstring states the exact definition."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from langan.data.tokenizers import EOS, PAD
from langan.eval.samples import Samples


def unique(samples: Samples, train_texts: set[str]) -> float:
    """Fraction of samples that are distinct texts: |set(samples)| / N."""
    return len(set(samples.texts)) / max(len(samples.texts), 1)


def novelty(samples: Samples, train_texts: set[str]) -> float:
    """Fraction of samples (with repeats) whose text is not in the training split."""
    return sum(t not in train_texts for t in samples.texts) / max(len(samples.texts), 1)


def mean_length(samples: Samples, train_texts: set[str]) -> float:
    """Mean number of generated tokens per sample, EOS included."""
    return float(samples.lengths.float().mean()) if len(samples.lengths) else float("nan")


def eos_rate(samples: Samples, train_texts: set[str]) -> float:
    """Fraction of samples that ended with EOS (the rest hit the maximum length)."""
    return float(samples.ended.float().mean()) if len(samples.ended) else float("nan")


def _ngrams(tokens: Iterable[int], n: int) -> list[tuple[int, ...]]:
    seq = list(tokens)
    return [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]


def distinct(n: int) -> Callable[[Samples, set[str]], float]:
    def metric(samples: Samples, train_texts: set[str]) -> float:
        rows = [[t for t in row if t not in (PAD, EOS)] for row in samples.tokens.tolist()]
        grams = [g for row in rows for g in _ngrams(row, n)]
        return len(set(grams)) / max(len(grams), 1)

    metric.__doc__ = (f"distinct-{n}: distinct {n}-grams of tokens over all {n}-grams of all samples "
                      "(EOS and PAD excluded), Li et al. 2016.")
    return metric


SAMPLE_METRICS: dict[str, Callable[[Samples, set[str]], float]] = {
    "unique": unique, "novelty": novelty, "mean_length": mean_length, "eos_rate": eos_rate,
    **{f"distinct{n}": distinct(n) for n in range(1, 5)},
}


def compute_sample_metrics(names: Iterable[str], samples: Samples, train_texts: set[str]) -> dict[str, float]:
    return {name: SAMPLE_METRICS[name](samples, train_texts) for name in names}

