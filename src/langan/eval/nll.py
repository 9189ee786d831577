"""Negative log-likelihood of held-out text (nats per token, EOS counted, BOS not)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from langan.data.batching import iterate_in_order
from langan.generation import eval_mode
from langan.losses import token_nll_sum


@torch.no_grad()
def nll_per_token(model: nn.Module, tokens: Tensor, batch_size: int = 256, cond: Tensor | None = None,
                  temperature: float = 1.0, count_eos: bool = True) -> float:
    """Mean NLL over every target token of right-padded rows [N, T+1]; never updates the model."""
    if len(tokens) == 0:
        return float("nan")
    with eval_mode(model):
        device = next(model.parameters()).device
        total = torch.zeros((), dtype=torch.float64, device=device)
        count = torch.zeros((), dtype=torch.long, device=device)
        for i, batch in enumerate(iterate_in_order(tokens, batch_size)):
            c = cond[i * batch_size: (i + 1) * batch_size] if cond is not None else None
            nll, n = token_nll_sum(model, batch.to(device), c, temperature, count_eos)
            total += nll.double()
            count += n
    return float(total / count.clamp(min=1))
