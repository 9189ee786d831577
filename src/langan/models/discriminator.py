"""Transformer discriminator: one logit per prefix (causal) or per sequence, from left-padded batches.

It reads generated or real tokens without BOS, left-padded with an attention mask (`data.batching.left_pad`),
so the last column is every row's last real token and RoPE positions count from each row's first token:
padding changes nothing. `per_step` logits are returned in the right-padded layout of the input.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from langan.models.cnn_discriminator import CNNDiscriminator
from langan.models.transformer import TransformerLM
from langan.tokens import from_left_padded, left_align, left_pad


class TransformerDiscriminator(nn.Module):
    def __init__(self, vocab_size: int, max_length: int, hidden_size: int = 64, intermediate_size: int = 256,
                 num_layers: int = 3, num_heads: int = 8, rope_theta: float = 200.0, activation: str = "gelu",
                 dropout: float = 0.0, attention_dropout: float = 0.0):
        super().__init__()
        self.body = TransformerLM(vocab_size, max_length, hidden_size, intermediate_size, num_layers, num_heads,
                                  rope_theta, activation=activation, dropout=dropout,
                                  attention_dropout=attention_dropout, out_size=1)

    def forward_left_padded(self, tokens: Tensor, attention_mask: Tensor) -> Tensor:
        """Left-padded tokens [B, T] + mask [B, T] -> causal logits [B, T] (the logit at t judges tokens <= t)."""
        return self.body(tokens, attention_mask=attention_mask)[0].squeeze(-1).float()

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Right-padded tokens [B, T] (no BOS, PAD after EOS) -> (per-prefix logits [B, T], 0 on padding;
        sequence logits [B])."""
        padded, mask = left_pad(tokens)
        logits = self.forward_left_padded(padded, mask)  # [B, T], last column = last real token
        return from_left_padded(logits, mask), logits[:, -1]

    def forward_probs(self, probs: Tensor, lengths: Tensor) -> Tensor:
        """Relaxed one-hots [B, T, V] (right-aligned, the first lengths[b] real) -> sequence logits [B]; the input
        embedding is probs @ E, so a one-hot row reads exactly as its token (Gumbel-softmax GANs)."""
        x, mask = left_align(probs @ self.body.embed.weight, lengths)  # [B, T, H]
        return self.body.forward_embeds(x, attention_mask=mask)[0][:, -1, 0].float()


def build_discriminator(cfg: Any, vocab_size: int, max_length: int) -> nn.Module:
    """A discriminator from a `disc.*` config section (any object with those attributes): the transformer, or
    SeqGAN's / RelGAN's CNN (`disc.arch=cnn`), or a pretrained model with a new head (`disc.arch=hf`)."""
    if cfg.arch == "hf":
        from langan.models.hf import HFDiscriminator  # transformers is an optional extra

        return HFDiscriminator(cfg.path, vocab_size, max_length, cfg.output, cfg.dropout)
    if cfg.arch == "cnn":
        return CNNDiscriminator(vocab_size, max_length, cfg.embedding_size, tuple(cfg.filter_sizes),
                                tuple(cfg.num_filters), cfg.num_representations, cfg.dropout, cfg.head_size)
    names = ("hidden_size", "intermediate_size", "num_layers", "num_heads", "rope_theta", "activation",
             "dropout", "attention_dropout")
    return TransformerDiscriminator(vocab_size, max_length, **{n: getattr(cfg, n) for n in names})
