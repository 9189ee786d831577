"""Structured style codes c (Hu et al. 2017): one categorical attribute per label column, each one-hot.

A row's code vector is the concatenation of its attributes' one-hots ([sum of class counts]); a row with no
label for an attribute takes a distribution there instead (the classifier's prediction, or the prior).
Class ids are -1 where a row is unlabelled.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from langan.data.dataset import DataBundle, Split
from langan.errors import LanganError


class Codes:
    def __init__(self, data: DataBundle, columns: list[str]):
        self.columns = list(columns)
        self.values: dict[str, list[str]] = {}
        for column in self.columns:
            values = sorted({v for v in data.train.labels.get(column, []) if v is not None})
            if len(values) < 2:
                raise LanganError(f"label column '{column}' has {len(values)} distinct value(s) in the training "
                                  "split; a style code needs at least 2 (check data.label_columns)")
            self.values[column] = values
        self.sizes = [len(self.values[c]) for c in self.columns]
        self.size = sum(self.sizes)
        self.train_ids = self.ids(data.train)
        counts = [torch.bincount(self.train_ids[:, a][self.train_ids[:, a] >= 0], minlength=n).float()
                  for a, n in enumerate(self.sizes)]
        self.prior = [c / c.sum() for c in counts]  # [C_a] class frequencies of the labelled training rows
        self.has_unlabelled = bool((self.train_ids < 0).any())

    def ids(self, split: Split) -> Tensor:
        """[N, A] class ids of a split's rows, -1 where unlabelled (or a value never seen in training)."""
        index = [{v: i for i, v in enumerate(self.values[c])} for c in self.columns]
        labels = [split.labels.get(c, [None] * len(split)) for c in self.columns]
        rows = [[index[a].get(labels[a][r], -1) if labels[a][r] is not None else -1
                 for a in range(len(self.columns))] for r in range(len(split))]
        return torch.tensor(rows, dtype=torch.long).view(len(split), len(self.columns))

    def parse(self, attrs: dict[str, str]) -> dict[int, int]:
        """{'gender': 'female'} -> {attribute index: class id}, or one clear line naming what is valid."""
        out = {}
        for column, value in attrs.items():
            if column not in self.values:
                raise LanganError(f"--attr {column}=...: this run's attributes are {', '.join(self.columns)}")
            if value not in self.values[column]:
                raise LanganError(f"--attr {column}={value}: '{column}' takes {', '.join(self.values[column])}")
            out[self.columns.index(column)] = self.values[column].index(value)
        return out

    def split_logits(self, logits: Tensor) -> list[Tensor]:
        """[B, sum C] classifier outputs -> one [B, C_a] block per attribute."""
        return list(logits.split(self.sizes, dim=-1))

    def vectors(self, ids: Tensor, fill: list[Tensor] | None = None) -> Tensor:
        """[B, A] ids -> [B, sum C] code vectors; unlabelled entries take `fill[a]` ([B, C_a]) or the prior."""
        parts = []
        for a, n in enumerate(self.sizes):
            onehot = F.one_hot(ids[:, a].clamp(min=0), n).float()
            other = fill[a] if fill is not None else self.prior[a].to(ids.device).expand_as(onehot)
            parts.append(torch.where(ids[:, a:a + 1] >= 0, onehot, other))
        return torch.cat(parts, dim=-1)

    def draw(self, n: int, device: torch.device, generator: torch.Generator | None = None,
             uniform: bool = True, fixed: dict[int, int] | None = None) -> Tensor:
        """[n, A] class ids: uniform over classes (training signal for every class) or from the prior
        (the training label distribution); `fixed` pins attributes to one class."""
        cols = []
        for a, size in enumerate(self.sizes):
            if fixed and a in fixed:
                cols.append(torch.full((n,), fixed[a], dtype=torch.long))
                continue
            weights = torch.ones(size) if uniform else self.prior[a].cpu()
            cols.append(torch.multinomial(weights, n, replacement=True, generator=generator))
        return torch.stack(cols, 1).to(device)

    def cross_entropy(self, logits: Tensor, ids: Tensor, balanced: bool = False) -> Tensor:
        """Sum over attributes of the mean cross-entropy over rows labelled for it (0 when none are);
        `balanced` weighs each class by 1 / (C_a * its training frequency), as if classes were equally common."""
        total = logits.new_zeros(())
        for a, block in enumerate(self.split_logits(logits)):
            target = ids[:, a]
            weight = (1.0 / (self.prior[a] * len(self.prior[a]))).to(block.device) if balanced else None
            losses = F.cross_entropy(block, target.clamp(min=0), weight=weight, reduction="none")
            labelled = (target >= 0).float()
            total = total + (losses * labelled).sum() / labelled.sum().clamp(min=1)
        return total

    def entropy(self, logits: Tensor) -> Tensor:
        """Sum over attributes of the mean entropy of the predicted class distribution."""
        return sum((-(b.log_softmax(-1) * b.softmax(-1)).sum(-1)).mean() for b in self.split_logits(logits))

    def accuracy(self, logits: Tensor, ids: Tensor) -> Tensor:
        """Mean over attributes of the accuracy on the rows labelled for it."""
        accs = []
        for a, block in enumerate(self.split_logits(logits)):
            labelled = ids[:, a] >= 0
            hits = (block.argmax(-1) == ids[:, a]) & labelled
            accs.append(hits.sum() / labelled.sum().clamp(min=1))
        return torch.stack(accs).mean()

    def recalls(self, logits: Tensor, ids: Tensor) -> list[float]:
        """Accuracy on the rows of each (attribute, class) in turn (nan where a class has no rows)."""
        out = []
        for a, block in enumerate(self.split_logits(logits)):
            for v in range(self.sizes[a]):
                rows = ids[:, a] == v
                out.append(float((block[rows].argmax(-1) == v).float().mean()) if rows.any() else float("nan"))
        return out

    def probabilities(self, logits: Tensor) -> list[Tensor]:
        return [b.softmax(-1) for b in self.split_logits(logits)]
