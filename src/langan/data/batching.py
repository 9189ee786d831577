"""Batches, masks and padding conversions.

Generators read right-padded rows `BOS x EOS PAD...`; discriminators read left-padded rows with an
attention mask. The loss mask keeps every target that is not PAD: content tokens and EOS, never PAD.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from langan.tokens import PAD


@dataclass
class Batch:
    tokens: Tensor  # [B, T + 1] right-padded, trimmed to the longest row of the batch
    index: Tensor  # [B] positions of the rows in their split (to look up labels)
    # what a per-token loss divides by: None = this batch's own target count; under length grouping the
    # split's mean count per row x B, so a batch of short rows does not weigh its tokens more (unbiased)
    loss_norm: float | None = None

    @property
    def inputs(self) -> Tensor:  # [B, T]
        return self.tokens[:, :-1]

    @property
    def targets(self) -> Tensor:  # [B, T]
        return self.tokens[:, 1:]

    def shard(self, rank: int, world_size: int) -> Batch:
        """Rank `rank`'s rows (every world_size-th, from `rank`) of this global batch. Its per-token loss divides by
        the global batch's divisor / world_size, so the mean of the ranks' gradients is the global batch's gradient:
        N processes with global batch B take the step one process takes with B."""
        rows = slice(rank, None, world_size)
        divisor = float((self.targets != PAD).sum().clamp(min=1)) if self.loss_norm is None else self.loss_norm
        return Batch(trim(self.tokens[rows]), self.index[rows], divisor / world_size)


def loss_mask(targets: Tensor) -> Tensor:
    """[B, T] bool: True where a target counts in a loss (content or EOS), False on PAD."""
    return targets != PAD


def trim(tokens: Tensor) -> Tensor:
    """Drop the all-PAD columns at the right end of a right-padded batch (shorter forward passes); at least one
    column is kept (an empty or all-PAD batch keeps its first)."""
    used = (tokens != PAD).any(0).nonzero()
    return tokens[:, :int(used.max()) + 1 if len(used) else 1]


class BatchIterator:
    """Endless shuffled batches over one split; its state (epoch, position) makes a resume exact.

    The order of epoch e is `randperm(N)` from a generator seeded by (seed, e), so no RNG state needs
    saving. The incomplete last batch of an epoch is dropped (each epoch shuffles anew, so every example
    is still seen); a split smaller than the batch gives whole-split batches.
    """

    def __init__(self, tokens: Tensor, batch_size: int, seed: int, length_grouping: int = 0):
        self.tokens = tokens
        self.batch_size = min(batch_size, len(tokens))
        self.seed = seed
        self.length_grouping = length_grouping
        self.lengths = (tokens != PAD).sum(1) if length_grouping > 1 else None  # [N]
        # targets per row = non-PAD tokens - 1 (BOS is never a target)
        self.loss_norm = None if self.lengths is None else float(self.lengths.sum() - len(tokens)) / len(tokens)
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.tokens), generator=g)
        return order if self.lengths is None else self._group_by_length(order, g)

    def _group_by_length(self, order: Tensor, g: torch.Generator) -> Tensor:
        """Sort each window of `length_grouping` batches by length, cut it into batches and shuffle the
        batches of the epoch: rows of a batch have similar lengths, so `trim` computes few PAD positions.
        The leftover rows (fewer than a batch) stay at the end, where the epoch drops them."""
        b = self.batch_size
        full = len(order) // b * b
        windows = order[:full].split(b * self.length_grouping)
        grouped = torch.cat([w[torch.sort(self.lengths[w], stable=True).indices] for w in windows])
        batches = grouped.view(-1, b)[torch.randperm(full // b, generator=g)]  # [n_batches, B]
        return torch.cat([batches.flatten(), order[full:]])

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> Batch:
        if self.position + self.batch_size > len(self.tokens):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        index = self._order[self.position: self.position + self.batch_size]
        self.position += self.batch_size
        norm = None if self.loss_norm is None else self.loss_norm * len(index)
        return Batch(trim(self.tokens[index]), index, norm)

    @property
    def steps_per_epoch(self) -> int:
        return max(len(self.tokens) // self.batch_size, 1)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation(self.epoch)


def iterate_in_order(tokens: Tensor, batch_size: int) -> list[Tensor]:
    """Fixed-order, trimmed batches over a whole split (evaluation)."""
    return [trim(tokens[i: i + batch_size]) for i in range(0, len(tokens), batch_size)]


def length_groups(lengths: Tensor, overhead: float) -> list[Tensor]:
    """Row indices of `lengths` [N] split into groups of similar length (shortest first) for passes trimmed to each
    group's longest row. A pass is modelled as costing rows x width positions plus `overhead` positions (its fixed
    cost); the split minimises the total exactly, by dynamic programming over the distinct lengths (at most
    max_length + 1 of them). overhead = inf gives one group; 0 one group per distinct length."""
    if math.isinf(overhead) or len(lengths) == 0:
        return [torch.arange(len(lengths), device=lengths.device)] if len(lengths) else []
    order = lengths.argsort(stable=True)
    values, counts = torch.unique_consecutive(lengths[order], return_counts=True)
    ends, widths = [0, *counts.cumsum(0).tolist()], [max(w, 1) for w in values.tolist()]
    best, cut = [0.0] + [math.inf] * len(widths), [0] * (len(widths) + 1)
    for j in range(1, len(widths) + 1):  # best[j]: the cheapest split of the rows up to distinct length j
        for i in range(j):  # the last group: distinct lengths i+1 .. j, as wide as the j-th
            cost = best[i] + overhead + (ends[j] - ends[i]) * widths[j - 1]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    bounds, j = [], len(widths)
    while j > 0:
        bounds.append((ends[cut[j]], ends[j]))
        j = cut[j]
    return [order[a:b] for a, b in reversed(bounds)]


def in_length_groups(fn: Callable[[Tensor], Any], tokens: Tensor, groups: list[Tensor]) -> Any:
    """fn over right-padded rows tokens [N, T] group by group, each group's rows trimmed to its longest row (groups
    from `length_groups`), reassembled in the input's order. fn returns a tensor or a tuple of tensors (or None):
    outputs [N] are joined as they come, [N, t, ...] padded with 0 to [N, T, ...]. Equal to fn(tokens) for an fn
    whose outputs on a row do not depend on its trailing PAD columns or on the other rows (causal LMs, the
    transformer discriminator), at a cost that follows the rows' own lengths."""
    if len(groups) <= 1:
        return fn(tokens)
    parts = [fn(trim(tokens[rows])) for rows in groups]
    inverse = torch.cat(groups).argsort()

    def join(pieces: list[Tensor | None]) -> Tensor | None:
        if pieces[0] is None:
            return None
        padded = [F.pad(p, [0, 0] * (p.dim() - 2) + [0, tokens.shape[1] - p.shape[1]]) if p.dim() > 1 else p
                  for p in pieces]
        return torch.cat(padded)[inverse]

    if isinstance(parts[0], tuple):
        return tuple(join(list(pieces)) for pieces in zip(*parts, strict=True))
    return join(parts)
