"""Draw decoded samples from a generator in batches, reproducibly from a seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from langan import dist
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
                 cond: Tensor | None = None, allow_eos: bool = True, across_ranks: bool = False) -> Samples:
    """n samples; a private generator seeded with `seed` leaves the global RNG untouched.

    `across_ranks` (langan eval, sweep-temperature): under torchrun every rank calls this and the n samples are
    split between the ranks (rank r draws rows r, r + W, ... from `dist.rank_seed(seed)`) and
    gathered, so every rank returns the same n samples. Otherwise (e.g. rank 0 evaluating during training) this
    process draws all n."""
    args = (model, tokenizer, n, max_length, seed, temperature, top_p, top_k, batch_size, cond, allow_eos)
    return _draw_in_parallel(*args) if across_ranks and dist.active() else _draw(*args)


def _draw(model: nn.Module, tokenizer: Tokenizer, n: int, max_length: int, seed: int, temperature: float,
          top_p: float, top_k: int, batch_size: int, cond: Tensor | None, allow_eos: bool) -> Samples:
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



def _draw_in_parallel(model: nn.Module, tokenizer: Tokenizer, n: int, max_length: int, seed: int,
                      temperature: float, top_p: float, top_k: int, batch_size: int, cond: Tensor | None,
                      allow_eos: bool) -> Samples:
    import torch.distributed

    rank, world = dist.rank(), dist.world_size()
    rows = torch.arange(rank, n, world)  # this rank's rows of the n
    mine = _draw(model, tokenizer, len(rows), max_length, dist.rank_seed(seed), temperature, top_p, top_k, batch_size,
                 None if cond is None else cond[rows], allow_eos)
    shards: list[object] = [None] * world
    torch.distributed.all_gather_object(shards, (rows, mine.tokens, mine.lengths, mine.ended))
    width = max(int(s[1].shape[1]) for s in shards)  # type: ignore[index]
    tokens = torch.zeros(n, width, dtype=torch.long)
    lengths, ended = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool)
    for index, t, length, end in shards:  # type: ignore[misc]
        tokens[index, : t.shape[1]], lengths[index], ended[index] = t, length, end
    return Samples([tokenizer.decode(row) for row in tokens.tolist()], tokens, lengths, ended)
