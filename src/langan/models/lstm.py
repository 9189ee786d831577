"""LSTM language model with the same contract as the transformer: `forward(tokens, cache, cond)`.

The cache is the recurrent state; `new_cache` gives the zero state. The conditioning vector (e.g. style
code and z, after Hu et al. 2017) is concatenated to the input embedding at every step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from langan.models.token_inputs import TokenInputLM


class LSTMState:
    def __init__(self, h: Tensor, c: Tensor):
        self.h, self.c = h, c  # [num_layers, B, H] each

    def repeat_rows(self, repeats: int) -> LSTMState:
        """A state of B * repeats rows, row b copied to rows b * repeats ... (b + 1) * repeats - 1."""
        return LSTMState(self.h.repeat_interleave(repeats, 1), self.c.repeat_interleave(repeats, 1))


class LSTMLM(TokenInputLM):
    def __init__(self, vocab_size: int, max_length: int, hidden_size: int = 256, num_layers: int = 1,
                 tie_word_embeddings: bool = False, dropout: float = 0.0, cond_size: int = 0, out_size: int = 0,
                 embedding_size: int = 0, init_std: float = 0.0, **_: object):
        super().__init__()
        self.vocab_size, self.max_length = vocab_size, max_length
        embedding_size = embedding_size or hidden_size  # a narrower input (SeqGAN: 32 and 32) costs less per step
        self.embed = nn.Embedding(vocab_size, embedding_size)
        self.lstm = nn.LSTM(embedding_size + cond_size, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        # out_size: a classifier / encoder head instead of next-token logits
        self.head = nn.Linear(hidden_size, out_size or vocab_size)
        if tie_word_embeddings and not out_size:  # config checks embedding_size == hidden_size for this
            self.head.weight = self.embed.weight
        if init_std > 0:  # SeqGAN's generator: every weight and bias ~ N(0, 0.1); else PyTorch's defaults
            for p in self.parameters():
                nn.init.normal_(p, std=init_std)

    def new_cache(self, batch_size: int, max_tokens: int | None = None, differentiable: bool = False
                  ) -> LSTMState:
        """The zero state; it is replaced (never written in place) at each step, so gradients flow through."""
        p = self.embed.weight
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return LSTMState(p.new_zeros(shape), p.new_zeros(shape))

    def forward_embeds(self, x: Tensor, cache: LSTMState | None = None, cond: Tensor | None = None,
                       attention_mask: Tensor | None = None) -> tuple[Tensor, LSTMState]:
        if cond is not None:
            x = torch.cat([x, cond[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        state = (cache.h, cache.c) if cache is not None else None
        out, (h, c) = self.lstm(self.drop(x), state)
        if cache is not None:
            cache.h, cache.c = h, c
        return self.head(self.drop(out)), LSTMState(h, c) if cache is None else cache
