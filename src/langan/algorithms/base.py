"""What every training algorithm provides to the trainer (which knows nothing about GANs), and everything the
command line and evaluation may ask of one, each with a default: nobody probes an algorithm with `hasattr`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from langan.algorithms.codes import Codes
from langan.config import Config
from langan.data.batching import Batch
from langan.data.dataset import DataBundle, Split
from langan.errors import LanganError
from langan.optim import WeightAverage, clip_gradients, sync_gradients


class Algorithm:
    """Owns its networks and optimisers.

    `step(batch)` does one optimiser step and returns metrics (floats or 0-dim tensors, converted only
    when logged). `networks()` are saved as safetensors; `state_dict()` holds everything else it owns
    (optimisers, step counter, phase, baselines, temperature) as tensors and plain values.
    """

    name: ClassVar[str] = ""
    # whether the checkpoint with the lowest validation NLL is this algorithm's best model
    select_by_valid_nll: ClassVar[bool] = False
    # what `langan eval` calls this algorithm's generator beside `generators_to_compare()`
    generator_label: ClassVar[str] = "trained"
    # style codes of a conditional generator (ctrlgen: one one-hot per label column); None = unconditional
    codes: Codes | None = None

    def __init__(self, cfg: Config, data: DataBundle, device: torch.device, total_steps: int):
        self.cfg, self.data, self.device, self.total_steps = cfg, data, device, total_steps
        self.step_count = 0
        self._memo_scores: tuple[tuple, Tensor] | None = None  # disc_scores(memo=True)
        self.skipped_steps = 0  # optimiser steps skipped for non-finite gradients, all networks
        self.consecutive_skips: dict[str, int] = {}  # per network, reset by a good step

    gen: nn.Module  # the generator an algorithm trains (built by each algorithm)
    average: WeightAverage | None = None  # optim.gen.ema_decay > 0: an average of gen's weights (keep_average)

    @property
    def generator(self) -> nn.Module:
        """The network evaluated and sampled: the weight average of `gen` when the algorithm keeps one."""
        return self.average.model if self.average else self.gen

    def keep_average(self) -> None:
        """Start the weight average of `gen` that optim.gen.ema_decay asks for (call once `gen` is built); the
        algorithm calls `self.average.update()` after each step that changed `gen`."""
        decay = self.cfg.optim.gen.ema_decay
        self.average = WeightAverage(self.gen, decay) if decay > 0 else None

    def average_networks(self) -> dict[str, nn.Module]:
        """`networks()`' entry for the weight average, if any: it is saved and restored with the weights."""
        return {"generator_average": self.average.model} if self.average else {}

    def average_state(self) -> dict[str, Any]:
        return {"average_updates": self.average.updates} if self.average else {}

    def load_average_state(self, state: dict[str, Any]) -> None:
        if self.average:
            self.average.updates = int(state["average_updates"])

    def unaveraged_to_compare(self) -> dict[str, nn.Module]:
        """A GAN's trained weights themselves, beside their average (the generator evaluated), for `langan eval`:
        what the averaging changed, on the same run."""
        return {"unaveraged": self.gen} if self.average else {}

    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def step(self, batch: Batch) -> dict[str, Tensor | float]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    @staticmethod
    def phase_steps(cfg: Config) -> int:
        """Steps of the phases before the main one (GANs: pretraining); train.steps counts the main phase."""
        return 0

    def generators_to_compare(self) -> dict[str, nn.Module]:
        """Other generators `langan eval` reports beside the trained one (GANs: the pretrained generator)."""
        return {}

    def pretrained_to_compare(self, reference: nn.Module) -> dict[str, nn.Module]:
        """A GAN's copy of G from the start of its adversarial phase, as "pretrained", when there was something to
        start from (MLE pretraining, train.init_from or a pretrained Hugging Face model); a from-scratch GAN's copy
        is its random start: none."""
        tcfg = self.cfg.train
        started = tcfg.pretrain_steps > 0 or tcfg.init_from or self.cfg.generator.arch == "hf"
        return {"pretrained": reference} if started else {}

    def cond_for(self, batch_size: int, seed: int = 0, attrs: dict[str, str] | None = None) -> Tensor | None:
        """Conditioning vectors for sampling (None for unconditional generators); `attrs` pins style codes."""
        if attrs:
            raise LanganError(f"this run ({self.name}) has no style codes; --attr needs a run with algorithm=ctrlgen")
        return None

    def interpolation_cond(self, rows: Tensor, n: int, attrs: dict[str, str] | None = None) -> Tensor:
        """[n, cond] conditioning on the line between the encodings of two real rows ([2, T], no BOS), for
        `langan sample --z-interpolate`; only algorithms with a latent z have one."""
        raise LanganError(f"--z-interpolate needs a run with a latent z (algorithm=ctrlgen); this run is {self.name}")

    def discriminator(self) -> nn.Module | None:
        """The network that tells real text from generated (`langan.reward.DiscriminatorReward` scores with it);
        None for algorithms without one (MLE; ctrlgen's network classifies attributes instead)."""
        return None

    def disc_accuracy(self, real: Tensor, fake: Tensor) -> float | None:
        """Balanced accuracy of the algorithm's discriminator on real vs generated rows (no BOS, right-padded),
        `disc_acc` in `langan eval`; None for algorithms without a discriminator."""
        return None

    @torch.no_grad()
    def disc_scores(self, rows: Tensor, memo: bool = False) -> Tensor:
        """The discriminator's sequence logits [N] (or [N, R]) of right-padded rows (no BOS), 512 at a time, in
        eval mode. With `memo`, the scores are kept for the next call with the same rows at the same training
        step: `langan eval` scores one test split against each generator of a GAN."""
        key = (rows.data_ptr(), tuple(rows.shape), self.step_count)
        if memo and self._memo_scores is not None and self._memo_scores[0] == key:
            return self._memo_scores[1]
        disc = self.discriminator()
        disc.eval()
        scores = torch.cat([disc(r.to(self.device))[1] for r in rows.split(512)])
        self._memo_scores = (key, scores) if memo else self._memo_scores
        return scores

    def heldout_nll(self, split: Split, batch_size: int) -> float | None:
        """NLL per token of a held-out split when the generator alone cannot score it (a conditional model:
        its own bound); None = the generator's plain token NLL."""
        return None

    def eval_metrics(self) -> dict[str, float]:
        """Algorithm-specific `eval/...` figures logged at each evaluation (e.g. a classifier's accuracy)."""
        return {}

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.cfg.train.dtype == "bfloat16" and self.device.type in ("cuda", "cpu"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def optimizer_step(self, opt: torch.optim.Optimizer, network: nn.Module, name: str, max_norm: float) -> Tensor:
        """Clip and step. A non-finite gradient norm (NaN/Inf in a loss or gradient) skips the step
        instead: gradients dropped, weights and optimiser state untouched, counted. Returns the norm."""
        sync_gradients(network)  # under torchrun: the mean over ranks, so every rank takes the same step
        norm = clip_gradients(network, max_norm)
        if bool(torch.isfinite(norm)):  # one host sync per optimiser step: the price of never applying NaN
            opt.step()
            self.consecutive_skips[name] = 0
        else:
            opt.zero_grad(set_to_none=True)
            self.skipped_steps += 1
            self.consecutive_skips[name] = self.consecutive_skips.get(name, 0) + 1
        return norm

    def local_state(self) -> dict[str, Any]:
        """What differs between the ranks of a torchrun job besides their RNG (weights and optimisers are the same
        on every rank): saved for each rank, so a resume is exact there too. Default: nothing."""
        return {}

    def load_local_state(self, state: dict[str, Any]) -> None:
        """Restore `local_state()` of this rank after `load_state_dict` (which holds rank 0's)."""

    def guard_state(self) -> dict[str, Any]:
        return {"skipped_steps": self.skipped_steps, "consecutive_skips": dict(self.consecutive_skips)}

    def load_guard_state(self, state: dict[str, Any]) -> None:
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.consecutive_skips = {k: int(v) for k, v in state.get("consecutive_skips", {}).items()}

    def micro_batches(self, tokens: Tensor, accumulation: int) -> Iterator[Tensor]:
        """Split [B, T+1] rows into `accumulation` micro-batches (the last ones may be smaller)."""
        yield from tokens.chunk(accumulation) if accumulation > 1 else (tokens,)
