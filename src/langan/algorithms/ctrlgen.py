"""Controlled generation (Hu et al. 2017): a VAE whose generator reads [z, c], made controllable by an
attribute classifier through differentiable soft samples with an annealed softmax temperature.

Phases by step (part of the saved state through `step_count`):
  [0, P)     VAE pretraining of encoder + generator (reconstruction + annealed KL, word dropout) with
             `optim.pretrain`; the classifier learns from labelled real rows alongside.
  [P, end)   joint training (wake-sleep alternation), each step:
             generator + encoder: VAE loss; generator only: + lambda_c L_attr,c + lambda_z L_attr,z on soft
             samples of (z ~ N(0, I), c uniform), with the classifier and encoder held fixed;
             classifier: L_s (labelled real rows) + lambda_u (L_u on the soft samples with their codes
             + beta * their prediction entropy, the minimum-entropy regulariser).
tau and the KL weight are functions of the step, logged and saved with the state.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from langan import dist
from langan.algorithms.base import Algorithm
from langan.algorithms.codes import Codes
from langan.config import Config
from langan.data.batching import Batch, iterate_in_order
from langan.data.dataset import DataBundle, Split
from langan.generation import eval_mode, sample, soft_sample
from langan.models import build_generator
from langan.models.reader import SequenceReader
from langan.optim import apply_schedule, build_optimizer
from langan.tokens import PAD, UNK


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Hold parameters fixed (no gradient) while a loss meant for other networks passes through them."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def tau_at(cfg: Any, step: int, steps: int) -> float:
    """Temperature after `step` joint steps: tau0 -> tau_min over `steps` steps, then tau_min (never below)."""
    p = min(max(step / max(steps, 1), 0.0), 1.0)
    t0, t1 = cfg.tau0, cfg.tau_min
    if cfg.tau_schedule == "linear":
        tau = t0 + (t1 - t0) * p
    elif cfg.tau_schedule == "tanh":  # fast early decay, flat near the end
        tau = t1 + (t0 - t1) * (1.0 - math.tanh(3.0 * p) / math.tanh(3.0))
    else:
        tau = t0 * (t1 / t0) ** p
    return max(tau, t1)


def gaussian_nll(z: Tensor, stats: Tensor) -> Tensor:
    """-log N(z; mu, exp(logvar)) summed over dimensions, averaged over rows; stats = [mu, logvar] [B, 2Z]."""
    mu, logvar = stats.chunk(2, dim=-1)
    logvar = logvar.clamp(-6.0, 6.0)
    return 0.5 * (((z - mu) ** 2) * (-logvar).exp() + logvar + math.log(2 * math.pi)).sum(-1).mean()


class CtrlGen(Algorithm):
    """Owns: networks `generator` (conditioned on [z, c]), `encoder` q(z|x), `classifier` (the attribute
    discriminator); optimisers `pretrain_optimizer` (VAE phase), `gen_optimizer` (joint phase: generator and
    encoder), `disc_optimizer` (classifier); state step_count, tau, the KL weight, the phase, the non-finite
    guard's counters."""

    name = "ctrlgen"
    generator_label = "ctrlgen"

    def __init__(self, cfg: Config, data: DataBundle, device: torch.device, total_steps: int):
        super().__init__(cfg, data, device, total_steps)
        c, d, vocab, length = cfg.ctrlgen, cfg.disc, data.tokenizer.vocab_size, data.max_length
        self.codes = Codes(data, cfg.data.label_columns)
        self.gen = build_generator(cfg.generator, vocab, length, cond_size=c.latent_size + self.codes.size)
        self.encoder = SequenceReader(c.encoder_arch, vocab, length, 2 * c.latent_size, c.encoder_hidden_size,
                                      c.encoder_num_layers)
        self.classifier = SequenceReader("transformer", vocab, length, self.codes.size, d.hidden_size, d.num_layers,
                                         d.num_heads, d.intermediate_size, d.rope_theta, d.dropout)
        self.vae = nn.ModuleDict({"generator": self.gen, "encoder": self.encoder}).to(device)
        self.classifier.to(device)
        self.pre_opt = build_optimizer(self.vae, cfg.optim.pretrain)
        self.opt = build_optimizer(self.vae, cfg.optim.gen)
        self.disc_opt = build_optimizer(self.classifier, cfg.optim.disc)
        self.train_ids = self.codes.train_ids.to(device)
        self.tau, self.kl_weight = c.tau0, 0.0

    @staticmethod
    def phase_steps(cfg: Config) -> int:
        return cfg.train.pretrain_steps

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.gen, "encoder": self.encoder, "classifier": self.classifier}

    # ------------------------------------------------------------------ schedules

    def kl_weight_at(self, step: int) -> float:
        c = self.cfg.ctrlgen
        return c.kl_weight_max * min(1.0, (step + 1) / c.kl_anneal_steps) if c.kl_anneal_steps else c.kl_weight_max

    def tau_for(self, step: int) -> float:
        c, pre = self.cfg.ctrlgen, self.cfg.train.pretrain_steps
        return tau_at(c, step - pre, c.tau_anneal_steps or self.total_steps - pre) if step >= pre else c.tau0

    # ------------------------------------------------------------------ the phases

    def step(self, batch: Batch) -> dict[str, Tensor | float]:
        s, pre = self.step_count, self.cfg.train.pretrain_steps
        tokens = batch.tokens.to(self.device, non_blocking=True)  # [B, T+1] right-padded BOS x EOS PAD
        ids = self.train_ids[batch.index.to(self.device)]  # [B, A]
        self.kl_weight, self.tau = self.kl_weight_at(s), self.tau_for(s)
        metrics = self.pretrain_step(tokens, ids) if s < pre else self.joint_step(tokens, ids)
        self.step_count += 1
        return metrics | {"train/phase": 0 if s < pre else 2, "gen/kl_weight": self.kl_weight, "gen/tau": self.tau}

    def pretrain_step(self, tokens: Tensor, ids: Tensor) -> dict[str, Tensor | float]:
        ocfg, pre = self.cfg.optim.pretrain, self.cfg.train.pretrain_steps
        lr, _ = apply_schedule(self.pre_opt, ocfg, self.step_count, pre)
        self.vae.train()
        self.pre_opt.zero_grad(set_to_none=True)
        terms = self.vae_terms(tokens, ids)
        terms["loss"].backward()
        grad_norm = self.optimizer_step(self.pre_opt, self.vae, "generator", ocfg.max_grad_norm)
        vae = {f"gen/{k}": v.detach() for k, v in terms.items()} | {"enc/loss": terms["loss"].detach()}
        return vae | {"gen/grad_norm": grad_norm, "gen/lr": lr} | self.classifier_update(tokens[:, 1:], ids)

    def joint_step(self, tokens: Tensor, ids: Tensor) -> dict[str, Tensor | float]:
        c, ocfg, pre = self.cfg.ctrlgen, self.cfg.optim.gen, self.cfg.train.pretrain_steps
        lr, _ = apply_schedule(self.opt, ocfg, self.step_count - pre, self.total_steps - pre)
        self.vae.train()
        self.opt.zero_grad(set_to_none=True)
        terms = self.vae_terms(tokens, ids)
        terms["loss"].backward()  # wake: encoder and generator learn to reconstruct real text
        n = -(-c.sample_batch // dist.world_size()) if c.sample_batch else len(tokens)  # this rank's share
        z = torch.randn(n, c.latent_size, device=self.device)
        code_ids = self.codes.draw(n, self.device)  # uniform: every class gets the same control signal
        soft = soft_sample(self.gen, torch.cat([z, self.codes.vectors(code_ids)], -1), self.data.max_length,
                           self.tau, c.gumbel, c.straight_through)
        with frozen(self.classifier, self.encoder):  # the attribute losses train the generator only
            clf_logits = self.classifier(probs=soft.probs, lengths=soft.lengths)
            attr_c = self.codes.cross_entropy(clf_logits, code_ids)
            attr_z = gaussian_nll(z, self.encoder(probs=soft.probs, lengths=soft.lengths))
        (c.lambda_c * attr_c + c.lambda_z * attr_z).backward()
        grad_norm = self.optimizer_step(self.opt, self.vae, "generator", ocfg.max_grad_norm)
        gen = {f"gen/{k}": v.detach() for k, v in terms.items()} | {
            "gen/loss": (terms["loss"] + c.lambda_c * attr_c + c.lambda_z * attr_z).detach(),
            "enc/loss": terms["loss"].detach(), "gen/attr_c": attr_c.detach(), "gen/attr_z": attr_z.detach(),
            "gen/attr_acc": self.codes.accuracy(clf_logits.detach(), code_ids), "gen/grad_norm": grad_norm,
            "gen/lr": lr, "gen/mean_length": soft.lengths.float().mean()}
        return gen | self.classifier_update(tokens[:, 1:], ids, soft.probs.detach(), soft.lengths, code_ids)

    # ------------------------------------------------------------------ losses

    def vae_terms(self, tokens: Tensor, ids: Tensor, sample_z: bool = True) -> dict[str, Tensor]:
        """Loss: reconstruction + kl_weight * KL per sequence (logged: reconstruction per token, KL per sequence).
        z from q(z|x) (its mean when not sample_z); codes from the labels, or for unlabelled rows from the
        classifier's prediction."""
        rows = tokens[:, 1:]  # the encoder reads x without BOS, up to its EOS
        mu, logvar = self.encoder(rows).chunk(2, dim=-1)  # [B, Z] each
        logvar = logvar.clamp(-10.0, 10.0)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu) if sample_z else mu
        cond = torch.cat([z, self.code_vectors(rows, ids)], dim=-1)
        inputs = tokens[:, :-1]
        p = self.cfg.ctrlgen.word_dropout
        if p > 0 and self.gen.training:  # never BOS or PAD
            drop = (torch.rand(inputs.shape, device=inputs.device) < p) & (inputs != PAD)
            drop[:, 0] = False
            inputs = inputs.masked_fill(drop, UNK)
        logits = self.gen(inputs, cond=cond)[0].float()  # [B, T, V]
        targets = rows
        recon = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD, reduction="sum")
        kl_dims = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(0)  # [Z] mean KL per dimension
        # free bits (Kingma et al. 2016): a dimension's KL below free_bits costs nothing, so the encoder can
        # carry that much information before the KL term pushes back (against posterior collapse)
        kl_cost = kl_dims.clamp(min=self.cfg.ctrlgen.free_bits).sum() * len(tokens)
        n = (targets != PAD).sum().clamp(min=1)
        # per sequence, as in the paper: the attribute losses (per sample) then weigh what lambda_c/z say
        return {"loss": (recon + self.kl_weight * kl_cost) / len(tokens), "recon": recon / n, "kl": kl_dims.sum()}

    def code_vectors(self, rows: Tensor, ids: Tensor) -> Tensor:
        """[B, sum C] codes of real rows; unlabelled entries get the classifier's (detached) prediction."""
        if not self.codes.has_unlabelled:
            return self.codes.vectors(ids)
        with torch.no_grad():
            return self.codes.vectors(ids, self.codes.probabilities(self.classifier(rows)))

    def classifier_update(self, rows: Tensor, ids: Tensor, probs: Tensor | None = None,
                          lengths: Tensor | None = None, code_ids: Tensor | None = None) -> dict[str, Tensor | float]:
        """L_s on labelled real rows; with generated soft samples also lambda_u * (L_u + beta * entropy)."""
        c, ocfg = self.cfg.ctrlgen, self.cfg.optim.disc
        lr, _ = apply_schedule(self.disc_opt, ocfg, self.step_count, self.total_steps)
        self.classifier.train()
        self.disc_opt.zero_grad(set_to_none=True)
        logits = self.classifier(rows)
        loss = supervised = self.codes.cross_entropy(logits, ids)
        metrics: dict[str, Tensor | float] = {"disc/acc_real": self.codes.accuracy(logits.detach(), ids),
                                              "disc/sup_loss": supervised.detach(), "disc/lr": lr}
        if probs is not None:
            fake_logits = self.classifier(probs=probs, lengths=lengths)
            generated, entropy = self.codes.cross_entropy(fake_logits, code_ids), self.codes.entropy(fake_logits)
            loss = loss + c.lambda_u * (generated + c.beta * entropy)
            metrics |= {"disc/gen_loss": generated.detach(), "disc/entropy": entropy.detach()}
        loss.backward()
        metrics["disc/grad_norm"] = self.optimizer_step(self.disc_opt, self.classifier, "classifier",
                                                        ocfg.max_grad_norm)
        return metrics | {"disc/loss": loss.detach()}

    # ------------------------------------------------------------------ evaluation and sampling

    def cond_for(self, batch_size: int, seed: int = 0, attrs: dict[str, str] | None = None) -> Tensor:
        """[n, Z + C] conditioning for sampling: z ~ N(0, I) and codes from the training label distribution,
        or pinned by `attrs` ({'gender': 'female'}); drawn from a private generator (the global RNG is untouched)."""
        fixed = self.codes.parse(attrs or {})
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(batch_size, self.cfg.ctrlgen.latent_size, generator=g)
        ids = self.codes.draw(batch_size, torch.device("cpu"), g, uniform=False, fixed=fixed)
        return torch.cat([z, self.codes.vectors(ids)], dim=-1).to(self.device)

    @torch.no_grad()
    def posterior(self, rows: Tensor) -> Tensor:
        """Conditioning from encoded real rows (no BOS): [posterior mean z, the classifier's code guess]."""
        self.encoder.eval()
        self.classifier.eval()
        mu = self.encoder(rows.to(self.device)).chunk(2, dim=-1)[0]
        probs = self.codes.probabilities(self.classifier(rows.to(self.device)))
        ids = torch.stack([p.argmax(-1) for p in probs], 1)
        return torch.cat([mu, self.codes.vectors(ids)], dim=-1)

    @torch.no_grad()
    def interpolation_cond(self, rows: Tensor, n: int, attrs: dict[str, str] | None = None) -> Tensor:
        """[max(n, 2), Z + C]: evenly spaced points from the posterior of rows[0] to that of rows[1]; the codes are
        interpolated guesses, or pinned by `attrs`."""
        ends = self.posterior(rows)  # [2, Z + C]
        weights = torch.linspace(0, 1, max(n, 2), device=ends.device)[:, None]
        cond = (1 - weights) * ends[0] + weights * ends[1]
        if attrs:
            z = self.cfg.ctrlgen.latent_size
            cond[:, z:] = self.cond_for(len(cond), 0, attrs)[:, z:]
        return cond

    @torch.no_grad()
    def reconstruct(self, tokens: Tensor, ids: Tensor) -> Tensor:
        """Greedy decoding from the posterior mean with the rows' own codes: [N, L] token ids."""
        self.vae.eval()
        rows = tokens[:, 1:].to(self.device)
        mu = self.encoder(rows).chunk(2, dim=-1)[0]
        cond = torch.cat([mu, self.code_vectors(rows, ids.to(self.device))], dim=-1)
        return sample(self.gen, len(rows), self.data.max_length, temperature=0.0, cond=cond).tokens

    @torch.no_grad()
    def heldout_nll(self, split: Split, batch_size: int) -> float:
        """Negative ELBO per target token (an upper bound on the NLL, z at the posterior mean, full KL)."""
        with eval_mode(self.vae):
            ids, total, count = self.codes.ids(split).to(self.device), 0.0, 0
            for start, rows in zip(range(0, len(split), batch_size), iterate_in_order(split.tokens, batch_size),
                                   strict=True):
                rows = rows.to(self.device)
                terms = self.vae_terms(rows, ids[start:start + len(rows)], sample_z=False)
                n = int((rows[:, 1:] != PAD).sum())
                total, count = total + float(terms["recon"]) * n + float(terms["kl"]) * len(rows), count + n
        return total / max(count, 1)

    @torch.no_grad()
    def eval_metrics(self) -> dict[str, float]:
        """The classifier's accuracy on labelled validation rows, and on samples drawn with uniform codes
        (how well generated text carries its code, by the model's own classifier)."""
        self.classifier.eval()
        out = {}
        valid = self.data.valid
        if len(valid):
            ids = self.codes.ids(valid).to(self.device)
            logits = torch.cat([self.classifier(b.to(self.device)[:, 1:]) for b in iterate_in_order(valid.tokens, 256)])
            out["eval/clf_acc"] = float(self.codes.accuracy(logits, ids))
        g = torch.Generator().manual_seed(self.step_count)
        n = 256
        ids = self.codes.draw(n, torch.device("cpu"), g).to(self.device)
        z = torch.randn(n, self.cfg.ctrlgen.latent_size, generator=g).to(self.device)
        drawn = sample(self.gen, n, self.data.max_length, cond=torch.cat([z, self.codes.vectors(ids)], -1),
                       generator=torch.Generator(device=self.device).manual_seed(self.step_count))
        out["eval/gen_attr_acc"] = float(self.codes.accuracy(self.classifier(drawn.tokens), ids))
        self.classifier.train()
        return out

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count, "pretrain_optimizer": self.pre_opt.state_dict(),
                "gen_optimizer": self.opt.state_dict(), "disc_optimizer": self.disc_opt.state_dict(),
                "tau": self.tau, "kl_weight": self.kl_weight,
                "phase": "vae" if self.step_count < self.cfg.train.pretrain_steps else "joint", **self.guard_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.pre_opt.load_state_dict(state["pretrain_optimizer"])
        self.opt.load_state_dict(state["gen_optimizer"])
        self.disc_opt.load_state_dict(state["disc_optimizer"])
        self.tau, self.kl_weight = float(state["tau"]), float(state["kl_weight"])
        self.load_guard_state(state)
