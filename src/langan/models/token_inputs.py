"""What every langan generator network shares: its input is token ids or relaxed one-hots, read through one
embedding table `embed`, and its body is `forward_embeds(x, cache, cond, attention_mask)`."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class TokenInputLM(nn.Module):
    embed: nn.Embedding

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        return self.embed(tokens)

    def embed_probs(self, probs: Tensor) -> Tensor:
        """[B, T, V] relaxed one-hots -> their expected input embedding [B, T, E]."""
        return probs @ self.embed.weight

    def forward(self, tokens: Tensor, cache: Any = None, cond: Tensor | None = None,
                attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        """tokens [B, T] -> (logits [B, T, V] (V = out_size if set), the cache or state). cond: [B, C];
        attention_mask: [B, T] bool (left padding; the transformer's full passes only)."""
        return self.forward_embeds(self.embed_tokens(tokens), cache, cond, attention_mask)

    def forward_embeds(self, x: Tensor, cache: Any = None, cond: Tensor | None = None,
                       attention_mask: Tensor | None = None) -> tuple[Tensor, Any]:
        raise NotImplementedError
