"""Loading a trained run: its config, data (the same splits, checked) and an algorithm restored from one
checkpoint. Training resumes through `restore_algorithm`; `langan sample` / `eval` / sweeps use `load_run`."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from langan import dist
from langan.algorithms import ALGORITHMS, build_algorithm
from langan.algorithms.base import Algorithm
from langan.config import Config, load_config
from langan.data.dataset import DataBundle, load_data
from langan.data.tokenizers import tokenizer_from_json
from langan.errors import LanganError
from langan.runs import checkpoint, records
from langan.runs.records import group_members
from langan.runs.rundir import RunDir


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not (name == "cpu" or name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise LanganError(f"train.device='{name}' is not supported (use auto, cpu, cuda or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LanganError(f"train.device={name} but no CUDA device is available; use train.device=cpu")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise LanganError(f"train.device={name} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device(name)


# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks for reuse instead of returning each large one to the kernel.

    By default a block over 128 KiB-32 MiB (a [64, 20, 5004] logits tensor is 25 MB) is mmap'ed on allocation and
    unmapped on free, so every training step faults its activations' pages in again: on the 2-core machine an
    oracle MLE step spent more time in the kernel than in PyTorch (18 s of 31 s were `sys`), and steps ran 1.3-1.7x
    faster with blocks up to 256 MiB served from the heap and up to 1 GiB of freed memory kept. PyTorch's CPU
    tuning guides get the same from jemalloc or tcmalloc via LD_PRELOAD; this needs no extra library. Returns
    whether it applied (glibc on Linux only; elsewhere the allocator is left as it is)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    settings = ((M_MMAP_THRESHOLD, 256 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))
    return all(mallopt(key, value) == 1 for key, value in settings)


def setup_torch(cfg: Config, join_group: bool = True) -> torch.device:
    """Threads and device as `train.threads` / `train.device` say. Denormal floats are flushed to zero: a relaxed
    one-hot at a high inverse temperature (RelGAN's beta -> 100) is full of them, and CPU arithmetic on denormals
    is many times slower (a Gumbel GAN step slowed 2-3x as beta rose); values below 1e-38 change, nothing else.
    Freed memory is kept for reuse (`keep_freed_memory`: no page faults on every step's large tensors).
    Under torchrun it joins the process group (`join_group`; a library caller inside another framework's job, such
    as `DiscriminatorReward` in TRL under accelerate, does not)."""
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.set_flush_denormal(True)
    keep_freed_memory()
    device = resolve_device(cfg.train.device)
    if join_group and dist.launched() and device.type == "cuda":  # under torchrun each rank takes its own GPU
        device = resolve_device(f"cuda:{dist.local_rank()}")
    if device.type == "cuda" and cfg.train.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if join_group:
        dist.init(device)
    return device


def load_run_inputs(run: RunDir, overrides: list[str] | None = None, join_group: bool = True
                    ) -> tuple[Config, DataBundle, torch.device]:
    """The run's config (with `overrides`), its data split exactly as when it started, and the device."""
    cfg = load_config(run.config_path, overrides or [])
    device = setup_torch(cfg, join_group)
    try:
        tokenizer = tokenizer_from_json(json.loads(run.tokenizer_path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, KeyError):
        raise LanganError(f"run '{run.path}' has no readable tokenizer.json; it cannot be loaded") from None
    data = load_data(cfg.data, tokenizer=tokenizer)
    recorded = run.read_meta().get("data_fingerprint")
    if recorded not in (None, data.fingerprint()):
        raise LanganError(f"the data of run '{run.path}' ({cfg.data.source}) changed since the run started, so its "
                          "splits would differ (test examples could be training examples); use the original file")
    return cfg, data, device


def restore_algorithm(cfg: Config, data: DataBundle, device: torch.device, path: Path
                      ) -> tuple[Algorithm, dict[str, Any], dict[str, Any]]:
    """An algorithm with the weights and state of checkpoint `path`; returns it, its saved state, trainer state."""
    algorithm = build_algorithm(cfg, data, device, 1)
    state, trainer_state = checkpoint.load_checkpoint(path, algorithm.networks())
    algorithm.load_state_dict(state["algorithm"])
    compile_networks(cfg, algorithm)
    return algorithm, state, trainer_state


def compile_networks(cfg: Config, algorithm: Algorithm) -> None:
    """`train.compile`: each network's forward compiled in place (`nn.Module.compile`, so its state_dict keys and
    checkpoints stay the same), with dynamic shapes: sample lengths and cache positions vary from call to call."""
    if cfg.train.compile:
        for network in algorithm.networks().values():
            network.compile(backend=cfg.train.compile_backend, dynamic=True)


@dataclass
class LoadedRun:
    cfg: Config
    run: RunDir
    data: DataBundle
    algorithm: Algorithm
    checkpoint: Path
    trainer_state: dict[str, Any]


def load_run(run_dir: str | Path, which: str = "auto", join_group: bool = True) -> LoadedRun:
    """A run's networks from one checkpoint, for sampling and evaluation.

    'auto' is the checkpoint with the best validation NLL for algorithms that select by it (MLE), so a
    run that overfits late is judged at its best; otherwise the latest checkpoint.
    """
    run = RunDir.open(run_dir)
    cfg, data, device = load_run_inputs(run, join_group=join_group)
    if which == "auto":
        by_nll = ALGORITHMS[cfg.algorithm].select_by_valid_nll
        which = "best" if by_nll and (run.checkpoints_dir / "best").is_dir() else "latest"
    path = checkpoint.find_checkpoint(run, which)
    with torch.random.fork_rng(devices=[]):  # building networks draws initial weights: keep the caller's RNG
        algorithm, _, trainer_state = restore_algorithm(cfg, data, device, path)
    return LoadedRun(cfg, run, data, algorithm, path, trainer_state)


def init_source(path: str | Path, seed: int) -> Path:
    """train.init_from's run: the directory itself, or in a group of seed runs (`langan train --seeds`) the
    member trained with the same train.seed, so that each seed of a GAN starts from its own seed's MLE run."""
    root = Path(path)
    if (root / "config.yaml").is_file() or not root.is_dir():
        return root
    try:
        members = [m for m in group_members(root) if records.read_config(m).get("train", {}).get("seed") == seed]
    except LanganError as err:
        raise LanganError(f"train.init_from: {err}") from None
    if not members:
        raise LanganError(f"train.init_from: the group '{root}' has no run with train.seed={seed}; give a run "
                          "directory, or train that seed into the group")
    return members[0].path


def copy_generator_from(run_dir: str | Path, into: nn.Module, data: DataBundle, which: str = "auto",
                        seed: int = 0) -> Path:
    """Load the generator of another run's checkpoint `which` (auto: the one `langan eval` judges, best for MLE
    runs) into `into`; a group of seed runs gives its member of `seed`. The runs must share the tokenizer and
    the generator's shape; returns the checkpoint used."""
    run_dir = init_source(run_dir, seed)
    try:
        source = load_run(run_dir, which)
    except LanganError as err:
        raise LanganError(f"train.init_from: {err}") from None
    if source.data.tokenizer.to_json() != data.tokenizer.to_json():
        raise LanganError(f"train.init_from: run '{run_dir}' has another tokenizer (vocabulary) than this run's data")
    try:
        into.load_state_dict(source.algorithm.generator.state_dict())
    except RuntimeError:
        raise LanganError(f"train.init_from: the generator of run '{run_dir}' has another shape than this run's "
                          "generator.* settings; use the same generator config") from None
    return source.checkpoint
