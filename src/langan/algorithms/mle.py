"""Maximum-likelihood training of the generator: the baseline every GAN must beat."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from langan.algorithms.base import Algorithm
from langan.config import Config, OptimConfig
from langan.data.batching import Batch
from langan.data.dataset import DataBundle
from langan.losses import token_nll_sum
from langan.models import build_generator
from langan.optim import apply_schedule, build_optimizer
from langan.tokens import PAD


class MLE(Algorithm):
    """Owns: networks `generator` (+ `generator_average` with optim.gen.ema_decay > 0); optimiser `gen_optimizer`;
    state step_count, average_updates, the non-finite guard's counters."""

    name = "mle"
    select_by_valid_nll = True

    def __init__(self, cfg: Config, data: DataBundle, device: torch.device, total_steps: int):
        super().__init__(cfg, data, device, total_steps)
        self.gen = build_generator(cfg.generator, data.tokenizer.vocab_size, data.max_length).to(device)
        self.opt = build_optimizer(self.gen, cfg.optim.gen)
        self.keep_average()

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.gen} | self.average_networks()

    def step(self, batch: Batch) -> dict[str, Tensor | float]:
        metrics = mle_update(self, self.gen, self.opt, self.cfg.optim.gen, batch, self.step_count, self.total_steps)
        if self.average:
            self.average.update()
        self.step_count += 1
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count, "gen_optimizer": self.opt.state_dict(), **self.average_state(),
                **self.guard_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.opt.load_state_dict(state["gen_optimizer"])
        self.load_average_state(state)
        self.load_guard_state(state)


def mle_update(algo: Algorithm, gen: nn.Module, opt: torch.optim.Optimizer, ocfg: OptimConfig, batch: Batch,
               step: int, steps: int) -> dict[str, Tensor | float]:
    """One maximum-likelihood optimiser step of `gen` (MLE, and the GANs' pretraining phase); `algo` gives the
    device, autocast, micro-batching and the non-finite guard of its optimiser steps."""
    lr, beta1 = apply_schedule(opt, ocfg, step, steps)
    tokens = batch.tokens.to(algo.device, non_blocking=True)
    n_real = (tokens[:, 1:] != PAD).sum()  # targets: every non-PAD token after BOS
    # the divisor: this batch's own count, or under length grouping the split's mean count x B (Batch.loss_norm)
    n_targets = n_real.clamp(min=1) if batch.loss_norm is None else batch.loss_norm
    gen.train()
    opt.zero_grad(set_to_none=True)
    total = torch.zeros((), device=algo.device)
    for micro in algo.micro_batches(tokens, ocfg.grad_accumulation):
        with algo.autocast():
            nll, _ = token_nll_sum(gen, micro)
        loss = nll / n_targets  # normalised by the whole batch: same gradient as one big batch
        loss.backward()
        total += loss.detach()
    grad_norm = algo.optimizer_step(opt, gen, "generator", ocfg.max_grad_norm)
    return {"gen/loss": total, "gen/grad_norm": grad_norm, "gen/lr": lr, "gen/beta1": beta1, "gen/tokens": n_real}
