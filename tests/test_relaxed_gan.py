"""The Gumbel-softmax GAN's math (algorithms/relaxed_gan.py): each GAN loss against its closed form on fixed
logits, the gradient penalty of a linear critic, and RelGAN's beta schedules."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from langan.algorithms.relaxed_gan import BETA_SCHEDULES, LOSSES, beta_at, gradient_penalty

REAL, FAKE = [2.0, -1.0, 0.5], [0.5, 1.5, -2.0]


def nls(x: float) -> float:
    """-log sigmoid(x), written out."""
    return math.log(1 + math.exp(-x))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def closed_form(name: str) -> tuple[float, float]:
    pairs = list(zip(REAL, FAKE, strict=True))
    mr, mf = mean(REAL), mean(FAKE)
    return {
        "standard": (mean([nls(r) + nls(-f) for r, f in pairs]), mean([nls(f) for f in FAKE])),
        "rsgan": (mean([nls(r - f) for r, f in pairs]), mean([nls(f - r) for r, f in pairs])),
        "ragan": (mean([nls(r - mf) + nls(-(f - mr)) for r, f in pairs]),
                  mean([nls(f - mr) + nls(-(r - mf)) for r, f in pairs])),
        "hinge": (mean([max(0, 1 - r) + max(0, 1 + f) for r, f in pairs]), mean([-f for f in FAKE])),
        "lsgan": (mean([((r - 1) ** 2 + f ** 2) / 2 for r, f in pairs]), mean([(f - 1) ** 2 / 2 for f in FAKE])),
        "wgan-gp": (mean([f - r for r, f in pairs]), mean([-f for f in FAKE])),
    }[name]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_each_gan_loss_equals_its_closed_form(name: str) -> None:
    d, g = LOSSES[name](torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64))
    want_d, want_g = closed_form(name)
    assert float(d) == pytest.approx(want_d, rel=1e-12) and float(g) == pytest.approx(want_g, rel=1e-12)


def test_discriminator_losses_fall_as_it_separates_real_from_fake() -> None:
    for name, loss in LOSSES.items():
        close = loss(torch.tensor([0.55]), torch.tensor([0.45]))[0]
        apart = loss(torch.tensor([0.9]), torch.tensor([0.1]))[0]
        assert apart < close, name


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared() -> None:
    torch.manual_seed(0)
    w = torch.randn(4, 5, dtype=torch.float64)
    real, fake = torch.rand(3, 4, 5, dtype=torch.float64), torch.rand(3, 4, 5, dtype=torch.float64)
    penalty = gradient_penalty(lambda x: (x * w).sum((1, 2)), real, fake)
    assert float(penalty) == pytest.approx((float(w.norm()) - 1) ** 2, rel=1e-12)


@pytest.mark.parametrize("schedule", BETA_SCHEDULES)
@pytest.mark.parametrize("beta_max", [100.0, 1000.0])
def test_every_beta_schedule_is_monotone_from_one_to_beta_max(schedule: str, beta_max: float) -> None:
    steps = 3000
    values = [beta_at(schedule, i, steps, beta_max) for i in range(steps)]
    assert all(b <= a for b, a in itertools.pairwise(values)), "not monotone"
    assert values[-1] == pytest.approx(beta_max)
    assert values[0] == pytest.approx(beta_max if schedule == "no" else 1.0)
    if schedule not in ("no", "lin"):
        assert values[steps // 2] != pytest.approx(1 + (beta_max - 1) / 2, rel=1e-3)  # a shape of its own


def test_exp_schedule_is_relgans_geometric_rise() -> None:
    assert beta_at("exp", 1500, 3001, 100.0) == pytest.approx(10.0)  # halfway: sqrt(beta_max)
