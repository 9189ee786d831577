"""Nested dataclass configuration: YAML presets + dotted command-line overrides, validated.

Every field has a default and a one-line doc (`metadata["doc"]`); `langan config` prints them.
A wrong key or type is one `LanganError` line naming the key and the closest valid key. Each section
(`data`, `networks`, `gan`, `optim`, `training`) holds its fields and, beside them, its `check(root)`:
the conditions a type check cannot make, given the root only for conditions across sections.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from langan.config import fields
from langan.config.data import BPE_MIN_VOCAB, DataConfig, OracleConfig
from langan.config.fields import Check, apply_override, build, closest, config_changes, flatten, opt, read_yaml
from langan.config.gan import BETA_SCHEDULES, GAN_LOSSES, CtrlGenConfig, GumbelConfig, RewardConfig, SamplingConfig
from langan.config.networks import DiscConfig, GeneratorConfig
from langan.config.optim import OptimConfig, OptimSection
from langan.config.training import (
    DURING_METRIC_NAMES,
    LEARNED_METRIC_NAMES,
    ORACLE_ONLY_METRICS,
    SAMPLE_METRIC_NAMES,
    EvalConfig,
    TrainConfig,
)
from langan.fileio import atomic_write_text

__all__ = [
    "BETA_SCHEDULES",
    "BPE_MIN_VOCAB",
    "DURING_METRIC_NAMES",
    "GAN_LOSSES",
    "LEARNED_METRIC_NAMES",
    "ORACLE_ONLY_METRICS",
    "SAMPLE_METRIC_NAMES",
    "Check",
    "Config",
    "CtrlGenConfig",
    "DataConfig",
    "DiscConfig",
    "EvalConfig",
    "GeneratorConfig",
    "GumbelConfig",
    "OptimConfig",
    "OptimSection",
    "OracleConfig",
    "RewardConfig",
    "SamplingConfig",
    "TrainConfig",
    "apply_override",
    "build",
    "closest",
    "config_changes",
    "describe",
    "flatten",
    "load_config",
    "opt",
    "read_yaml",
    "save_config",
    "to_dict",
    "validate",
]


@dataclass
class Config:
    algorithm: str = opt("mle", "training algorithm: maximum likelihood, a policy-gradient GAN, the Gumbel-softmax "
                         "GAN (RelGAN) or controlled generation",
                         ("mle", "reinforce", "gumbel", "ctrlgen"))
    data: DataConfig = opt(DataConfig(), "data source, tokenizer, splits")
    generator: GeneratorConfig = opt(GeneratorConfig(), "the generator network")
    disc: DiscConfig = opt(DiscConfig(), "the discriminator (GAN algorithms)")
    reward: RewardConfig = opt(RewardConfig(), "rewards, returns and the generator loss (reinforce)")
    sampling: SamplingConfig = opt(SamplingConfig(), "sampling during adversarial training")
    gumbel: GumbelConfig = opt(GumbelConfig(), "the Gumbel-softmax GAN: loss, inverse temperature (gumbel)")
    ctrlgen: CtrlGenConfig = opt(CtrlGenConfig(), "controlled generation: VAE, codes, soft samples (ctrlgen)")
    optim: OptimSection = opt(OptimSection(), "optimisers, one per network")
    train: TrainConfig = opt(TrainConfig(), "training loop")
    eval: EvalConfig = opt(EvalConfig(), "evaluation during training")

    def __post_init__(self) -> None:
        # a pretrained generator reads text with its own tokenizer, as the oracle source forces its own
        if self.generator.arch == "hf" and self.data.source != "oracle":
            self.data.tokenizer = "hf"
            self.data.tokenizer_path = self.data.tokenizer_path or self.generator.path


def checks(cfg: Config) -> list[Check]:
    """Every section's checks, in the order of the sections."""
    return [c for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(section := getattr(cfg, f.name))
            for c in section.check(cfg)]


def validate(cfg: Config) -> None:
    """Raise the first check of any section that does not hold, as one LanganError line."""
    fields.first_failure(checks(cfg))


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def load_config(path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    raw = read_yaml(path) if path else {}
    for override in overrides:
        apply_override(raw, override)
    cfg = build(Config, raw)
    validate(cfg)
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))


def describe(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, doc) for every leaf field — what `langan config` prints."""
    return fields.describe(cls, prefix)
