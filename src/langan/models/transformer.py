"""Decoder-only transformer: RoPE, RMSNorm (pre-norm), GELU or SwiGLU MLP, optional conditioning vector.

`forward(tokens, cache=None, cond=None, attention_mask=None) -> (logits, cache)`. With a `KVCache`
(from `new_cache`) each call appends its positions to the cache, so decoding one token at a time gives
the same logits as a full forward pass (rows are decoded in step, without padding). With `attention_mask`
(left-padded rows, True on real tokens; full passes only) positions count from each row's first real token,
so padding changes nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from langan.models.token_inputs import TokenInputLM


class KVCache:
    """Preallocated keys/values of every layer: [num_layers, B, H, T_max, D]; `pos` = positions filled."""

    def __init__(self, num_layers: int, batch_size: int, num_heads: int, max_tokens: int, head_dim: int,
                 device: torch.device, dtype: torch.dtype):
        shape = (num_layers, batch_size, num_heads, max_tokens, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write new keys/values [B, H, t, D] at `pos` (in place) and return every key/value so far."""
        start, t = self.pos, k.shape[2]
        self.k[layer, :, :, start:start + t] = k
        self.v[layer, :, :, start:start + t] = v
        return self.k[layer, :, :, : start + t], self.v[layer, :, :, : start + t]

    def repeat_rows(self, repeats: int) -> KVCache:
        """A cache of B * repeats rows, row b copied to rows b * repeats ... (b + 1) * repeats - 1."""
        copy = KVCache.__new__(KVCache)
        copy.k, copy.v = self.k.repeat_interleave(repeats, 1), self.v.repeat_interleave(repeats, 1)
        copy.pos = self.pos
        return copy


class GradKVCache:
    """A cache that backpropagates: each step concatenates instead of writing in place, so the keys saved
    for the backward pass of earlier steps stay intact (soft / Gumbel-softmax samples train through it)."""

    def __init__(self, num_layers: int):
        self.k: list[Tensor | None] = [None] * num_layers
        self.v: list[Tensor | None] = [None] * num_layers
        self.pos = 0

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        old_k, old_v = self.k[layer], self.v[layer]
        self.k[layer] = k if old_k is None else torch.cat([old_k, k], dim=2)
        self.v[layer] = v if old_v is None else torch.cat([old_v, v], dim=2)
        return self.k[layer], self.v[layer]


def rope_tables(head_dim: int, positions: Tensor, theta: float) -> tuple[Tensor, Tensor]:
    """cos, sin of shape [..., head_dim/2] for integer positions of any shape."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = positions.float()[..., None] * inv_freq  # [..., D/2]
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs (x[:D/2], x[D/2:]) of x [B, H, T, D]; cos/sin broadcast as [B or 1, 1, T, D/2]."""
    x1, x2 = x.float().chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class Attention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, attention_dropout: float):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.attention_dropout = attention_dropout

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                cache: KVCache | GradKVCache | None, layer: int) -> Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3x[B,H,T,D]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        causal = mask is None
        if cache is not None:
            start = cache.pos
            k, v = cache.append(layer, k, v)
            if start > 0:
                causal = False
                if t > 1:  # several new queries: each sees the cache plus new keys up to itself
                    mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(start)
        dropout = self.attention_dropout if self.training else 0.0
        if t == 1 and cache is not None and dropout == 0.0:
            # one new query against the cache: two small batched matmuls beat SDPA's CPU kernel here
            # (1.7x at 32 cached positions, benchmarks/README.md); it may see every cached key
            weights = (q @ k.transpose(-1, -2)).mul_(self.head_dim ** -0.5).softmax(-1)  # [B, H, 1, T]
            y = weights @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)
        return self.proj(y.transpose(1, 2).reshape(b, t, h))


class MLP(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, activation: str):
        super().__init__()
        self.swiglu = activation == "swiglu"
        self.up = nn.Linear(hidden_size, intermediate_size * (2 if self.swiglu else 1), bias=False)
        self.down = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.swiglu:
            gate, up = self.up(x).chunk(2, dim=-1)
            return self.down(F.silu(gate) * up)
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, num_heads: int, activation: str,
                 dropout: float, attention_dropout: float):
        super().__init__()
        self.norm1 = nn.RMSNorm(hidden_size, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads, attention_dropout)
        self.norm2 = nn.RMSNorm(hidden_size, eps=1e-6)
        self.mlp = MLP(hidden_size, intermediate_size, activation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None,
                cache: KVCache | GradKVCache | None, layer: int) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), cos, sin, mask, cache, layer))
        return x + self.drop(self.mlp(self.norm2(x)))


class TransformerLM(TokenInputLM):
    def __init__(self, vocab_size: int, max_length: int, hidden_size: int = 64, intermediate_size: int = 256,
                 num_layers: int = 4, num_heads: int = 4, rope_theta: float = 10000.0,
                 tie_word_embeddings: bool = False, activation: str = "gelu", dropout: float = 0.0,
                 attention_dropout: float = 0.0, cond_size: int = 0, out_size: int = 0,
                 learned_positions: bool = False):
        super().__init__()
        self.vocab_size, self.max_length = vocab_size, max_length
        self.num_heads, self.rope_theta = num_heads, rope_theta
        self.embed = nn.Embedding(vocab_size, hidden_size)
        # absolute positions as well as RoPE (GPT-2 / makemore): "how far into the text" in one lookup
        self.positions = nn.Embedding(max_length + 1, hidden_size) if learned_positions else None
        self.cond_proj = nn.Linear(cond_size, hidden_size, bias=False) if cond_size else None
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(hidden_size, intermediate_size, num_heads, activation, dropout, attention_dropout)
            for _ in range(num_layers))
        self.norm = nn.RMSNorm(hidden_size, eps=1e-6)
        # out_size: a classifier head (discriminators) instead of next-token logits
        self.head = nn.Linear(hidden_size, out_size or vocab_size, bias=out_size > 0)
        if tie_word_embeddings and not out_size:
            self.head.weight = self.embed.weight
        self._init_weights(num_layers)

    def _init_weights(self, num_layers: int) -> None:
        # GPT-2 style: N(0, 0.02), residual output projections scaled down by sqrt(2 * layers)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * num_layers) if name.endswith(("proj.weight", "down.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def new_cache(self, batch_size: int, max_tokens: int | None = None, differentiable: bool = False
                  ) -> KVCache | GradKVCache:
        """A KV cache for decoding; `differentiable` gives one that gradients flow through (soft samples)."""
        if differentiable:
            return GradKVCache(len(self.blocks))
        p = self.embed.weight
        head_dim = p.shape[1] // self.num_heads
        return KVCache(len(self.blocks), batch_size, self.num_heads, max_tokens or self.max_length + 1,
                       head_dim, p.device, p.dtype)

    def forward_embeds(self, x: Tensor, cache: KVCache | GradKVCache | None = None, cond: Tensor | None = None,
                       attention_mask: Tensor | None = None) -> tuple[Tensor, KVCache | GradKVCache | None]:
        """Same as forward from input embeddings x [B, T, H] (soft / Gumbel inputs enter here)."""
        t = x.shape[1]
        if cache is not None and attention_mask is not None:
            raise ValueError("attention_mask (left padding) is for full forward passes, not KV-cache decoding")
        start = cache.pos if cache is not None else 0
        mask = None
        if attention_mask is not None:
            positions = (attention_mask.long().cumsum(1) - 1).clamp(min=0)  # [B, T] from first real token
            cos, sin = rope_tables(x.shape[-1] // self.num_heads, positions, self.rope_theta)
            cos, sin = cos[:, None], sin[:, None]  # [B, 1, T, D/2]
            causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            # each query sees real keys up to itself, and always itself (a padded query row stays finite)
            mask = (causal & attention_mask[:, None, :]) | torch.eye(t, dtype=torch.bool, device=x.device)
            mask = mask[:, None]  # [B, 1, T, T]
        else:
            positions = torch.arange(start, start + t, device=x.device)
            cos, sin = rope_tables(x.shape[-1] // self.num_heads, positions, self.rope_theta)
        if self.positions is not None:
            x = x + self.positions(positions.clamp(max=self.positions.num_embeddings - 1))
        if self.cond_proj is not None and cond is not None:
            x = x + self.cond_proj(cond)[:, None, :]
        x = self.drop(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache, layer)
        if cache is not None:
            cache.pos = start + t
        return self.head(self.norm(x)), cache
