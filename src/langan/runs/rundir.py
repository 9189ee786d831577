"""The run directory `runs/<name>/` and its record (`meta.json`): what ran, with what, and how it ended.

Layout: config.yaml (fully resolved), meta.json, tokenizer.json, metrics.jsonl, TensorBoard events
(tb/), samples/step-N.txt, checkpoints/step-N/ (+ checkpoints/best/), eval.json (the latest `langan eval`) and
evals.jsonl (every one, oldest first: a later evaluation with fewer metrics never loses an earlier one's figures).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from langan.errors import LanganError
from langan.fileio import atomic_write_text
from langan.runs.lock import LOCK_NAME, RunLock, check_free, clear_directory

META_VERSIONS = ("torch", "numpy", "tokenizers", "safetensors", "pyyaml", "tensorboard")


def git_commit() -> str | None:
    """Commit of the langan source tree (with '+dirty' when it has uncommitted changes), if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.cache
def source_fingerprint(package: Path = Path(__file__).resolve().parents[1]) -> str:
    """SHA-256 (16 hex digits) of every .py file of the langan package, names and contents: what code ran, with or
    without git, and unchanged by commits that touch only docs, configs or benchmarks. Cached: read once a process."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def environment() -> dict[str, Any]:
    versions = {"python": platform.python_version()}
    for package in META_VERSIONS:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    from langan import __version__

    return {"langan_version": __version__, "git_commit": git_commit(),
            "source_sha256": source_fingerprint(), "versions": versions,
            "host": socket.gethostname(), "platform": platform.platform()}


def finite(value: Any) -> Any:
    """Replace inf/nan floats (not valid JSON) by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock: RunLock | None = None  # held by the process that writes the run (create / lock_for_writing)

    config_path = property(lambda self: self.path / "config.yaml")
    meta_path = property(lambda self: self.path / "meta.json")
    tokenizer_path = property(lambda self: self.path / "tokenizer.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    samples_dir = property(lambda self: self.path / "samples")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    tensorboard_dir = property(lambda self: self.path / "tb")
    eval_path = property(lambda self: self.path / "eval.json")
    eval_history_path = property(lambda self: self.path / "evals.jsonl")

    @property
    def name(self) -> str:
        return self.path.name

    def _occupied(self) -> bool:
        return self.path.is_dir() and any(p.name != LOCK_NAME for p in self.path.iterdir())

    def _exists_error(self) -> LanganError:
        return LanganError(f"run directory '{self.path}' already exists; continue it with "
                           f"`langan train --resume {self.path}` or start again with --overwrite")

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False, argv: list[str] | None = None) -> RunDir:
        """A new run directory, locked for writing. `overwrite` empties an existing one, but only once its lock
        is held: a live run's files are never deleted (its writer is named instead)."""
        run = cls(path)
        if run._occupied() and not overwrite:
            check_free(run.path)  # a live run: say who writes it rather than only "exists"
            raise run._exists_error()
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LanganError(f"cannot create run directory '{run.path}': {err.strerror}") from None
        run.lock_for_writing(argv)
        try:
            if run._occupied():  # checked again under the lock: another writer may have come first
                if not overwrite:
                    raise run._exists_error()
                clear_directory(run.path)
            for d in (run.samples_dir, run.checkpoints_dir):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            run.unlock()
            raise LanganError(f"cannot create run directory '{run.path}': {err.strerror}") from None
        except BaseException:
            run.unlock()
            raise
        return run

    def lock_for_writing(self, argv: list[str] | None = None) -> None:
        """Take the run's lock (`langan.runs.lock`); raises a one-line LanganError naming a live writer."""
        if self.lock is None or not self.lock.held:
            self.lock = RunLock.acquire(self.path, argv)

    def unlock(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        run = cls(path)
        if not run.path.is_dir():
            raise LanganError(f"run directory '{run.path}' does not exist; `langan runs` lists the runs")
        if not run.config_path.is_file():
            raise LanganError(f"'{run.path}' is not a langan run (no config.yaml); `langan runs` lists the runs")
        return run

    def read_meta(self) -> dict[str, Any]:
        try:
            return json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_text(self.meta_path, json.dumps(finite(meta), indent=2, default=str) + "\n")

    def update_meta(self, **changes: Any) -> dict[str, Any]:
        meta = self.read_meta() | changes
        self.write_meta(meta)
        return meta

    def status(self, meta: dict[str, Any] | None = None) -> str:
        """running / finished / stopped / crashed (a 'running' record whose process is gone crashed)."""
        meta = self.read_meta() if meta is None else meta
        status = meta.get("status", "unknown")
        if status == "running" and meta.get("host") == socket.gethostname() and not pid_alive(meta.get("pid", -1)):
            return "crashed"
        return status

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
        return rows


def start_meta(run: RunDir, cfg_dict: dict[str, Any], device: str, argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv if argv is None else argv)
    meta = {"name": run.name, "status": "running", "command": " ".join(argv), "argv": argv, "cwd": os.getcwd(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(), "seed": cfg_dict["train"]["seed"],
            "algorithm": cfg_dict["algorithm"], "data_source": cfg_dict["data"]["source"], "device": device,
            **environment(), "steps_done": 0, "resumes": []}
    run.write_meta(meta)
    return meta
