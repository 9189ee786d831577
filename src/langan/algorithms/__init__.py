"""Training algorithms, one file each; `ALGORITHMS` maps `algorithm:` config values to classes."""

from __future__ import annotations

import torch

from langan.algorithms.base import Algorithm
from langan.algorithms.ctrlgen import CtrlGen
from langan.algorithms.gumbel import Gumbel
from langan.algorithms.mle import MLE
from langan.algorithms.reinforce import Reinforce
from langan.config import Config
from langan.data.dataset import DataBundle

ALGORITHMS: dict[str, type[Algorithm]] = {MLE.name: MLE, Reinforce.name: Reinforce, Gumbel.name: Gumbel,
                                          CtrlGen.name: CtrlGen}


def build_algorithm(cfg: Config, data: DataBundle, device: torch.device, total_steps: int) -> Algorithm:
    return ALGORITHMS[cfg.algorithm](cfg, data, device, total_steps)
