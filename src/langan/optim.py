"""AdamW per network, learning-rate / momentum schedules and gradient clipping.

Schedules are pure functions of the step, so they need no state of their own: the step counter in the
checkpoint restores them exactly. `onecycle` follows Smith (2018): lr rises from lr*min_lr_ratio to lr
over `pct_start` of the run then anneals (cosine) to lr*min_lr_ratio, while beta1 moves the other way
between the two `cycle_beta1` values.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import torch
from torch import nn

from langan import dist


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms, biases or other vectors)."""
    params = {id(p): p for p in model.parameters() if p.requires_grad}.values()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    device = next(model.parameters()).device
    # fused: one kernel for every tensor's update, on CPU too (torch >= 2.4): 11 of 57 ms of a SeqGAN-CNN
    # discriminator step on 2 cores (benchmarks/README.md)
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=fused)


def _cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def schedule_at(cfg: Any, step: int, total_steps: int) -> tuple[float, float]:
    """(learning rate, beta1) at 0-based `step` of `total_steps`; a step before the phase starts (negative: a GAN's
    update called during its pretraining) reads as its first step."""
    step = max(step, 0)
    lr, beta1, low = cfg.lr, cfg.betas[0], cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "onecycle":
        peak = max(int(cfg.pct_start * total_steps), 1)
        hi_b, lo_b = cfg.cycle_beta1
        if step < peak:
            frac = 1.0 - _cosine(step / peak)  # 0 -> 1
            return low + (lr - low) * frac, hi_b + (lo_b - hi_b) * frac
        frac = _cosine((step - peak) / max(total_steps - peak, 1))  # 1 -> 0
        return low + (lr - low) * frac, hi_b + (lo_b - hi_b) * frac
    if step < cfg.warmup_steps:
        return lr * (step + 1) / cfg.warmup_steps, beta1
    if cfg.schedule == "cosine":
        progress = (step - cfg.warmup_steps) / max(total_steps - cfg.warmup_steps, 1)
        return low + (lr - low) * _cosine(progress), beta1
    return lr, beta1


def apply_schedule(optimizer: torch.optim.Optimizer, cfg: Any, step: int, total_steps: int) -> tuple[float, float]:
    lr, beta1 = schedule_at(cfg, step, total_steps)
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["betas"] = (beta1, group["betas"][1])
    return lr, beta1


def sync_gradients(model: nn.Module) -> None:
    """Average the gradients of `model` over the ranks of a torchrun job; nothing in one process.

    Called right before every optimiser step, so whatever several backward passes accumulated (micro-batches,
    `disc.grad_accumulation` batches) is reduced once, as DDP's `no_sync` would arrange, and gradients that a
    network received from another network's loss but never steps on (D inside G's step, zeroed there) are never
    communicated. One flat all-reduce per step; a parameter without a gradient on some rank counts as zero there,
    and one without a gradient on every rank keeps none.
    """
    if not dist.active():
        return
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    has = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params]
    flat = dist.all_reduce_sum_(torch.cat([*grads, has]))  # one all-reduce: gradients, then who had one
    had, offset = flat[-len(params):] > 0, 0
    for p, n, keep in zip(params, (p.numel() for p in params), had.tolist(), strict=True):
        # a parameter no rank has a gradient for stays without one (AdamW skips it, as in one process)
        p.grad = (flat[offset:offset + n] / dist.world_size()).view_as(p).to(p.dtype) if keep else None
        offset += n


def clip_gradients(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Clip to `max_norm` (0 = no clipping); returns the norm before clipping (a 0-dim tensor).

    clip_grad_norm_'s norm and scale, except that gradients within the bound are left alone: it multiplies
    every gradient by the clamped coefficient 1.0 too, a pass over all of them that was 6% of a SeqGAN
    discriminator step (4.1M parameters) on CPU. One host sync decides; the values are the same either way."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}  # a model split over devices: one group each
    for p in model.parameters():
        if p.grad is not None:
            by_device.setdefault(p.grad.device, []).append(p.grad)
    if not by_device:
        return torch.zeros(())
    first = next(iter(by_device))  # every norm comes to the first gradient's device, as in torch's
    norms = [n.to(first) for grads in by_device.values() for n in torch._foreach_norm(grads)]  # one kernel a device
    norm = torch.linalg.vector_norm(torch.stack(norms))
    if max_norm > 0:
        coef = (max_norm / (norm + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s coefficient
        if bool(coef < 1.0):
            for device, grads in by_device.items():
                torch._foreach_mul_(grads, coef.to(device))
    return norm


class WeightAverage:
    """An exponential moving average of a network's weights (Polyak averaging), kept in a copy of it.

    After each optimiser step `update()` moves every averaged tensor towards the trained one by
    (1 - decay_t), with decay_t = min(decay, (1 + t) / (10 + t)) so the first updates are not dominated by
    the random initial weights. The average is what gets evaluated and sampled: on small data it
    generalises better than the last iterate of a noisy optimiser.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).requires_grad_(False).eval()
        # the tensor pairs, listed once: the same order in the copy and in `model` (parameters and buffers
        # keep their identity through optimiser steps, load_state_dict and .to())
        self._averaged, self._trained = float_tensors(self.model), float_tensors(model)

    @torch.no_grad()
    def restart(self) -> None:
        """The average set to the trained weights (after they were loaded from elsewhere, train.init_from)."""
        for averaged, trained in zip(self._averaged, self._trained, strict=True):
            averaged.copy_(trained)

    @torch.no_grad()
    def update(self) -> None:
        """Call after each optimiser step of the trained network."""
        self.updates += 1
        weight = 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._averaged, self._trained, weight)


def float_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The floating-point parameters and buffers of `model`, in registration order."""
    return [t for t in itertools.chain(model.parameters(), model.buffers()) if t.is_floating_point()]
