"""Rewards, returns, baselines and the policy-gradient loss: pure tensor functions (no networks, no config).

Shapes: B samples, L generated positions. `mask` [B, L] is True on positions up to and including each
sample's EOS (or all L without EOS); rewards, returns, advantages and gradients are zero elsewhere.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def transform_logits(logits: Tensor, transform: str) -> Tensor:
    """Reward from a discriminator logit (`reward.transform`)."""
    if transform == "2sigmoid-1":  # ScratchGAN: in (-1, 1), 0 when D is undecided
        return 2.0 * torch.sigmoid(logits) - 1.0
    if transform == "log_sigmoid":
        return F.logsigmoid(logits)
    if transform == "sigmoid":
        return torch.sigmoid(logits)
    if transform == "logit":
        return logits
    raise ValueError(f"unknown reward transform {transform!r}")


def prefix_differences(rewards: Tensor, mask: Tensor) -> Tensor:
    """`reward.differences`: r_t - r_{t-1} on valid positions (r_{-1} = 0); [B, L] -> [B, L]. Summed from t to
    a sample's end (gamma = 1) they telescope to r_end - r_{t-1}."""
    previous = F.pad(rewards[:, :-1], (1, 0))
    return (rewards - previous) * mask


def annealed(start: float, end: float, step: int, steps: int, schedule: str) -> float:
    """A weight going from `start` (step 0) to `end` (step steps - 1): constant (start throughout), linear or
    cosine (`reward.entropy_schedule`)."""
    if schedule == "constant" or steps <= 1:
        return start
    progress = min(max(step / (steps - 1), 0.0), 1.0)
    frac = progress if schedule == "linear" else 0.5 * (1.0 - math.cos(math.pi * progress))
    return start + (end - start) * frac


def valid_mask(lengths: Tensor, length: int) -> Tensor:
    """[B] lengths (EOS included) -> [B, L] bool, True on generated positions."""
    return torch.arange(length, device=lengths.device) < lengths[:, None]


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """G_t = sum_{k >= t} gamma^(k-t) r_k over valid positions; [B, L] -> [B, L], 0 where masked.

    One matrix product instead of a loop over positions: G = r @ M^T with M[t, k] = gamma^(k-t) for k >= t.
    """
    length = rewards.shape[1]
    steps = torch.arange(length, device=rewards.device, dtype=rewards.dtype)
    offsets = steps[None, :] - steps[:, None]  # [L, L]: k - t
    discount = torch.where(offsets >= 0, torch.full_like(offsets, gamma) ** offsets.clamp(min=0),
                           torch.zeros_like(offsets))
    return ((rewards * mask) @ discount.T) * mask


def penalize_unfinished(returns: Tensor, ended: Tensor, mask: Tensor, penalty: float) -> Tensor:
    """`reward.unfinished_penalty`: `penalty` taken from the return of every generated token of each sample that
    did not emit EOS ([B] `ended` False), i.e. a final reward of -penalty that is not discounted. Added after
    the per-position normalisation and the discount, which would otherwise cancel or shrink it: at the last
    positions the only rows are unfinished ones, so centering there removes any reward they all share."""
    if not penalty:
        return returns
    return returns - penalty * (~ended)[:, None].to(returns.dtype) * mask


def _position_mean(values: Tensor, mask: Tensor, prior: float = 0.0) -> tuple[Tensor, Tensor]:
    """Masked mean over the batch at each position: ([L] means, [L] counts). With `prior` k > 0
    (`reward.position_prior`) each position's mean is shrunk towards the mean over all valid positions m, as if k
    more samples with value m were alive there: (sum_t + k m) / (n_t + k). Where few samples are still alive (the
    positions only long samples reach) a lone sample's mean is otherwise its own value, and whatever it is
    rewarded for there is cancelled."""
    counts = mask.sum(0)
    sums = (values * mask).sum(0)
    if not prior:
        return sums / counts.clamp(min=1), counts
    overall = sums.sum() / counts.sum().clamp(min=1)
    return (sums + prior * overall) / (counts + prior), counts


def position_normalized(rewards: Tensor, mask: Tensor, kind: str, prior: float = 0.0) -> Tensor:
    """`reward.normalize_rewards`: none; center: each reward minus the batch's mean reward at its position
    (over the samples alive there; shrunk towards the mean over all positions by `prior`, `_position_mean`);
    standardize: also divided by their std there. A discriminator whose outputs are all shifted one way (its
    bias, which flips from step to step early in training) then no longer pays the generator for longer
    (bias > 0) or shorter (bias < 0) samples: only the differences between samples are rewarded."""
    if kind == "none":
        return rewards
    maskf = mask.to(rewards.dtype)
    means, counts = _position_mean(rewards, maskf, prior)
    centred = (rewards - means) * maskf
    if kind == "center":
        return centred
    std = ((centred ** 2).sum(0) / counts.clamp(min=1)).sqrt()
    return centred / (std + 1e-6)


class Baseline:
    """`reward.baseline`: none | ewma | batch_mean | leave_one_out, each a value per position.

    Per position because discounted returns differ by position (the last tokens have shorter horizons).
    The ewma state ([L] values and which positions have been seen) is saved with the algorithm.
    """

    def __init__(self, kind: str, length: int, decay: float = 0.9, prior: float = 0.0):
        self.kind, self.decay, self.prior = kind, decay, prior  # prior: batch_mean's shrinkage, _position_mean
        self.value = torch.zeros(length)
        self.seen = torch.zeros(length, dtype=torch.bool)

    def __call__(self, returns: Tensor, mask: Tensor) -> Tensor:
        """Baseline b [B, L] for `returns` [B, L]; updates the ewma state (after use, so b is independent
        of this batch)."""
        maskf = mask.to(returns.dtype)
        width = returns.shape[1]  # batches may be trimmed to their longest sample (<= length)
        if self.kind == "none":
            return torch.zeros_like(returns)
        if self.kind == "batch_mean":
            return _position_mean(returns, maskf, self.prior)[0].expand_as(returns) * maskf
        if self.kind == "leave_one_out":
            total, counts = (returns * maskf).sum(0), maskf.sum(0)
            others = (total - returns * maskf) / (counts - maskf).clamp(min=1)
            return others * maskf
        if self.kind == "ewma":
            # the state lives on the returns' device: no host round trip (sync) per step
            self.value, self.seen = self.value.to(returns.device), self.seen.to(returns.device)
            old, old_seen = self.value[:width], self.seen[:width]
            baseline = old.to(returns.dtype).expand_as(returns) * maskf
            means, counts = _position_mean(returns.detach(), maskf)
            seen, means = counts > 0, means.to(self.value.dtype)
            fresh = seen & ~old_seen  # first visit: start from the observed mean, not from 0
            self.value[:width] = torch.where(fresh, means, torch.where(seen, self.decay * old
                                                                       + (1 - self.decay) * means, old))
            self.seen[:width] |= seen
            return baseline
        raise ValueError(f"unknown baseline {self.kind!r}")

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value.cpu().clone(), "seen": self.seen.cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value, self.seen = state["value"].clone(), state["seen"].clone()


def normalize(advantages: Tensor, mask: Tensor) -> Tensor:
    """Zero mean, unit standard deviation over the valid positions of the batch."""
    maskf = mask.to(advantages.dtype)
    n = maskf.sum().clamp(min=1)
    mean = (advantages * maskf).sum() / n
    var = (((advantages - mean) * maskf) ** 2).sum() / n
    return (advantages - mean) / (var.sqrt() + 1e-8) * maskf


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    maskf = mask.to(values.dtype)
    return (values * maskf).sum() / maskf.sum().clamp(min=1)


def masked_std(values: Tensor, mask: Tensor) -> Tensor:
    """Population standard deviation over valid positions (a tensor op: no boolean indexing, no sync)."""
    mean = masked_mean(values, mask)
    return masked_mean((values - mean) ** 2, mask).sqrt()


def unique_fraction(tokens: Tensor) -> Tensor:
    """Fraction of distinct rows of [B, L] ids, without a host sync: rows are hashed by a fixed random
    projection (int64, wrapping), sorted, and boundaries between different hashes counted."""
    weights = torch.randint(1, 2**62, (tokens.shape[1],), generator=torch.Generator().manual_seed(0))
    hashes = (tokens * weights.to(tokens.device)).sum(1).sort().values
    return (1 + (hashes[1:] != hashes[:-1]).sum()) / len(tokens)


def policy_terms(logits: Tensor, tokens: Tensor, advantages: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """Policy loss and entropy from the sampling distribution's logits [B, L, V] (-inf = cannot be drawn).

    policy_loss = -mean_valid(A_t * log pi(x_t)): its gradient flows only through the log-probabilities
    of the sampled tokens (advantages are constants). entropy = mean_valid(H(pi_t)).
    """
    logp = logits.float().log_softmax(-1)  # [B, L, V]
    token_logp = logp.gather(-1, tokens.clamp(min=0)[..., None]).squeeze(-1)  # [B, L]
    # PAD after EOS has logp -inf under the policy; the clamp guards a token that fell just outside a top-p
    # nucleus when recomputed (cached vs full-pass rounding): finite loss, no gradient through it
    token_logp = token_logp.masked_fill(~mask, 0.0).clamp(min=-1e4)
    policy_loss = -masked_mean(advantages.detach() * token_logp, mask)
    finite_logp = logp.masked_fill(~torch.isfinite(logp), 0.0)  # 0 * -inf would be NaN
    entropy = -(logp.exp() * finite_logp).sum(-1)  # [B, L]
    return {"policy_loss": policy_loss, "entropy": masked_mean(entropy, mask), "token_logp": token_logp}


def kl_divergence(logits: Tensor, ref_logits: Tensor, mask: Tensor) -> Tensor:
    """mean_valid KL(softmax(logits) || softmax(ref_logits)), exact over the vocabulary, untempered."""
    logp, ref_logp = logits.float().log_softmax(-1), ref_logits.float().log_softmax(-1)
    kl = (logp.exp() * (logp - ref_logp)).sum(-1)  # [B, L]
    return masked_mean(kl, mask)
