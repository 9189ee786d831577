"""`optim.*`: one AdamW optimiser and schedule per network."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langan.config.fields import Check, opt

if TYPE_CHECKING:
    from langan.config import Config

AVERAGED_ALGORITHMS = ("mle", "reinforce")  # those that keep optim.gen.ema_decay's weight average


@dataclass
class OptimConfig:
    lr: float = opt(5e-4, "peak learning rate of AdamW (makemore: 5e-4)")
    betas: list[float] = opt([0.9, 0.99], "AdamW (beta1, beta2) (makemore: 0.9, 0.99)")
    eps: float = opt(1e-8, "AdamW epsilon")
    weight_decay: float = opt(0.01, "AdamW decoupled weight decay on matrices (not on norms or biases)")
    max_grad_norm: float = opt(1.0, "clip the global gradient norm to this (0 = no clipping)")
    grad_accumulation: int = opt(1, "split each batch into this many micro-batches (same result, less memory)")
    schedule: str = opt("constant", "learning-rate schedule after warmup", ("constant", "cosine", "onecycle"))
    warmup_steps: int = opt(0, "linear warmup from 0 to lr over this many steps (constant/cosine)")
    min_lr_ratio: float = opt(0.1, "cosine/onecycle: final lr = lr * min_lr_ratio")
    pct_start: float = opt(0.3, "onecycle: fraction of steps spent raising the lr")
    cycle_beta1: list[float] = opt([0.95, 0.85], "onecycle: beta1 goes from the first to the second value "
                                   "while lr rises, and back while it falls (Smith 2018)")
    ema_decay: float = opt(0.0, "keep an exponential moving average of the weights with this decay (e.g. 0.998) "
                           "and evaluate, sample and checkpoint-select with it; the trained weights keep "
                           "training (0 = off; algorithm=mle or reinforce)")

    def check(self, root: Config, name: str) -> list[Check]:
        """The checks of `optim.<name>` (gen, pretrain or disc)."""
        return [
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
             f"optim.{name}.betas must be two values in [0, 1)"),
            (len(self.cycle_beta1) == 2 and all(0 <= b < 1 for b in self.cycle_beta1),
             f"optim.{name}.cycle_beta1 must be two values in [0, 1)"),
            (self.eps > 0 and self.weight_decay >= 0 and self.max_grad_norm >= 0 and self.warmup_steps >= 0,
             f"optim.{name}: eps must be > 0; weight_decay, max_grad_norm, warmup_steps >= 0"),
            (0 <= self.min_lr_ratio <= 1 and 0 < self.pct_start < 1,
             f"optim.{name}: min_lr_ratio must be in [0, 1] and pct_start in (0, 1)"),
            (self.grad_accumulation >= 1, f"optim.{name}.grad_accumulation must be at least 1"),
            (self.lr > 0, f"optim.{name}.lr must be positive"),
            (0 <= self.ema_decay < 1, f"optim.{name}.ema_decay must be in [0, 1)"),
            (self.ema_decay == 0 or (name == "gen" and root.algorithm in AVERAGED_ALGORITHMS),
             f"optim.{name}.ema_decay: weight averaging is implemented for optim.gen with algorithm="
             f"{' or '.join(AVERAGED_ALGORITHMS)} only; set it to 0"),
        ]


@dataclass
class OptimSection:
    gen: OptimConfig = opt(OptimConfig(), "optimiser of the generator (GANs: its adversarial phase)")
    pretrain: OptimConfig = opt(OptimConfig(lr=3e-3, weight_decay=0.1), "GAN algorithms: optimiser of the "
                                "generator's MLE pretraining (train.pretrain_steps); a fresh optim.gen follows")
    disc: OptimConfig = opt(OptimConfig(), "optimiser of the discriminator (GAN algorithms)")

    def check(self, root: Config) -> list[Check]:
        return [c for f in dataclasses.fields(self) for c in getattr(self, f.name).check(root, f.name)]
