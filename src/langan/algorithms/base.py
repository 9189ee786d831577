"""What every training algorithm provides to the trainer (which knows nothing about GANs)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from langan.config import Config
from langan.data.batching import Batch
from langan.data.dataset import DataBundle


class Algorithm:
    """Owns its networks and optimisers.

    `step(batch)` does one optimiser step and returns metrics (floats or 0-dim tensors, converted only
    when logged). `networks()` are saved as safetensors; `state_dict()` holds everything else it owns
    (optimisers, step counter, phase, baselines, temperature) as tensors and plain values.
    """

    name: ClassVar[str] = ""
    # whether the checkpoint with the lowest validation NLL is this algorithm's best model
    select_by_valid_nll: ClassVar[bool] = False

    def __init__(self, cfg: Config, data: DataBundle, device: torch.device, total_steps: int):
        self.cfg, self.data, self.device, self.total_steps = cfg, data, device, total_steps
        self.step_count = 0

    @property
    def generator(self) -> nn.Module:
        raise NotImplementedError

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

    def cond_for(self, batch_size: int) -> Tensor | None:
        """Conditioning vectors for unconditional sampling (None for unconditional generators)."""
        return None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cuda" and self.cfg.train.dtype == "bfloat16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def micro_batches(self, tokens: Tensor, accumulation: int) -> Iterator[Tensor]:
        """Split [B, T+1] rows into `accumulation` micro-batches (the last ones may be smaller)."""
        yield from tokens.chunk(accumulation) if accumulation > 1 else (tokens,)
