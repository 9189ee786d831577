"""The token contract every part shares: reserved ids, and the two padding layouts.

Every tokenizer reserves PAD=0, BOS=1, EOS=2, UNK=3. A sequence is `BOS x1..xn EOS PAD...`: generators
read right-padded rows; discriminators and readers read left-padded rows with an attention mask.
"""

from __future__ import annotations

import torch
from torch import Tensor

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


def left_pad(tokens: Tensor) -> tuple[Tensor, Tensor]:
    """Right-padded [B, T] -> (left-padded [B, T], attention mask [B, T] bool, True on real tokens)."""
    t = tokens.shape[1]
    lengths = (tokens != PAD).sum(1, keepdim=True)  # [B, 1]
    src = torch.arange(t, device=tokens.device) - (t - lengths)  # [B, T] where each slot reads from
    mask = src >= 0
    out = torch.where(mask, tokens.gather(1, src.clamp(min=0)), torch.full_like(tokens, PAD))
    return out, mask


def left_align(values: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """`left_pad` for rows of vectors: right-aligned [B, T, H] whose first lengths[b] rows are real ->
    (left-padded [B, T, H], zeros in front; mask [B, T] bool, True on real rows). Soft inputs enter here."""
    t = values.shape[1]
    src = torch.arange(t, device=values.device) - (t - lengths.to(values.device)[:, None])  # [B, T]
    mask = src >= 0
    gathered = values.gather(1, src.clamp(min=0)[..., None].expand(-1, -1, values.shape[-1]))
    return gathered * mask[..., None].to(values.dtype), mask


def from_left_padded(values: Tensor, mask: Tensor) -> Tensor:
    """Inverse of `left_pad` for per-position values: left-padded [B, T] (mask True on real slots) ->
    right-padded [B, T], 0 where there is no real token."""
    t = values.shape[1]
    lengths = mask.sum(1, keepdim=True)  # [B, 1]
    src = torch.arange(t, device=values.device) + (t - lengths)  # [B, T] slot each position comes from
    valid = src < t
    return torch.where(valid, values.gather(1, src.clamp(max=t - 1)), torch.zeros_like(values))
