"""BLEU and self-BLEU, equal to nltk's `sentence_bleu` (uniform weights, `SmoothingFunction().method1`)
averaged over hypotheses, but fast: one pass over the references builds, for every n-gram, the largest count
any single reference holds (self-BLEU: the two largest, from different samples), so each hypothesis costs
only its own n-grams. 10,000 hypotheses against 10,000 references take seconds, not nltk's ~40 minutes.

Definitions (per hypothesis h, references R, orders 1..N, weights 1/N):
  p_n  = sum over n-grams g of h of min(count_h(g), max_{r in R} count_r(g)) / max(1, #n-grams of h)
         with method1 smoothing: a zero numerator becomes 0.1 (epsilon) over the same denominator;
  BP   = 1 if |h| > r* else exp(1 - r*/|h|) (0 for an empty h), r* = the reference length closest to |h|
         (ties: the shorter);
  BLEU = 0 if no unigram of h matches, else BP * exp(sum_n log(p_n) / N).
Self-BLEU scores each sample against all the other samples, never against itself.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

Tokens = Sequence[int] | Sequence[str]
EPSILON = 0.1  # nltk SmoothingFunction(epsilon=0.1).method1


def _ngrams(tokens: Tokens, n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


class _Lengths:
    """Reference lengths for the closest-length rule, optionally excluding one occurrence of a length."""

    def __init__(self, lengths: Sequence[int]):
        self.counts = Counter(lengths)
        self.sorted = sorted(self.counts)

    def closest(self, length: int, exclude: int | None = None) -> int | None:
        candidates = []
        i = bisect.bisect_left(self.sorted, length)
        for j in (i - 2, i - 1, i, i + 1):  # neighbours; widened below when an excluded length runs out
            if 0 <= j < len(self.sorted):
                candidates.append(self.sorted[j])
        usable = [c for c in candidates if self.counts[c] - (c == exclude) > 0]
        if not usable:  # every nearby length was only the excluded one: search the rest
            usable = [c for c in self.sorted if self.counts[c] - (c == exclude) > 0]
        return min(usable, key=lambda r: (abs(r - length), r)) if usable else None


def _score(hyp: Tokens, clip: Sequence[Any], ref_len: int | None, max_n: int) -> float:
    """BLEU of one hypothesis given, per order, the clipping count of each n-gram."""
    if not hyp or ref_len is None:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        counts = _ngrams(hyp, n)
        matched = sum(min(c, clip[n - 1].get(g, 0)) for g, c in counts.items())
        total = max(1, sum(counts.values()))
        if n == 1 and matched == 0:
            return 0.0
        log_sum += math.log((matched if matched else EPSILON) / total)
    length = len(hyp)
    brevity = 1.0 if length > ref_len else math.exp(1 - ref_len / length)
    return brevity * math.exp(log_sum / max_n)


def bleu(hypotheses: Sequence[Tokens], references: Sequence[Tokens], max_n: int = 4) -> float:
    """Mean sentence BLEU-max_n of each hypothesis against the whole reference set."""
    if not hypotheses:
        return float("nan")
    clip: list[dict[tuple, int]] = [{} for _ in range(max_n)]
    for ref in references:
        for n in range(1, max_n + 1):
            table = clip[n - 1]
            for g, c in _ngrams(ref, n).items():
                if c > table.get(g, 0):
                    table[g] = c
    lengths = _Lengths([len(r) for r in references])
    return math.fsum(_score(h, clip, lengths.closest(len(h)), max_n) for h in hypotheses) / len(hypotheses)


def self_bleu(samples: Sequence[Tokens], max_n: int = 4) -> float:
    """Mean sentence BLEU-max_n of each sample against all the other samples (never itself)."""
    if len(samples) < 2:
        return float("nan")
    # per n-gram: (largest count, the sample holding it, largest count in any other sample)
    tops: list[dict[tuple, tuple[int, int, int]]] = [{} for _ in range(max_n)]
    for index, sample in enumerate(samples):
        for n in range(1, max_n + 1):
            table = tops[n - 1]
            for g, c in _ngrams(sample, n).items():
                first, holder, second = table.get(g, (0, -1, 0))
                if c > first:
                    table[g] = (c, index, first)
                elif c > second:
                    table[g] = (first, holder, c)
    lengths = _Lengths([len(s) for s in samples])
    total = 0.0
    for index, sample in enumerate(samples):
        clip = [_OthersMax(tops[n], index) for n in range(max_n)]
        total += _score(sample, clip, lengths.closest(len(sample), exclude=len(sample)), max_n)
    return total / len(samples)


class _OthersMax:
    """dict-like view: the largest count of an n-gram in any sample other than `index`."""

    def __init__(self, table: dict[tuple, tuple[int, int, int]], index: int):
        self.table, self.index = table, index

    def get(self, gram: tuple, default: int = 0) -> int:
        first, holder, second = self.table.get(gram, (default, -1, default))
        return second if holder == self.index else first
