"""Token-level likelihood, shared by MLE training and NLL evaluation."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from langan.tokens import EOS, PAD


def token_nll_sum(model: nn.Module, tokens: Tensor, cond: Tensor | None = None, temperature: float = 1.0,
                  count_eos: bool = True) -> tuple[Tensor, Tensor]:
    """Summed NLL (nats) of the targets of right-padded rows `BOS x EOS PAD...` [B, T+1], and their count.

    Targets are every token after BOS up to and including EOS (makemore's convention); PAD never counts.
    `temperature` scores under softmax(logits / T) (the quality-diversity sweep); `count_eos=False` leaves
    EOS out (fixed-length oracle data, whose EOS is trivially predictable).
    """
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    if not count_eos:
        targets = targets.masked_fill(targets == EOS, PAD)
    logits = model(inputs, cond=cond)[0].float()  # [B, T, V]
    if temperature != 1.0:
        logits = logits / temperature
    nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD, reduction="sum")
    return nll, (targets != PAD).sum()
