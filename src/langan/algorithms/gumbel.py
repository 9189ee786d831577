"""The Gumbel-softmax GAN (RelGAN, Nie et al. 2019): MLE pretraining, then G learns from D's gradient through
relaxed samples.

Phases by step (part of the saved state through `step_count`):
  [0, P)      MLE pretraining of G with `optim.pretrain` (P = train.pretrain_steps)
  [P, end)    adversarial steps: `gen_steps_per_disc_step` G updates, then `disc_steps_per_gen_step` D updates,
              each on fresh samples against the step's real batch.
A sample is drawn by the Gumbel-max trick (token = argmax(logits + g), fed back as the next input, as in RelGAN);
D reads its relaxed one-hots softmax(beta * (logits + g)) through its embedding (probs @ E), with beta rising from 1
to `gumbel.beta_max` over the adversarial phase or over `gumbel.beta_horizon` steps (`gumbel.beta_schedule`). Real
text enters D as its tokens, which is the same as one-hot rows. At step P the generator is copied into `pretrained`
(evaluation baseline).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from langan.algorithms.base import Algorithm
from langan.algorithms.mle import mle_update
from langan.algorithms.relaxed_gan import LOSSES, beta_at, gradient_penalty
from langan.config import Config
from langan.data.batching import Batch
from langan.data.dataset import DataBundle
from langan.generation import GumbelSample, gumbel_sample, relaxed_probs
from langan.models import build_generator
from langan.models.discriminator import build_discriminator
from langan.optim import apply_schedule, build_optimizer
from langan.tokens import PAD


class Gumbel(Algorithm):
    """Owns: networks `generator`, `discriminator`, `pretrained` (frozen copy of G at the end of pretraining);
    optimisers `pretrain_optimizer` (G's MLE phase), `gen_optimizer` (G's adversarial phase), `disc_optimizer`;
    state step_count, the non-finite guard's counters (beta follows from the step)."""

    name = "gumbel"
    select_by_valid_nll = False  # a GAN trades likelihood for sample quality: judge the latest model
    generator_label = "adversarial"

    def __init__(self, cfg: Config, data: DataBundle, device: torch.device, total_steps: int):
        super().__init__(cfg, data, device, total_steps)
        vocab, length = data.tokenizer.vocab_size, data.max_length
        self.gen = build_generator(cfg.generator, vocab, length).to(device)
        self.opt = build_optimizer(self.gen, cfg.optim.gen)
        self.pre_opt = build_optimizer(self.gen, cfg.optim.pretrain)
        self.disc = build_discriminator(cfg.disc, vocab, length).to(device)
        self.disc_opt = build_optimizer(self.disc, cfg.optim.disc)
        self.reference = copy.deepcopy(self.gen).requires_grad_(False).eval()
        self.allow_eos = data.oracle is None  # oracle sequences have a fixed length and no EOS
        self.loss = LOSSES[cfg.gumbel.loss]

    @staticmethod
    def phase_steps(cfg: Config) -> int:
        return cfg.train.pretrain_steps

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.gen, "discriminator": self.disc, "pretrained": self.reference}

    def generators_to_compare(self) -> dict[str, nn.Module]:
        return self.pretrained_to_compare(self.reference)

    def beta(self, step: int | None = None) -> float:
        """The inverse temperature at adversarial step `step` (default: the current one)."""
        g, pre = self.cfg.gumbel, self.cfg.train.pretrain_steps
        s = self.step_count if step is None else step
        return beta_at(g.beta_schedule, s - pre, g.beta_horizon or self.total_steps - pre, g.beta_max)

    # ------------------------------------------------------------------ the phases

    def step(self, batch: Batch) -> dict[str, Tensor | float]:
        s, pre = self.step_count, self.cfg.train.pretrain_steps
        if s == pre:
            self.reference.load_state_dict(self.gen.state_dict())
        if s < pre:
            metrics = mle_update(self, self.gen, self.pre_opt, self.cfg.optim.pretrain, batch, s, pre)
            metrics["train/phase"] = 0
        else:
            metrics = self.adversarial_step(batch.tokens[:, 1:].to(self.device, non_blocking=True))
        self.step_count += 1
        return metrics

    def adversarial_step(self, real: Tensor) -> dict[str, Tensor | float]:
        """real: [B, T] rows without BOS, right-padded."""
        tcfg, beta = self.cfg.train, self.beta()
        metrics: dict[str, Tensor | float] = {"train/phase": 2, "gen/beta": beta}
        for _ in range(tcfg.gen_steps_per_disc_step):
            metrics |= self.gen_update(real, beta)
        for _ in range(tcfg.disc_steps_per_gen_step):
            metrics |= self.disc_update(real, beta)
        return metrics

    def draw(self, n: int) -> GumbelSample:
        return gumbel_sample(self.gen, n, self.data.max_length, allow_eos=self.allow_eos)

    def fake_input(self, drawn: GumbelSample, relaxed: Tensor) -> Tensor:
        """What D reads of a draw in a G step: the relaxed one-hots, or (gumbel.straight_through) the hard one-hots
        in value with the relaxed ones' gradient."""
        if not self.cfg.gumbel.straight_through:
            return relaxed
        return drawn.hard_one_hots().to(relaxed.dtype) + relaxed - relaxed.detach()

    def gen_update(self, real: Tensor, beta: float) -> dict[str, Tensor | float]:
        ocfg, pre = self.cfg.optim.gen, self.cfg.train.pretrain_steps
        lr, beta1 = apply_schedule(self.opt, ocfg, self.step_count - pre, self.total_steps - pre)
        drawn = self.draw(len(real))
        self.gen.train()  # its dropout acts on the gradient's path only: the relaxed values are the draw's
        self.disc.eval()  # D is judged, not trained, here: its dropout off, its gradients dropped below
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            relaxed = relaxed_probs(self.gen, drawn, beta)  # [B, L, V], with gradients to G
            probs = self.fake_input(drawn, relaxed)
            d_fake = self.disc.forward_probs(probs, drawn.lengths)
            with torch.no_grad():  # the real side only sets the relativistic reference: no graph for it
                d_real = self.disc(real)[1]
        loss = self.loss(d_real, d_fake)[1]
        loss.backward()
        self.disc.zero_grad(set_to_none=True)
        grad_norm = self.optimizer_step(self.opt, self.gen, "generator", ocfg.max_grad_norm)
        return {"gen/loss": loss.detach(), "gen/grad_norm": grad_norm, "gen/lr": lr, "gen/beta1": beta1,
                "gen/mean_length": drawn.lengths.float().mean(),
                "gen/max_prob": relaxed.detach().amax(-1).mean()}  # how close to one-hot the relaxation is

    def disc_update(self, real: Tensor, beta: float) -> dict[str, Tensor | float]:
        ocfg, pre = self.cfg.optim.disc, self.cfg.train.pretrain_steps
        lr, beta1 = apply_schedule(self.disc_opt, ocfg, self.step_count - pre, self.total_steps - pre)
        drawn = self.draw(len(real))
        # no gradient to G here: its values only, with no pass through G
        probs = drawn.hard_one_hots() if self.cfg.gumbel.straight_through else drawn.relaxed_detached(beta)
        self.disc.train()
        self.disc_opt.zero_grad(set_to_none=True)
        with self.autocast():
            d_real, d_fake = self.disc(real)[1], self.disc.forward_probs(probs, drawn.lengths)
        loss = self.loss(d_real, d_fake)[0]
        if self.cfg.gumbel.loss == "wgan-gp":
            loss = loss + self.cfg.gumbel.gp_weight * self._penalty(real, probs, drawn.lengths)
        loss.backward()
        self.optimizer_step(self.disc_opt, self.disc, "discriminator", ocfg.max_grad_norm)
        d_real, d_fake = d_real.detach(), d_fake.detach()
        threshold = (d_real.mean() + d_fake.mean()) / 2  # loss-agnostic: relativistic and critic outputs too
        return {"disc/loss": loss.detach(), "disc/acc_real": (d_real > threshold).float().mean(),
                "disc/acc_fake": (d_fake <= threshold).float().mean(), "disc/real_mean": d_real.mean(),
                "disc/fake_mean": d_fake.mean(), "disc/lr": lr, "disc/beta1": beta1}

    def _penalty(self, real: Tensor, probs: Tensor, lengths: Tensor) -> Tensor:
        """WGAN-GP on one-hot real rows vs relaxed fake rows, both [B, L, V] (real cut or padded to L)."""
        width = probs.shape[1]
        rows = F.pad(real, (0, max(width - real.shape[1], 0)), value=PAD)[:, :width]
        one_hot = F.one_hot(rows, probs.shape[-1]).to(probs.dtype)
        real_lengths = (rows != PAD).sum(1)
        both = torch.maximum(real_lengths, lengths)  # interpolants keep the longer row's real positions
        # the penalty is differentiated twice; fused attention kernels have no second derivative, the math one has
        with sdpa_kernel(SDPBackend.MATH):
            return gradient_penalty(lambda x: self.disc.forward_probs(x, both), one_hot, probs)

    def discriminator(self) -> nn.Module:
        return self.disc

    @torch.no_grad()
    def disc_accuracy(self, real: Tensor, fake: Tensor) -> float:
        """Balanced accuracy on real vs generated rows (no BOS, right-padded), at the midpoint of the two mean
        scores (the GAN losses here are not all calibrated at 0)."""
        d_real, d_fake = self.disc_scores(real, memo=True), self.disc_scores(fake)
        threshold = (d_real.mean() + d_fake.mean()) / 2
        return float(((d_real > threshold).float().mean() + (d_fake <= threshold).float().mean()) / 2)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count, "gen_optimizer": self.opt.state_dict(),
                "pretrain_optimizer": self.pre_opt.state_dict(), "disc_optimizer": self.disc_opt.state_dict(),
                "beta": self.beta(), **self.guard_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.opt.load_state_dict(state["gen_optimizer"])
        self.pre_opt.load_state_dict(state["pretrain_optimizer"])
        self.disc_opt.load_state_dict(state["disc_optimizer"])
        self.load_guard_state(state)
