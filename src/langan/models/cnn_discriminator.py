"""Convolutional sequence discriminators: SeqGAN's (Yu et al. 2017) and RelGAN's (Nie et al. 2019).

Both embed the whole padded row (`max_length` positions; PAD rows after the end), convolve over time with several
filter widths, max-pool each filter over time, pass the features through a highway layer and dropout, and score.
RelGAN's discriminator splits its embedding into `num_representations` slices and scores each slice on its own
(one convolution shared by all slices, striding over them): R logits per sequence, each a separate verdict in the
GAN loss. SeqGAN's is the case R = 1. Real rows are token ids (the embedding of a one-hot row); relaxed one-hots
[B, T, V] enter through `forward_probs` (probs @ E), so a one-hot row reads exactly as its token.

Sequence logits come out as [B] (R = 1) or [B, R]; there are no per-prefix logits (a CNN sees the whole row).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from langan.tokens import PAD


class CNNDiscriminator(nn.Module):
    fixed_width = True  # every row is padded to max_length: passes over shorter groups of rows save nothing

    def __init__(self, vocab_size: int, max_length: int, embedding_size: int = 64, filter_sizes: tuple[int, ...] =
                 (2, 3, 4, 5), num_filters: tuple[int, ...] = (300, 300, 300, 300), num_representations: int = 1,
                 dropout: float = 0.25, head_size: int = 100):
        super().__init__()
        if embedding_size % num_representations:
            raise ValueError("embedding_size must be divisible by num_representations")
        self.max_length, self.reps = max_length, num_representations
        self.slice = embedding_size // num_representations  # width of one representation
        self.embed = nn.Embedding(vocab_size, embedding_size)
        # a filter of width f spans f positions and one representation's slice; stride = the slice: R outputs
        self.convs = nn.ModuleList(nn.Conv2d(1, n, (f, self.slice), stride=(1, self.slice))
                                   for f, n in zip(filter_sizes, num_filters, strict=True))
        features = sum(num_filters)
        self.highway = nn.Linear(features, features)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(features, head_size), nn.ReLU(), nn.Linear(head_size, 1)) if head_size \
            else nn.Linear(features, 1)
        self.min_width = max(filter_sizes)

    def forward(self, tokens: Tensor) -> tuple[None, Tensor]:
        """Right-padded tokens [B, T] (no BOS, PAD after EOS) -> (None: no per-prefix logits, sequence logits [B]
        or [B, R])."""
        return None, self.score(self.embed(self._pad(tokens)))

    def forward_probs(self, probs: Tensor, lengths: Tensor) -> Tensor:
        """Relaxed one-hots [B, T, V] whose first lengths[b] rows are real -> sequence logits [B] or [B, R]; the
        rows after each sequence's end read as PAD, as they do for real text."""
        t = probs.shape[1]
        if bool((lengths < t).any()):  # (fixed-length oracle rows: nothing to replace)
            real = torch.arange(t, device=probs.device)[None] < lengths.to(probs.device)[:, None]  # [B, T]
            pad_row = F.one_hot(torch.tensor(PAD, device=probs.device), probs.shape[-1]).to(probs.dtype)
            probs = torch.where(real[..., None], probs, pad_row)
        x = probs @ self.embed.weight  # [B, T, E]
        if t < self._width():
            x = torch.cat([x, self.embed.weight[PAD].expand(len(x), self._width() - t, -1)], 1)
        return self.score(x)

    def _width(self) -> int:
        return max(self.max_length, self.min_width)

    def _pad(self, tokens: Tensor) -> Tensor:
        """Every row padded with PAD to the full width (a filter needs at least its width)."""
        return F.pad(tokens, (0, max(self._width() - tokens.shape[1], 0)), value=PAD)

    def forward_rollouts(self, tokens: Tensor, prefix_length: int, repeats: int) -> Tensor:
        """Sequence logits of rollouts: rows [N = n * repeats, T] in groups of `repeats` consecutive rows that share
        their first `prefix_length` tokens (SeqGAN's completions of one prefix). Equal to forward(tokens)[1]; the
        windows that lie inside the shared prefix are convolved once per group instead of once per row (a third
        of the convolution's products for SeqGAN's filters over all prefix lengths of a length-20 row)."""
        x = self.embed(self._pad(tokens))  # [N, W, E]
        shared = x[::repeats, :prefix_length]  # [n, t, E]: each group's prefix, once
        pooled = []
        for conv in self.convs:
            f = conv.kernel_size[0]
            first = max(prefix_length - f + 1, 0)  # the first window that reaches past the prefix
            best = max_over_time(self.convolve(x[:, first:], conv))  # [N, R, n_f]
            if prefix_length >= f:  # windows inside the prefix: the same for every row of a group
                inside = max_over_time(self.convolve(shared, conv))  # [n, R, n_f]
                best = torch.maximum(best, inside.repeat_interleave(repeats, 0))
            pooled.append(F.relu(best))
        return self.classify(pooled)

    def score(self, x: Tensor) -> Tensor:
        """Embedded rows [B, T, E] -> logits [B] (R = 1) or [B, R]."""
        # each [B, R, n_f]: max over time, then ReLU (the same as ReLU then max: ReLU is monotone) on the pooled
        # features only
        return self.classify([F.relu(max_over_time(self.convolve(x, conv))) for conv in self.convs])

    def classify(self, pooled: list[Tensor]) -> Tensor:
        """Pooled features, one [B, R, n_f] per filter width -> logits [B] (R = 1) or [B, R]."""
        h = torch.cat(pooled, -1)  # [B, R, F]
        gate = self.highway(h)
        h = torch.sigmoid(gate) * F.relu(gate) + (1 - torch.sigmoid(gate)) * h  # highway (Srivastava et al. 2015)
        logits = self.head(self.drop(h)).squeeze(-1).float()  # [B, R]
        return logits[:, 0] if self.reps == 1 else logits

    def convolve(self, x: Tensor, conv: nn.Conv2d) -> Tensor:
        """[B, T, E] -> [B, T - f + 1, R, n]: the convolution of width f over each representation, computed as one
        matrix product over its windows (unfold). Same values as conv2d, about 4x faster on CPU for SeqGAN's
        filters (benchmarks/README.md); the weights stay a Conv2d's, so checkpoints are unchanged."""
        b, t, _ = x.shape
        f, n = conv.kernel_size[0], conv.out_channels
        windows = x.reshape(b, t, self.reps, self.slice).unfold(1, f, 1)  # [B, T-f+1, R, S, f]
        # one 2-D product: the overlapping windows are copied into rows first. Left 4-D (a strided view for
        # R = 1), the product takes a batched path ~5x slower at float32 and ~180x slower under bf16 autocast
        rows = windows.transpose(-1, -2).reshape(-1, f * self.slice)  # [B (T-f+1) R, f S]
        out = torch.addmm(conv.bias, rows, conv.weight.view(n, f * self.slice).T)  # [B (T-f+1) R, n]
        return out.view(b, t - f + 1, self.reps, n)


def max_over_time(maps: Tensor) -> Tensor:
    """[B, T', R, n] feature maps -> [B, R, n], the max over windows. With gradients, max(dim): it keeps the argmax,
    so its backward is a scatter, not amax's compare-and-divide. Without, amax: max(dim)'s index tracking took
    5 ms for 1,024 x 19 x 200 maps against 0.4-0.8 ms (2 cores), most of a rollout reward's pooling."""
    return maps.max(1).values if torch.is_grad_enabled() and maps.requires_grad else maps.amax(1)
