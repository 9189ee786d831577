"""`attr_acc`: do samples drawn with a requested style code carry that attribute?

Judged by a classifier trained here, separately, on the real labelled training rows (never the run's own
classifier, which the generator was trained to please); its accuracy on the labelled validation rows is
reported beside it as `attr_clf_acc`, so a weak judge is visible.
"""

from __future__ import annotations

import torch
from torch import Tensor

from langan.algorithms.codes import Codes
from langan.data.batching import BatchIterator, iterate_in_order
from langan.data.dataset import DataBundle
from langan.models.reader import SequenceReader


class AttributeJudge:
    """A small causal transformer classifier of every attribute, trained on labelled real rows with
    class-balanced weights (a rare class, e.g. male names at 22% of census-names, is judged as reliably as a
    common one); `valid_accuracy` is its balanced accuracy (mean recall per class) on the validation rows."""

    def __init__(self, data: DataBundle, codes: Codes, steps: int, seed: int = 0, batch_size: int = 128):
        self.codes = codes
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG as it was
            torch.manual_seed(seed)
            self.model = SequenceReader("transformer", data.tokenizer.vocab_size, data.max_length, codes.size,
                                        hidden_size=64, num_layers=2, num_heads=4, dropout=0.1)
            self._fit(data, steps, seed, batch_size)
        self.model.eval()
        valid = data.valid
        recalls = codes.recalls(self.logits(valid.tokens[:, 1:]), codes.ids(valid)) if len(valid) else []
        # balanced: every requested class counts the same in attr_acc, so the judge is reported the same way
        known = [r for r in recalls if r == r]
        self.valid_accuracy = sum(known) / len(known) if known else float("nan")

    def _fit(self, data: DataBundle, steps: int, seed: int, batch_size: int) -> None:
        ids = self.codes.ids(data.train)
        labelled = (ids >= 0).any(1)
        tokens, ids = data.train.tokens[labelled], ids[labelled]
        batches = BatchIterator(tokens, batch_size, seed)
        opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=0.01)
        lr = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=max(steps, 1))
        self.model.train()
        for _ in range(steps):
            batch = next(batches)
            loss = self.codes.cross_entropy(self.model(batch.tokens[:, 1:]), ids[batch.index], balanced=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lr.step()

    @torch.no_grad()
    def logits(self, rows: Tensor) -> Tensor:
        """Rows without BOS (right-padded) -> [N, sum C] class logits."""
        return torch.cat([self.model(b) for b in iterate_in_order(rows, 512)]) if len(rows) else \
            torch.zeros(0, self.codes.size)

    def accuracy(self, rows: Tensor, ids: Tensor) -> float:
        return float(self.codes.accuracy(self.logits(rows), ids))


def one_hot_rows(codes: Codes, n: int, attribute: int, value: int) -> Tensor:
    """[n, A] class ids pinning one attribute, the others unlabelled (-1: not judged)."""
    ids = torch.full((n, len(codes.columns)), -1, dtype=torch.long)
    ids[:, attribute] = value
    return ids


def balanced_attr_accuracy(judge: AttributeJudge, samples_by_value: dict[tuple[int, int], Tensor]
                           ) -> dict[str, float]:
    """Accuracy per (attribute, value) and their mean, `attr_acc` (each requested value weighs the same)."""
    out, accs = {}, []
    for (a, v), rows in samples_by_value.items():
        acc = judge.accuracy(rows, one_hot_rows(judge.codes, len(rows), a, v))
        out[f"attr_acc/{judge.codes.columns[a]}={judge.codes.values[judge.codes.columns[a]][v]}"] = acc
        accs.append(acc)
    return {"attr_acc": sum(accs) / len(accs)} | out

