"""Checkpoints that restore everything and cannot run code.

`checkpoints/step-N/` holds `<network>.safetensors` (weights), `state.pt` (optimisers, counters, every
RNG state: tensors and plain values, read with `torch.load(weights_only=True)`), `trainer.json` and a
`manifest.json` of SHA-256 checksums. It is written in a temporary folder, flushed and renamed, so a
crash never leaves a half-written `step-N`; a corrupt one is detected by its manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from langan.errors import LanganError
from langan.fileio import atomic_write_text
from langan.runs.rundir import RunDir

# copies of a checkpoint tried while a live writer may be swapping it, a random 20-100 ms apart (random: a reader
# never falls into step with a writer that swaps at a steady pace); 5 fixed 0.1 s retries failed once under load
LOAD_ATTEMPTS = 20
STEP_DIR = re.compile(r"^step-(\d+)$")


def capture_rng() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_files(folder: Path, networks: dict[str, torch.nn.Module], state: dict[str, Any],
                 trainer_state: dict[str, Any]) -> None:
    for name, module in networks.items():
        safetensors.torch.save_model(module, str(folder / f"{name}.safetensors"))
    torch.save(state, folder / "state.pt")
    (folder / "trainer.json").write_text(json.dumps(trainer_state, indent=2), encoding="utf-8")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for p in files:
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    manifest = {"files": {p.name: _sha256(p) for p in files}}
    atomic_write_text(folder / "manifest.json", json.dumps(manifest, indent=2))


def save_checkpoint(run: RunDir, name: str, networks: dict[str, torch.nn.Module], algorithm_state: dict[str, Any],
                    trainer_state: dict[str, Any], ranks: list[dict[str, Any]] | None = None) -> Path:
    """Write checkpoints/<name>/ atomically (replacing an older one of that name). `ranks`: under torchrun, each
    rank's {"rng", "local"} state in rank order (state.pt then records the world size)."""
    root = run.checkpoints_dir
    final, tmp = root / name, root / f".tmp-{name}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-*"):  # left by a process killed mid-save (one writer per run at a time)
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        state = {"algorithm": algorithm_state, "rng": capture_rng()}
        if ranks is not None:
            state |= {"world_size": len(ranks), "ranks": ranks}
        _write_files(tmp, networks, state, trainer_state)
        if final.exists():  # swap; a crash between the two renames leaves .old-<name> for find_checkpoint
            old = root / f".old-{name}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise LanganError(f"cannot write checkpoint '{final}': {err.strerror or err}; "
                          "the previous checkpoint is intact") from None
    return final


def step_checkpoints(run: RunDir) -> list[Path]:
    """checkpoints/step-N folders, oldest first."""
    if not run.checkpoints_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run.checkpoints_dir.iterdir() if (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def prune(run: RunDir, keep: int) -> None:
    for path in step_checkpoints(run)[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)


def verify(path: Path) -> str | None:
    """None if the checkpoint is whole, else what is wrong with it."""
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return "missing or unreadable manifest.json"
    for name, digest in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if _sha256(file) != digest:
            return f"{name} does not match its checksum (truncated or corrupted)"
    return None


def _load_state(path: Path, shown: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise LanganError(f"refusing to load '{shown}': it contains pickled objects that could run code "
                          f"({str(err).splitlines()[0][:120]})") from None


def load_checkpoint(path: Path, networks: dict[str, torch.nn.Module]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load weights into `networks`; return (algorithm state, trainer state). RNG is restored by the caller.

    A live run may swap this checkpoint for a newer one while it is read (`best`, at every evaluation). So the
    folder is copied first and the copy checked against its own manifest: a copy made across a swap mixes two
    checkpoints, fails its checksums and is taken again, and what is loaded is one whole checkpoint."""
    with tempfile.TemporaryDirectory(prefix="langan-load-") as scratch:
        copy, problem = Path(scratch) / "checkpoint", None
        for _ in range(LOAD_ATTEMPTS):
            shutil.rmtree(copy, ignore_errors=True)
            try:
                shutil.copytree(path, copy)
                problem = verify(copy)
            except OSError as err:  # the folder was renamed away mid-copy
                problem = f"it changed while being read ({err.strerror})"
            if problem is None:
                break
            time.sleep(random.uniform(0.02, 0.1))  # a writer may be between the two renames of its swap
        if problem:
            raise LanganError(f"checkpoint '{path}' is damaged: {problem}")
        return _load_whole(copy, path, networks)


def _load_whole(copy: Path, path: Path, networks: dict[str, torch.nn.Module]
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    for name, module in networks.items():
        missing, unexpected = safetensors.torch.load_model(module, str(copy / f"{name}.safetensors"), strict=False)
        if missing or unexpected:
            raise LanganError(f"checkpoint '{path}' does not fit the '{name}' network "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]}); was the config changed?")
    state = _load_state(copy / "state.pt", path / "state.pt")
    trainer_state = json.loads((copy / "trainer.json").read_text(encoding="utf-8"))
    return state, trainer_state


def find_checkpoint(run: RunDir, which: str = "latest") -> Path:
    """'latest' (newest whole step-N), 'best', or 'step-N'. Damaged latest ones are skipped with a note."""
    if which == "latest":
        for path in reversed(step_checkpoints(run)):
            problem = verify(path)
            if problem is None:
                return path
            print(f"note: skipping damaged checkpoint {path.name}: {problem}", file=sys.stderr)
        raise LanganError(f"run '{run.path}' has no usable checkpoint yet (checkpoints/step-N)")
    path = run.checkpoints_dir / which
    if not path.is_dir() and (run.checkpoints_dir / f".old-{which}").is_dir():
        path = run.checkpoints_dir / f".old-{which}"  # a save that crashed mid-swap
    if not path.is_dir():
        have = ", ".join(p.name for p in step_checkpoints(run)) or "none"
        raise LanganError(f"run '{run.path}' has no checkpoint '{which}' (have: {have}; or 'latest', 'best')")
    return path
