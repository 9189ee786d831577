"""REINFORCE GAN: MLE pretraining, then policy-gradient training of the generator against a discriminator.

Phases by step (part of the saved state through `step_count`):
  [0, P)          MLE pretraining of G with `optim.pretrain` (P = train.pretrain_steps)
  [P, P + Dp)     discriminator-only steps (Dp = disc.pretrain_steps)
  [P + Dp, end)   adversarial steps: `gen_steps_per_disc_step` G updates, then `disc_steps_per_gen_step`
                  D updates against the step's real batch.
At step P the generator is copied into `reference` (the frozen pretrained G: KL term, evaluation baseline)
and, in rollout mode, into `rollout` (SeqGAN's slowly-following rollout policy).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from langan import dist
from langan.algorithms import policy_gradient as pg
from langan.algorithms.base import Algorithm
from langan.algorithms.mle import mle_update
from langan.config import Config
from langan.data.batching import Batch, in_length_groups, length_groups
from langan.data.dataset import DataBundle
from langan.generation import SampleOutput, filter_logits, forbidden_mask, sample
from langan.models import build_generator
from langan.models.discriminator import build_discriminator
from langan.optim import apply_schedule, build_optimizer
from langan.tokens import BOS, PAD, UNK


class Reinforce(Algorithm):
    """Owns: networks `generator`, `discriminator`, `pretrained` (frozen copy of G at the end of pretraining: KL
    term and evaluation baseline) and `rollout` (rollout mode); optimisers `pretrain_optimizer` (G's MLE
    phase), `gen_optimizer` (G's adversarial phase), `disc_optimizer`; state step_count, the reward baseline,
    discriminator batches and gradients accumulated towards its next step, the non-finite guard's counters."""

    name = "reinforce"
    select_by_valid_nll = False  # a GAN trades likelihood for sample quality: judge the latest model
    generator_label = "adversarial"

    def __init__(self, cfg: Config, data: DataBundle, device: torch.device, total_steps: int):
        super().__init__(cfg, data, device, total_steps)
        self.gen = build_generator(cfg.generator, data.tokenizer.vocab_size, data.max_length).to(device)
        self.opt = build_optimizer(self.gen, cfg.optim.gen)  # the adversarial phase's; pretraining has pre_opt
        self.pre_opt = build_optimizer(self.gen, cfg.optim.pretrain)
        self.disc = build_discriminator(cfg.disc, data.tokenizer.vocab_size, data.max_length).to(device)
        self.disc_opt = build_optimizer(self.disc, cfg.optim.disc)
        self.reference = copy.deepcopy(self.gen).requires_grad_(False).eval()
        self.rollout = copy.deepcopy(self.gen).requires_grad_(False) if cfg.reward.mode == "rollout" else None
        self.baseline = pg.Baseline(cfg.reward.baseline, data.max_length, cfg.reward.baseline_decay,
                                    cfg.reward.position_prior)
        self.disc_batches = 0  # discriminator batches accumulated since its last optimiser step
        self.allow_eos = cfg.sampling.allow_eos and data.oracle is None
        self.forbidden = forbidden_mask(data.tokenizer.vocab_size, (UNK,), self.allow_eos, device)
        self.keep_average()  # optim.gen.ema_decay: evaluated and sampled instead of gen, which keeps training

    # The fixed cost of one pass in units of one position's compute (about its parameter count in multiply-adds): a
    # pass over samples of which one ran to max_length costs that width for every row, so rows are grouped by length
    # first, but each extra pass costs its launches. Measured on 2 CPU cores: names-scratch's discriminator (3 blocks
    # of 64, 150K parameters) costs about 6.5 ms a pass + 0.02 ms a position (~330 positions a pass); the constant
    # is set higher (1e8 / 150K = 670 positions) because on a toy's networks (2 blocks of 32, 17K parameters) any
    # grouping measured slower (the toy-grammar test's 400 steps 52.6 -> 58.9 s): there every split now costs more
    # than the whole batch (5,900 positions a pass). On accelerators (not measured; launches dominate): one pass.
    group_overhead = 1.0e8  # parameter-positions a pass

    def length_groups(self, lengths: Tensor, network: nn.Module) -> list[Tensor]:
        """Row groups for passes of `network` over rows of these lengths: one group on an accelerator or for a
        network that pads every row to a fixed width anyway (the CNN discriminators)."""
        if self.device.type != "cpu" or getattr(network, "fixed_width", False):
            return length_groups(lengths, math.inf)
        parameters = sum(p.numel() for p in network.parameters())
        return length_groups(lengths, self.group_overhead / max(parameters, 1))

    @staticmethod
    def phase_steps(cfg: Config) -> int:
        return cfg.train.pretrain_steps + cfg.disc.pretrain_steps

    def networks(self) -> dict[str, nn.Module]:
        nets = {"generator": self.gen, "discriminator": self.disc, "pretrained": self.reference}
        return nets | ({"rollout": self.rollout} if self.rollout is not None else {}) | self.average_networks()

    def generators_to_compare(self) -> dict[str, nn.Module]:
        return self.pretrained_to_compare(self.reference) | self.unaveraged_to_compare()

    # ------------------------------------------------------------------ the phases

    def step(self, batch: Batch) -> dict[str, Tensor | float]:
        s, pre, disc_pre = self.step_count, self.cfg.train.pretrain_steps, self.cfg.disc.pretrain_steps
        if s == pre:
            self._finish_pretraining()
        train_gen = s >= pre + disc_pre  # after D's own warm-up steps
        if s < pre:
            metrics = mle_update(self, self.gen, self.pre_opt, self.cfg.optim.pretrain, batch, s, pre)
            metrics["train/phase"] = 0
        else:
            metrics = self.adversarial_step(batch, train_gen)
        if self.average and (s < pre or train_gen):  # the steps that changed G
            self.average.update()
        self.step_count += 1
        return metrics

    def _finish_pretraining(self) -> None:
        self.reference.load_state_dict(self.gen.state_dict())
        if self.rollout is not None:
            self.rollout.load_state_dict(self.gen.state_dict())

    def adversarial_step(self, batch: Batch, train_gen: bool) -> dict[str, Tensor | float]:
        real = batch.tokens[:, 1:].to(self.device, non_blocking=True)  # [B, T] without BOS
        tcfg, metrics = self.cfg.train, {"train/phase": 2 if train_gen else 1}
        fake = None
        for _ in range(tcfg.gen_steps_per_disc_step if train_gen else 0):
            fake = self.draw(len(real))
            metrics |= self.gen_update(fake)
        if self.cfg.disc.negatives:
            for _ in range(tcfg.disc_steps_per_gen_step):
                metrics |= self.disc_round()
            return metrics
        fakes = self.disc_fakes(len(real), fake)
        for k in range(tcfg.disc_steps_per_gen_step):
            metrics |= self.disc_update(real, fakes[min(k, len(fakes) - 1)])
        return metrics

    def disc_fakes(self, n: int, last: SampleOutput | None) -> list[Tensor]:
        """The generated batches [n, L_k] of a step's D updates: the generator's last samples first, if any, then
        fresh ones (train.disc_fresh_samples: one per later update; else the first serves them all). The fresh
        batches come from one draw of n x (their number) rows: for small networks the sampler's cost is per token
        step more than per row (one draw of 256 rows instead of two of 128: 1.08x per step on the toy grammar,
        within noise on names; benchmarks/disc_draws_speed.py)."""
        fakes = [] if last is None else [last.tokens]
        wanted = self.cfg.train.disc_steps_per_gen_step if self.cfg.train.disc_fresh_samples else 1
        if len(fakes) < wanted:
            drawn = self.draw(n * (wanted - len(fakes)))
            fakes += [tokens[:, :int(lengths.max())]  # each trimmed to its own longest sample
                      for tokens, lengths in zip(drawn.tokens.split(n), drawn.lengths.split(n), strict=True)]
        return fakes

    def draw(self, n: int, model: nn.Module | None = None, **kwargs: Any) -> SampleOutput:
        """n samples with the training sampling settings, trimmed to the longest one ([n, L'] with L' <=
        max_length), so the passes over them cost what the samples need rather than max_length."""
        s = self.cfg.sampling
        out = sample(model or self.gen, n, self.data.max_length, s.temperature, s.top_k, s.top_p,
                     allow_eos=self.allow_eos, **kwargs)
        width = int(out.lengths.max()) if n else 0
        return SampleOutput(out.tokens[:, :width], out.logprobs[:, :width], out.lengths, out.ended)

    # ------------------------------------------------------------------ generator

    def gen_update(self, fake: SampleOutput) -> dict[str, Tensor | float]:
        rcfg, ocfg = self.cfg.reward, self.cfg.optim.gen
        start = self.phase_steps(self.cfg)
        lr, beta1 = apply_schedule(self.opt, ocfg, self.step_count - start, self.total_steps - start)
        tokens = fake.tokens  # [B, L]
        mask = pg.valid_mask(fake.lengths, tokens.shape[1])
        raw = self.rewards(tokens, mask)  # [B, L], no gradient
        rewards = pg.prefix_differences(raw, mask) if rcfg.differences else raw
        rewards = pg.position_normalized(rewards, mask, rcfg.normalize_rewards, rcfg.position_prior)
        returns = rewards if rcfg.mode == "rollout" else pg.discounted_returns(rewards, mask, rcfg.gamma)
        returns = pg.penalize_unfinished(returns, fake.ended, mask, rcfg.unfinished_penalty)
        entropy_mult = pg.annealed(rcfg.entropy_mult, rcfg.entropy_mult_final, self.step_count - start,
                                   self.total_steps - start, rcfg.entropy_schedule)
        baseline = self.baseline(returns, mask)
        advantages = returns - baseline
        if rcfg.normalize_advantages:
            advantages = pg.normalize(advantages, mask)
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS), tokens[:, :-1]], 1)  # teacher-forced [B, L]
        self.gen.train()
        self.opt.zero_grad(set_to_none=True)
        totals: dict[str, Tensor] = {}
        n_valid = mask.sum().clamp(min=1)
        # the loss is a mean over valid tokens; "sum" scales it back to the token sum (SeqGAN). Under torchrun each
        # rank sums its own rows and the ranks' gradients are averaged: x world size gives the global batch's sum
        scale = n_valid * dist.world_size() if rcfg.loss_reduction == "sum" else 1.0
        lengths = mask.sum(1)
        groups = self.length_groups(lengths, self.gen)  # passes trimmed to each group's longest sample
        for group in groups:
            for rows in group.chunk(ocfg.grad_accumulation):
                # one group (accelerators): the whole width, without a device sync to find it
                width = max(int(lengths[rows].max()), 1) if len(groups) > 1 else tokens.shape[1]
                weight = mask[rows].sum() / n_valid  # micro-batch means weighted back to the batch mean
                terms = self._gen_loss(inputs[rows, :width], tokens[rows, :width], advantages[rows, :width],
                                       mask[rows, :width], entropy_mult)
                (terms["loss"] * (weight * scale)).backward()
                for k, v in terms.items():
                    totals[k] = totals.get(k, 0.0) + v.detach() * weight
        grad_norm = self.optimizer_step(self.opt, self.gen, "generator", ocfg.max_grad_norm)
        if self.rollout is not None:
            self._follow(self.rollout, self.gen, rcfg.rollout_decay)
        lengths = fake.lengths.float()
        return {f"gen/{k}": v for k, v in totals.items()} | {
            "gen/grad_norm": grad_norm, "gen/lr": lr, "gen/beta1": beta1, "gen/entropy_mult": entropy_mult,
            "gen/mean_length": lengths.mean(), "gen/eos_rate": fake.ended.float().mean(),
            "gen/unique_frac": pg.unique_fraction(tokens),
            "reward/mean": pg.masked_mean(raw, mask), "reward/std": pg.masked_std(raw, mask),
            "reward/return_mean": pg.masked_mean(returns, mask), "reward/baseline": pg.masked_mean(baseline, mask),
            "reward/adv_std": pg.masked_std(advantages, mask)}

    def _gen_loss(self, inputs: Tensor, tokens: Tensor, advantages: Tensor, mask: Tensor,
                  entropy_mult: float) -> dict[str, Tensor]:
        rcfg, s = self.cfg.reward, self.cfg.sampling
        with self.autocast():
            logits = self.gen(inputs)[0]  # [b, L, V]
        # the distribution actually sampled from: same temperature, top-k/top-p and forbidden tokens
        policy = filter_logits(logits, s.temperature, s.top_k, s.top_p, self.forbidden)
        terms = pg.policy_terms(policy, tokens, advantages, mask)
        kl = logits.new_zeros(())
        if rcfg.kl_mult:  # the reference's forward pass only when its KL counts (from scratch: kl_mult = 0)
            with torch.no_grad(), self.autocast():
                ref_logits = self.reference(inputs)[0]
            kl = pg.kl_divergence(logits, ref_logits, mask)
        loss = terms["policy_loss"] - entropy_mult * terms["entropy"] + rcfg.kl_mult * kl
        return {"loss": loss, "policy_loss": terms["policy_loss"], "entropy": terms["entropy"], "kl": kl}

    @staticmethod
    @torch.no_grad()
    def _follow(target: nn.Module, source: nn.Module, decay: float) -> None:
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.lerp_(s, 1.0 - decay)

    # ------------------------------------------------------------------ rewards

    @torch.no_grad()
    def rewards(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """[B, L] rewards of sampled tokens (0 after EOS) from the discriminator, per `reward.mode`."""
        rcfg = self.cfg.reward
        self.disc.eval()
        if rcfg.mode == "rollout":
            return self.rollout_rewards(tokens, mask)
        with self.autocast():
            per_step, seq = self.disc_outputs(tokens)
        if rcfg.mode == "per_step":
            return pg.transform_logits(per_step, rcfg.transform) * mask
        score = pg.transform_logits(seq, rcfg.transform)  # [B]
        if rcfg.mode == "broadcast":
            return score[:, None] * mask
        last = mask.sum(1) - 1  # final: the whole reward on the last generated token
        return torch.zeros_like(mask, dtype=score.dtype).scatter(1, last[:, None], score[:, None])

    @torch.no_grad()
    def rollout_rewards(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """SeqGAN: Q(prefix x<=t) = mean over K completions (by the rollout policy) of the transformed
        sequence score; the last token's Q is the score of the sample itself. For each prefix length t, every
        sample longer than t is read once up to t and completed K times in one batched decode (completion k of
        sample n is row n * K + k, so each mean is over that sample's own completions)."""
        rcfg, k = self.cfg.reward, self.cfg.reward.rollout_num
        b, length = tokens.shape
        lengths = mask.sum(1)
        q = torch.zeros(b, length, device=tokens.device)
        for t in range(1, length):
            rows = (lengths > t).nonzero().squeeze(1)  # samples with a token after the prefix
            if len(rows) == 0:
                break
            scores = []
            for part in rows.split(max(1, rcfg.rollout_chunk // k)):
                done = self.draw(len(part) * k, self.rollout, prefix=tokens[part, :t], repeats=k)
                with self.autocast():
                    scores.append(pg.transform_logits(self._rollout_logits(done.tokens, t, k), rcfg.transform))
            q[rows, t - 1] = torch.cat(scores).view(len(rows), k).mean(1)
        with self.autocast():
            final = pg.transform_logits(self.disc(tokens)[1], rcfg.transform)
        q[torch.arange(b, device=tokens.device), lengths - 1] = final
        return q * mask

    def _rollout_logits(self, tokens: Tensor, prefix_length: int, repeats: int) -> Tensor:
        """D's sequence logits [N] of completions in groups of `repeats` sharing their first prefix_length tokens;
        a discriminator with a `forward_rollouts` (the CNNs) reads each group's prefix once."""
        shared = getattr(self.disc, "forward_rollouts", None)
        return shared(tokens, prefix_length, repeats) if shared else self.disc(tokens)[1]

    # ------------------------------------------------------------------ discriminator

    def disc_update(self, real: Tensor, fake: Tensor) -> dict[str, Tensor | float]:
        dcfg, ocfg = self.cfg.disc, self.cfg.optim.disc
        start = self.cfg.train.pretrain_steps
        lr, beta1 = apply_schedule(self.disc_opt, ocfg, self.step_count - start, self.total_steps - start)
        width = max(real.shape[1], fake.shape[1])
        tokens = torch.cat([F.pad(real, (0, width - real.shape[1]), value=PAD),
                            F.pad(fake, (0, width - fake.shape[1]), value=PAD)])  # [2B, T]
        is_real = torch.arange(len(tokens), device=self.device) < len(real)
        target = torch.where(is_real, dcfg.target_real, 0.0)  # [2B]
        self.disc.train(not dcfg.frozen)
        with torch.set_grad_enabled(not dcfg.frozen), self.autocast():
            per_step, seq = self.disc_outputs(tokens)
        if dcfg.output == "per_step":
            loss = self._disc_loss(per_step, target[:, None].expand_as(per_step), tokens != PAD)
        else:
            loss = self._disc_loss(seq, target, torch.ones_like(target, dtype=torch.bool))
        if not dcfg.frozen:
            (loss / dcfg.grad_accumulation).backward()
            self.disc_batches += 1
            if self.disc_batches % dcfg.grad_accumulation == 0:
                self.optimizer_step(self.disc_opt, self.disc, "discriminator", ocfg.max_grad_norm)
                self.disc_opt.zero_grad(set_to_none=True)
        seq, threshold = seq.detach(), self._threshold()
        judged = torch.sigmoid(seq) if dcfg.loss == "bce" else seq
        return {"disc/loss": loss.detach(), "disc/acc_real": (seq[is_real] > threshold).float().mean(),
                "disc/acc_fake": (seq[~is_real] <= threshold).float().mean(),
                "disc/real_mean": judged[is_real].mean(), "disc/fake_mean": judged[~is_real].mean(),
                "disc/lr": lr, "disc/beta1": beta1}

    def disc_outputs(self, tokens: Tensor) -> tuple[Tensor | None, Tensor]:
        """self.disc(tokens) (per-step logits [B, T] or None, sequence logits [B]), computed over groups of rows
        of similar length, each pass trimmed to its group's longest row."""
        return in_length_groups(self.disc, tokens, self.length_groups((tokens != PAD).sum(1), self.disc))

    def disc_round(self) -> dict[str, Tensor | float]:
        """SeqGAN's discriminator schedule: disc.negatives fresh samples against as many random training rows,
        disc.epochs epochs over both, each batch half real and half fake; whole batches only, as SeqGAN's and
        TextGAN-PyTorch's loaders (the rows left over change each epoch). Returns the last batch's figures."""
        world = dist.world_size()  # under torchrun each rank draws and trains on its share of both
        n, half = -(-self.cfg.disc.negatives // world), max(1, self.cfg.train.batch_size // 2 // world)
        fakes = [self.draw(len(c)).tokens for c in torch.arange(n).split(self.cfg.reward.rollout_chunk)]
        fake = torch.cat([F.pad(f, (0, self.data.max_length - f.shape[1]), value=PAD) for f in fakes])  # [n, L]
        train = self.data.train.tokens
        pick = torch.randperm(len(train))[:n] if n <= len(train) else torch.randint(len(train), (n,))
        real = train[pick, 1:].to(self.device)  # [n, L] without BOS
        metrics: dict[str, Tensor | float] = {}
        kept = max(n - n % half, min(n, half))  # whole batches (one, if fewer rows than a batch)
        for _ in range(self.cfg.disc.epochs):
            real_order, fake_order = torch.randperm(n)[:kept].split(half), torch.randperm(n)[:kept].split(half)
            for r, f in zip(real_order, fake_order, strict=True):
                metrics = self.disc_update(real[r.to(self.device)], fake[f.to(self.device)])
        return metrics

    def _threshold(self) -> float:
        """Sequence outputs above this count as "real": logit 0 for BCE, half the real target for MSE."""
        return 0.0 if self.cfg.disc.loss == "bce" else self.cfg.disc.target_real / 2

    def _disc_loss(self, outputs: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        if self.cfg.disc.loss == "bce":
            losses = F.binary_cross_entropy_with_logits(outputs, target, reduction="none")
        else:  # least-squares GAN (Mao et al. 2017) on the raw outputs
            losses = (outputs - target) ** 2
        return pg.masked_mean(losses, mask)

    def discriminator(self) -> nn.Module:
        return self.disc

    @torch.no_grad()
    def disc_accuracy(self, real: Tensor, fake: Tensor) -> float:
        """Balanced accuracy of the discriminator on real vs generated rows (no BOS, right-padded)."""
        threshold = self._threshold()
        hits = (self.disc_scores(real, memo=True) > threshold).float().mean()
        misses = (self.disc_scores(fake) <= threshold).float().mean()
        return float((hits + misses) / 2)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        pending = self._pending_disc_grads()
        return {"step_count": self.step_count, "gen_optimizer": self.opt.state_dict(), **self.guard_state(),
            "pretrain_optimizer": self.pre_opt.state_dict(), "disc_optimizer": self.disc_opt.state_dict(),
            "baseline": self.baseline.state_dict(), "disc_batches": self.disc_batches, "disc_grads": pending,
            **self.average_state()}

    def local_state(self) -> dict[str, Any]:
        """Each rank's baseline follows its own samples' returns, and accumulates its own D gradients."""
        grads = [None if g is None else g.detach().cpu() for g in self._pending_disc_grads()]  # CPU: to rank 0
        return {"baseline": self.baseline.state_dict(), "disc_grads": grads}

    def load_local_state(self, state: dict[str, Any]) -> None:
        self.baseline.load_state_dict(state["baseline"])
        self._set_disc_grads(state["disc_grads"])

    def _pending_disc_grads(self) -> list[Tensor | None]:
        """Gradients accumulated towards the next D step: state too, without them a resume would differ."""
        if self.disc_batches % self.cfg.disc.grad_accumulation:
            return [p.grad for p in self.disc.parameters()]
        return []

    def _set_disc_grads(self, grads: list[Tensor | None]) -> None:
        for p, g in zip(self.disc.parameters(), grads, strict=False):
            p.grad = None if g is None else g.to(p.device)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.opt.load_state_dict(state["gen_optimizer"])
        self.load_guard_state(state)
        self.pre_opt.load_state_dict(state["pretrain_optimizer"])
        self.disc_opt.load_state_dict(state["disc_optimizer"])
        self.baseline.load_state_dict(state["baseline"])
        self.disc_batches = int(state["disc_batches"])
        self._set_disc_grads(state["disc_grads"])
        self.load_average_state(state)
