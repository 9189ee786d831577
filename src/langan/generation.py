"""Sampling from any generator with the `forward(tokens, cache, cond)` contract.

Guarantees: PAD, BOS and UNK are never sampled (UNK on request); after EOS only PAD follows; every
sample ends at EOS or at `max_length` tokens. `logprobs` are log-probabilities under the distribution
actually sampled from (after temperature, top-k, top-p and forbidden tokens) — what a policy gradient
needs when sampling is tempered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from langan.tokens import BOS, EOS, PAD, UNK


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model with dropout off for the block, its own mode given back after it (also on an error)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@dataclass
class SampleOutput:
    tokens: Tensor  # [B, L] sampled ids after BOS; PAD after EOS
    logprobs: Tensor  # [B, L] log-prob of each sampled token (0 after EOS)
    lengths: Tensor  # [B] tokens up to and including EOS (L if no EOS)
    ended: Tensor  # [B] bool: the sample emitted EOS


def forbidden_mask(vocab_size: int, forbid: Sequence[int], allow_eos: bool, device: torch.device) -> Tensor:
    """[V] bool, True for tokens that may never be sampled. PAD and BOS are always forbidden."""
    mask = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    mask[[PAD, BOS, *forbid]] = True
    if not allow_eos:
        mask[EOS] = True
    return mask


def forbidden_bias(forbidden: Tensor) -> Tensor:
    """[V] bool -> [V] float, -inf where forbidden and 0 elsewhere: adding it is 5x faster on CPU than a broadcast
    masked_fill of the logits (benchmarks/README.md)."""
    return torch.zeros(forbidden.shape, device=forbidden.device).masked_fill(forbidden, float("-inf"))


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  forbidden: Tensor | None = None) -> Tensor:
    """[..., V] logits -> logits of the sampling distribution (-inf where a token cannot be drawn)."""
    logits = logits.float()
    if forbidden is not None:
        logits = logits + forbidden_bias(forbidden)
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the tokens ranked above it already hold top_p of the mass (the first is kept)
        drop_sorted = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return logits


# tokens per block of the two-level draw; vocabularies under 4 blocks are drawn in one level
DRAW_BLOCK = 64


def draw(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of [B, V] non-negative weights (rows need not sum to 1) -> [B] token ids.

    Inverse CDF in two levels: a block of DRAW_BLOCK tokens is drawn by its total weight, then a token inside it by
    its own weight, each with a fresh uniform, so P(token) = (S_block / T) (w / S_block) = w / T. A full-width
    cumsum runs one row at a time; the block totals are a vectorised sum and the rest touches B x 64 weights:
    1,024 x 5,004 weights 9-11 ms -> 2.4-6 ms, 10,000 x 5,004 160 -> 34-44 ms (2 cores). The one-level draw
    is itself about 17x faster than `torch.multinomial` (31 vs 518 ms for 4096 x 5000). float64 weights are
    drawn in float64 (the oracle's data), anything else in float32.
    """
    weights = probs if probs.dtype == torch.float64 else probs.float()
    b, v = weights.shape
    if v < 4 * DRAW_BLOCK:
        return inverse_cdf(weights, generator)
    full = v // DRAW_BLOCK * DRAW_BLOCK
    totals = weights[:, :full].reshape(b, full // DRAW_BLOCK, DRAW_BLOCK).sum(-1)  # [B, V // 64] (B may be 0)
    if full < v:  # the last, shorter block
        totals = torch.cat([totals, weights[:, full:].sum(-1, keepdim=True)], 1)
    block = inverse_cdf(totals, generator)  # [B]: a block of non-zero total
    columns = block[:, None] * DRAW_BLOCK + torch.arange(DRAW_BLOCK, device=weights.device)  # [B, 64]
    inside = weights.gather(1, columns.clamp(max=v - 1)) * (columns < v)  # 0 past the vocabulary's end
    return block * DRAW_BLOCK + inverse_cdf(inside, generator)


def inverse_cdf(weights: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """[B, N] non-negative weights -> [B] draws in one level: cumsum + searchsorted. A weight-0 entry is never
    drawn: u < total, and searchsorted(right=True) returns the first i with cdf[i] > u. The oracle's data are
    drawn this way (data/oracle.py), so that they stay the sequences earlier runs trained on."""
    cdf = weights.cumsum(-1)  # [B, N], non-decreasing
    total = cdf[:, -1:]  # [B, 1]
    u = torch.rand(total.shape, dtype=cdf.dtype, device=cdf.device, generator=generator) * total
    u = torch.minimum(u, total.nextafter(torch.zeros_like(total)))  # u * total may round up to total
    return torch.searchsorted(cdf, u, right=True).squeeze(1)


def draw_from_logits(logits: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """[B, V] logits (-inf: never drawn) -> ([B] draws from softmax(logits), [B] their log-probabilities).
    One fused softmax and one cumsum over the vocabulary: softmax reads each row while it is in cache, where
    max, subtract and exp as separate ops streamed the [B, V] block from memory three times."""
    probs = logits.softmax(-1)  # [B, V]
    token = draw(probs, generator)
    return token, probs.gather(1, token[:, None]).squeeze(1).log()


@torch.no_grad()
def sample(model: nn.Module, batch_size: int, max_length: int, temperature: float = 1.0, top_k: int = 0,
           top_p: float = 1.0, cond: Tensor | None = None, forbid: Sequence[int] = (UNK,),
           allow_eos: bool = True, generator: torch.Generator | None = None,
           use_cache: bool = True, prefix: Tensor | None = None, repeats: int = 1) -> SampleOutput:
    """Draw `batch_size` sequences of at most `max_length` tokens. temperature=0 means greedy.

    With `prefix` [N, P] (tokens after BOS, P < max_length; batch_size must be N * repeats), rows
    n * repeats ... (n + 1) * repeats - 1 all begin with prefix n and are sampled from position P on (SeqGAN
    rollouts). The prefix is read once per prefix row, in one pass, and its state copied to the repeats, so
    no position is sampled only to be overwritten. Forced tokens get logprob 0.
    """
    with eval_mode(model):
        device = next(model.parameters()).device
        forbidden = forbidden_mask(model.vocab_size, forbid, allow_eos, device)
        tokens = torch.full((batch_size, max_length + 1), PAD, dtype=torch.long, device=device)
        tokens[:, 0] = BOS
        logprobs = torch.zeros(batch_size, max_length, device=device)
        start, cache = 0, None
        repeats = repeats if prefix is not None else 1
        if prefix is not None:
            start = _check_prefix(prefix, batch_size, repeats, max_length)
            tokens[:, 1:start + 1] = prefix.to(device).repeat_interleave(repeats, 0)
        if use_cache:
            cache = _prefilled_cache(model, tokens[::repeats, :start], cond, repeats, max_length)
        ended = (tokens[:, 1:start + 1] == EOS).any(1)
        for t in range(start, max_length):
            inputs = tokens[:, t:t + 1] if use_cache else tokens[:, : t + 1]
            logits = model(inputs, cache=cache, cond=cond)[0][:, -1]  # [B, V]
            logits = filter_logits(logits, temperature, top_k, top_p, forbidden)
            if temperature == 0:
                token = logits.argmax(-1)
                token_logp = logits.log_softmax(-1).gather(1, token[:, None]).squeeze(1)
            else:
                token, token_logp = draw_from_logits(logits, generator)
            token = token.masked_fill(ended, PAD)
            logprobs[:, t] = token_logp.masked_fill(ended, 0.0)
            tokens[:, t + 1] = token
            ended |= token == EOS
            if t % 4 == 3 and bool(ended.all()):  # an early exit checked every few steps (one sync each)
                break
    out = tokens[:, 1:]
    lengths = torch.where(ended, (out == EOS).int().argmax(1) + 1, (out != PAD).sum(1))
    return SampleOutput(out, logprobs, lengths, ended)


def _check_prefix(prefix: Tensor, batch_size: int, repeats: int, max_length: int) -> int:
    if prefix.dim() != 2 or len(prefix) * repeats != batch_size or prefix.shape[1] >= max_length:
        raise ValueError(f"prefix {tuple(prefix.shape)} x {repeats} repeats does not fit {batch_size} rows of "
                         f"{max_length} tokens")
    return prefix.shape[1]


def _prefilled_cache(model: nn.Module, inputs: Tensor, cond: Tensor | None, repeats: int, max_length: int
                     ) -> object:
    """A decoding cache for len(inputs) * repeats rows, having read `inputs` [N, P] ([BOS, prefix minus its last
    token]; P = 0: nothing) once per row before copying each row's state to its repeats."""
    if inputs.shape[1] == 0:
        return model.new_cache(len(inputs) * repeats, max_length + 1)
    cache = model.new_cache(len(inputs), max_length + 1)
    model(inputs, cache=cache, cond=None if cond is None else cond[::repeats])
    return cache.repeat_rows(repeats)


@dataclass
class SoftSample:
    probs: Tensor  # [B, L, V] relaxed one-hots fed back as inputs (differentiable w.r.t. the generator)
    tokens: Tensor  # [B, L] their argmax, PAD after the first EOS
    lengths: Tensor  # [B] positions up to and including the first argmax EOS (L if none)


def relax(logits: Tensor, tau: float, gumbel: bool = False, straight_through: bool = False,
          generator: torch.Generator | None = None) -> Tensor:
    """[..., V] logits -> softmax((logits + g) / tau), g Gumbel(0, 1) noise when `gumbel` (Jang et al. 2017);
    `straight_through`: the hard one-hot of its argmax forward, the relaxed gradient backward."""
    if gumbel:
        u = torch.rand(logits.shape, device=logits.device, generator=generator).clamp_(1e-10, 1.0 - 1e-7)
        logits = logits - (-u.log()).log()
    probs = (logits / tau).softmax(-1)
    if straight_through:
        hard = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
        probs = hard + probs - probs.detach()
    return probs


def soft_sample(model: nn.Module, cond: Tensor, max_length: int, tau: float, gumbel: bool = False,
                straight_through: bool = False, forbid: Sequence[int] = (UNK,),
                generator: torch.Generator | None = None) -> SoftSample:
    """Differentiable samples (Hu et al. 2017): at each step the relaxed distribution over tokens is fed back
    as the next input embedding (probs @ embedding), through a KV cache that gradients flow through.
    PAD, BOS and `forbid` get probability 0. One row per conditioning vector in `cond` [B, C]."""
    b, device = len(cond), cond.device
    bias = forbidden_bias(forbidden_mask(model.vocab_size, forbid, True, device))
    cache = model.new_cache(b, max_length + 1, differentiable=True)
    x = model.embed_tokens(torch.full((b, 1), BOS, dtype=torch.long, device=device))  # [B, 1, H]
    steps, picks, ended = [], [], torch.zeros(b, dtype=torch.bool, device=device)
    for t in range(max_length):
        logits = model.forward_embeds(x, cache=cache, cond=cond)[0][:, -1].float()  # [B, V]
        probs = relax(logits + bias, tau, gumbel, straight_through, generator)
        steps.append(probs)
        x = model.embed_probs(probs[:, None])  # [B, 1, H]
        picks.append(probs.detach().argmax(-1))
        ended |= picks[-1] == EOS
        if t % 4 == 3 and bool(ended.all()):  # every row has ended: later steps would be cut anyway
            break
    probs = torch.stack(steps, 1)  # [B, L, V]
    hard = torch.stack(picks, 1)  # [B, L]
    is_eos = hard == EOS
    ended_before = (is_eos.cumsum(1) - is_eos.int()) > 0  # [B, L] an EOS came earlier
    tokens = hard.masked_fill(ended_before, PAD)
    lengths = (~ended_before).sum(1)
    return SoftSample(probs, tokens, lengths)


@dataclass
class GumbelSample:
    tokens: Tensor  # [B, L] argmax(logits + noise) at each step, PAD after the first EOS
    perturbed: Tensor  # [B, L, V] the draw's logits + Gumbel(0, 1) noise at each step (forbidden tokens -inf)
    lengths: Tensor  # [B] tokens up to and including the first EOS (L if none)

    def relaxed_detached(self, beta: float) -> Tensor:
        """[B, L, V] softmax(beta * (logits + noise)) of this draw, with no gradient (a discriminator step needs
        no more): no second pass through the model."""
        return (beta * self.perturbed).softmax(-1)

    def hard_one_hots(self) -> Tensor:
        """[B, L, V] float one-hot rows of the drawn tokens (PAD's row after EOS)."""
        return F.one_hot(self.tokens, self.perturbed.shape[-1]).float()


@torch.no_grad()
def gumbel_sample(model: nn.Module, batch_size: int, max_length: int, forbid: Sequence[int] = (UNK,),
                  allow_eos: bool = True) -> GumbelSample:
    """Hard samples by the Gumbel-max trick (RelGAN): token_t = argmax(logits_t + g_t), g_t ~ Gumbel(0, 1), which
    is a draw from softmax(logits_t); each token is fed back as the next input (KV cache). The perturbed logits
    logits_t + g_t are kept: softmax(beta * them) is the relaxed sample of this very draw (`relaxed_probs` gives
    it gradients)."""
    with eval_mode(model):
        device = next(model.parameters()).device
        bias = forbidden_bias(forbidden_mask(model.vocab_size, forbid, allow_eos, device))
        cache = model.new_cache(batch_size, max_length + 1)
        token = torch.full((batch_size, 1), BOS, dtype=torch.long, device=device)
        picks, perturbed, ended = [], [], torch.zeros(batch_size, dtype=torch.bool, device=device)
        for t in range(max_length):
            logits = model(token, cache=cache)[0][:, -1].float() + bias  # [B, V]
            u = torch.rand(logits.shape, device=device).clamp_(1e-10, 1.0 - 1e-7)
            perturbed.append(logits - (-u.log()).log())  # + Gumbel(0, 1) noise
            token = perturbed[-1].argmax(-1).masked_fill(ended, PAD)[:, None]  # [B, 1]
            picks.append(token[:, 0])
            ended |= token[:, 0] == EOS
            if t % 4 == 3 and bool(ended.all()):
                break
    tokens = torch.stack(picks, 1)
    lengths = torch.where(ended, (tokens == EOS).int().argmax(1) + 1, (tokens != PAD).sum(1))
    return GumbelSample(tokens, torch.stack(perturbed, 1), lengths)


def relaxed_probs(model: nn.Module, drawn: GumbelSample, beta: float) -> Tensor:
    """[B, L, V] softmax(beta * (logits + noise)) of a `gumbel_sample` draw, differentiable w.r.t. the model.
    The value is the draw's own (its perturbed logits, so the relaxed one-hot sits on the token that was fed back,
    whatever the model's dropout, autocast precision or kernels do to a second pass); the gradient comes from one
    teacher-forced pass over [BOS, tokens] in the model's current mode: value + (logits - logits.detach()), which
    adds 0 and carries d logits / d parameters. (A pass in eval mode would serve on CPU, but cuDNN's LSTM refuses
    a backward in eval mode.) Forbidden tokens are -inf in the draw: probability 0, no gradient."""
    inputs = torch.cat([torch.full_like(drawn.tokens[:, :1], BOS), drawn.tokens[:, :-1]], 1)
    logits = model(inputs)[0].float()  # [B, L, V]
    return (beta * (drawn.perturbed + (logits - logits.detach()))).softmax(-1)

