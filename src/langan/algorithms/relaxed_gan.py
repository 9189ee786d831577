"""Pure math of the Gumbel-softmax GAN (RelGAN, Nie et al. 2019): the GAN losses and the schedules of the
inverse temperature beta. No state, no networks: the algorithm calls these with discriminator logits.

Losses take the discriminator's outputs on a real batch `real` [B] and a generated batch `fake` [B] and
return (discriminator loss, generator loss), both scalars averaged over the batch; softplus(-x) is
-log sigmoid(x), the numerically stable form of the cross-entropy terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LossPair = tuple[Tensor, Tensor]


def standard(real: Tensor, fake: Tensor) -> LossPair:
    """Goodfellow et al. 2014, non-saturating G: D -log s(r) - log(1 - s(f)); G -log s(f)."""
    return (F.softplus(-real) + F.softplus(fake)).mean(), F.softplus(-fake).mean()


def rsgan(real: Tensor, fake: Tensor) -> LossPair:
    """Relativistic standard GAN (Jolicoeur-Martineau 2018; RelGAN's default): pairs (r_i, f_i);
    D -log s(r - f); G -log s(f - r)."""
    return F.softplus(-(real - fake)).mean(), F.softplus(-(fake - real)).mean()


def ragan(real: Tensor, fake: Tensor) -> LossPair:
    """Relativistic average GAN: each side against the other's batch mean;
    D -log s(r - mean f) - log(1 - s(f - mean r)); G the same with the roles swapped."""
    r_rel, f_rel = real - fake.mean(), fake - real.mean()
    d = (F.softplus(-r_rel) + F.softplus(f_rel)).mean()
    g = (F.softplus(-f_rel) + F.softplus(r_rel)).mean()
    return d, g


def hinge(real: Tensor, fake: Tensor) -> LossPair:
    """Hinge GAN (Lim & Ye 2017; Miyato et al. 2018): D relu(1 - r) + relu(1 + f); G -f."""
    return (F.relu(1 - real) + F.relu(1 + fake)).mean(), (-fake).mean()


def least_squares(real: Tensor, fake: Tensor) -> LossPair:
    """Least-squares GAN (Mao et al. 2017), targets 1 / 0: D ((r - 1)^2 + f^2) / 2; G (f - 1)^2 / 2."""
    return (((real - 1) ** 2 + fake ** 2) / 2).mean(), (((fake - 1) ** 2) / 2).mean()


def wasserstein(real: Tensor, fake: Tensor) -> LossPair:
    """WGAN critic (Arjovsky et al. 2017): D f - r; G -f. WGAN-GP adds `gradient_penalty` to D's loss."""
    return (fake - real).mean(), (-fake).mean()


LOSSES: dict[str, Callable[[Tensor, Tensor], LossPair]] = {
    "standard": standard, "rsgan": rsgan, "ragan": ragan, "hinge": hinge, "lsgan": least_squares,
    "wgan-gp": wasserstein}


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """Gulrajani et al. 2017: E[(||grad critic(x_hat)||_2 - 1)^2] at x_hat on lines between real and fake inputs
    (one-hot / relaxed one-hot rows [B, T, V]); differentiable, so it trains the critic."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, generator=generator)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


# ----------------------------------------------------------------------------- inverse temperature

BETA_SCHEDULES = ("no", "lin", "exp", "log", "sigmoid", "quad", "sqrt")


def beta_at(schedule: str, step: int, steps: int, beta_max: float) -> float:
    """RelGAN's inverse temperature after `step` of `steps` adversarial steps: 1 at the start, beta_max at the
    last step, monotone between ('no' = beta_max throughout, as in RelGAN's code). Shapes as in RelGAN
    (exp: beta_max ** p; log: logarithmic in the step; sigmoid centred at the middle, rescaled so that it
    starts at 1 and ends at beta_max exactly)."""
    if schedule == "no":
        return beta_max
    p = min(max(step / max(steps - 1, 1), 0.0), 1.0)  # progress in [0, 1]
    if schedule == "exp":
        return beta_max ** p
    if schedule == "log":
        n = max(steps, 2)
        shape = math.log1p(p * (n - 1)) / math.log(n)
    elif schedule == "sigmoid":
        low, high = 1 / (1 + math.exp(10)), 1 / (1 + math.exp(-10))
        shape = (1 / (1 + math.exp(-20 * (p - 0.5))) - low) / (high - low)
    else:
        shape = {"lin": p, "quad": p * p, "sqrt": math.sqrt(p)}[schedule]
    return 1 + (beta_max - 1) * shape
