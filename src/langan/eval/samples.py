"""Draw decoded samples from a generator in batches, reproducibly from a seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from langan.data.tokenizers import Tokenizer
from langan.generation import sample

_CONTROL = {c: f"\\x{c:02x}" for c in range(32) if c != 9} | {10: "\\n", 13: "\\r", 127: "\\x7f"}


def one_line(text: str) -> str:
    """A sample as one printable line: control characters (a byte-level BPE model can emit a newline) escaped."""
    return text.translate(_CONTROL)


@dataclass
class Samples:
    texts: list[str]
    tokens: Tensor  # [N, L] sampled ids, PAD after EOS
    lengths: Tensor  # [N]
    ended: Tensor  # [N] bool, emitted EOS


def draw_samples(model: nn.Module, tokenizer: Tokenizer, n: int, max_length: int, seed: int,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, batch_size: int = 500,
                 cond: Tensor | None = None, allow_eos: bool = True) -> Samples:
    """n samples; a private generator seeded with `seed` leaves the global RNG untouched."""
    device = next(model.parameters()).device
    g = torch.Generator(device=device).manual_seed(seed)
    parts = []
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        c = cond[start:start + b] if cond is not None else None
        parts.append(sample(model, b, max_length, temperature=temperature, top_k=top_k, top_p=top_p, cond=c,
                            generator=g, allow_eos=allow_eos))
    if not parts:
        empty = torch.zeros(0, dtype=torch.long)
        return Samples([], torch.zeros(0, max_length, dtype=torch.long), empty, empty.bool())
    tokens = torch.cat([p.tokens for p in parts]).cpu()
    return Samples([tokenizer.decode(row) for row in tokens.tolist()], tokens,
                   torch.cat([p.lengths for p in parts]).cpu(), torch.cat([p.ended for p in parts]).cpu())
