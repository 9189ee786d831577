"""Sequence readers: a causal LSTM or transformer that reads right-padded rows (hard ids or soft one-hots) and
returns its output at each row's last real token — the VAE encoder q(z|x) and the attribute classifier.

Reading causally and taking the output at position length-1 means the padding after a row's end is never
seen (an LSTM's state and a causal transformer's output at t depend on tokens <= t only), so padding
changes nothing by construction; and soft inputs (probabilities over the vocabulary) enter as the
probability-weighted mix of embeddings, so gradients reach whatever produced them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from langan.models.lstm import LSTMLM
from langan.models.transformer import TransformerLM
from langan.tokens import PAD


class SequenceReader(nn.Module):
    def __init__(self, arch: str, vocab_size: int, max_length: int, out_size: int, hidden_size: int,
                 num_layers: int = 1, num_heads: int = 4, intermediate_size: int = 0, rope_theta: float = 200.0,
                 dropout: float = 0.0):
        super().__init__()
        if arch == "lstm":
            self.body: nn.Module = LSTMLM(vocab_size, max_length, hidden_size, num_layers, dropout=dropout,
                                          out_size=out_size)
        else:
            self.body = TransformerLM(vocab_size, max_length, hidden_size, intermediate_size or 4 * hidden_size,
                                      num_layers, num_heads, rope_theta, dropout=dropout, out_size=out_size)

    def forward(self, tokens: Tensor | None = None, probs: Tensor | None = None,
                lengths: Tensor | None = None) -> Tensor:
        """Rows without BOS: ids [B, T] (PAD after the end) or soft one-hots probs [B, T, V] with `lengths` [B]
        (tokens up to and including EOS). Returns the output at each row's last real token: [B, out_size]."""
        if probs is not None:
            x = probs @ self.body.embed.weight  # [B, T, H]: the expected embedding
        else:
            x = self.body.embed_tokens(tokens)
            lengths = (tokens != PAD).sum(1) if lengths is None else lengths
        out = self.body.forward_embeds(x)[0]  # [B, T, out]
        last = (lengths.clamp(min=1) - 1).to(out.device)
        return out[torch.arange(len(out), device=out.device), last].float()
