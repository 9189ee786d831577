"""Token-level likelihood, shared by MLE training and NLL evaluation."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from langan.data.tokenizers import PAD


def token_nll_sum(model: nn.Module, tokens: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Summed NLL (nats) of the targets of right-padded rows `BOS x EOS PAD...` [B, T+1], and their count.

    Targets are every token after BOS up to and including EOS (makemore's convention); PAD never counts.
    """
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    logits = model(inputs, cond=cond)[0]  # [B, T, V]
    nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD, reduction="sum")
    return nll, (targets != PAD).sum()
