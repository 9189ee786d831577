"""Shared fixtures: tiny configs and data files so every test runs in seconds on 2 CPU cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from langan.config import Config, load_config

REPO = Path(__file__).resolve().parents[1]
# reference data lives beside the checkout (../shared/data), never in it; LANGAN_SHARED_DATA overrides
SHARED_DATA = Path(os.environ.get("LANGAN_SHARED_DATA", REPO.parent / "shared" / "data"))

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn", "abigail",
         "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett",
         "liam", "noah", "oliver", "elijah", "william", "james", "benjamin", "lucas", "henry", "alexander",
         "mason", "michael", "ethan", "daniel", "jacob", "logan", "jackson", "levi", "sebastian", "mateo"]


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def names_file(tmp_path: Path) -> Path:
    path = tmp_path / "names.txt"
    path.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return path


def tiny_overrides(source: Path | str, **extra: object) -> list[str]:
    """Overrides that make the names preset tiny: 1-layer 16-wide transformer, a few steps."""
    base = {"data.source": str(source), "data.valid_size": 4, "data.test_size": 4, "data.max_length": 16,
            "generator.hidden_size": 16, "generator.intermediate_size": 32, "generator.num_layers": 1,
            "generator.num_heads": 2, "train.steps": 6, "train.batch_size": 8, "eval.every": 3,
            "eval.num_samples": 4, "eval.metrics": "[]", "optim.gen.warmup_steps": 0,
            "optim.gen.ema_decay": 0.0}  # the weight average is tested where a test names it
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture
def tiny_cfg(names_file: Path) -> Config:
    return load_config(REPO / "configs" / "names-mle.yaml", tiny_overrides(names_file))
