"""Starting, resuming and loading runs: everything between the command line and the Trainer."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from langan import dist
from langan.algorithms import ALGORITHMS, build_algorithm
from langan.algorithms.base import Algorithm
from langan.config import Config, config_changes, flatten, save_config, to_dict, validate
from langan.data.dataset import DataBundle, load_data
from langan.errors import LanganError
from langan.models import count_parameters
from langan.runs import checkpoint, records
from langan.runs.loading import (
    compile_networks,
    copy_generator_from,
    load_run_inputs,
    restore_algorithm,
    setup_torch,
)
from langan.runs.lock import check_free
from langan.runs.rundir import RunDir, start_meta
from langan.train.trainer import Trainer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


T = TypeVar("T")


def seed_rank(seed: int) -> None:
    """After the networks are built (the same initial weights on every rank): each rank > 0 its own random
    stream, so the ranks draw different samples, rollouts and dropout masks; rank 0 keeps the seed's."""
    if dist.rank() > 0:
        seed_everything(dist.rank_seed(seed))


def check_world(cfg: Config, data: DataBundle) -> None:
    """Under torchrun each rank needs at least one row of every global batch (the batch is capped by the split)."""
    batch = min(cfg.train.batch_size, len(data.train))
    if batch < dist.world_size():
        raise LanganError(f"train.batch_size={batch} (global, at most the {len(data.train)} training rows) leaves some "
                          f"of the {dist.world_size()} processes without a row; raise it to at least the number of "
                          "processes")


def _rank0_first(make: Callable[[], T], share: Callable[[T], Any]) -> tuple[T | None, Any]:
    """`make()` on rank 0 (it writes the run directory) while the other ranks wait for its outcome: (its result,
    `share(result)`) there, (None, rank 0's `share(result)`) elsewhere, from one broadcast. When rank 0 fails, the
    others fail with its error line, so no rank is left waiting in a collective. In one process: `make()`."""
    if not dist.is_main():
        message, shared = dist.broadcast(None)
        if message is not None:
            raise LanganError(message)
        return None, shared
    try:
        out = make()
    except LanganError as err:
        dist.broadcast((str(err), None))
        raise
    except BaseException:
        dist.broadcast(("rank 0 failed while setting up the run; its output says why", None))
        raise
    shared = share(out)
    dist.broadcast((None, shared))
    return out, shared


def total_steps(cfg: Config, n_train: int) -> int:
    """Steps of the whole run: the algorithm's earlier phases (GAN pretraining) plus train.steps/epochs."""
    main = cfg.train.steps
    if cfg.train.epochs > 0:
        per_epoch = max(n_train // min(cfg.train.batch_size, n_train), 1)
        main = max(math.ceil(cfg.train.epochs * per_epoch), 1)
    return ALGORITHMS[cfg.algorithm].phase_steps(cfg) + main


@dataclass
class Session:
    cfg: Config
    run: RunDir
    data: DataBundle
    algorithm: Algorithm
    trainer: Trainer
    changes: dict[str, Any] | None = None  # config changes against an earlier run (new runs only)

    def describe(self) -> list[str]:
        d = self.data
        lines = [f"run: {self.run.path}",
                 f"data: {self.cfg.data.source}: {len(d.train)} train / {len(d.valid)} valid / {len(d.test)} "
                 f"test examples, {self.cfg.data.tokenizer if d.oracle is None else 'oracle'} vocabulary "
                 f"{d.tokenizer.vocab_size}, max_length {d.max_length}",
                 f"model: {self.cfg.algorithm}, {self.cfg.generator.arch} generator with "
                 f"{count_parameters(self.algorithm.generator):,} parameters on {self.algorithm.device}"]
        return lines + [f"note: {n}" for n in d.notes]

    def change_lines(self) -> list[str]:
        """`key: old → new` for each config value changed against the earlier run (empty if none was found)."""
        if self.changes is None:
            return []
        changed = self.changes["changed"]
        head = f"changes against run '{self.changes['against']}': " + (f"{len(changed)} key(s)" if changed else "none")
        return [head] + [f"  {key}: {old!r} → {new!r}" for key, old, new in changed]

    def train(self, stop_after: int | None = None) -> str:
        """Fit, record how it ended in meta.json (finished / stopped / crashed), then release the run's lock:
        the last write happens under it. Returns the Trainer's status."""
        main = dist.is_main()  # rank 0 alone writes the run directory
        try:
            try:
                status = self.trainer.fit(stop_after=stop_after)
            except BaseException as err:
                if main:
                    self.run.update_meta(status="crashed", error=f"{type(err).__name__}: {err}",
                                         finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), steps_done=self.trainer.step)
                raise
            if main:
                self.run.update_meta(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                     steps_done=self.trainer.step)
            return status
        finally:
            self.close()

    def close(self) -> None:
        """Release the run's lock (the session no longer writes the run). Safe to call twice."""
        self.run.unlock()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _unlocked_on_error(run: RunDir) -> Iterator[None]:
    """A session that fails while being set up releases the lock it took."""
    try:
        yield
    except BaseException:
        run.unlock()
        raise


def new_session(cfg: Config, run_dir: str | Path, overwrite: bool = False, argv: list[str] | None = None,
                quiet: bool = False, preset: str | None = None, compare_to: str | None = None) -> Session:
    """A fresh run. Its config is compared with `compare_to` or, by default, the newest earlier run of the
    same preset in the same runs directory; the changed keys go to meta.json and `Session.describe()`.
    The run's lock is held from here until `Session.train()` ends (or `Session.close()`)."""
    validate(cfg)  # again: a Config edited after load_config (the library's callers, tests) is checked too
    if dist.launch_rank() == 0:  # (rank 0 may already hold the run's lock when another rank gets here)
        check_free(run_dir)  # a live run there: say so now, not after loading data
    device = setup_torch(cfg)
    seed_everything(cfg.train.seed)
    data = load_data(cfg.data)
    check_world(cfg, data)
    steps = total_steps(cfg, len(data.train))
    algorithm = build_algorithm(cfg, data, device, steps)  # before the run directory: a failure leaves none
    init = copy_generator_from(cfg.train.init_from, algorithm.gen, data, cfg.train.init_checkpoint, cfg.train.seed) \
        if cfg.train.init_from else None
    if init is not None and algorithm.average is not None:
        algorithm.average.restart()  # averaged from the loaded weights, not from the random ones they replaced
    compile_networks(cfg, algorithm)
    seed_rank(cfg.train.seed)

    def create() -> tuple[RunDir, dict[str, Any] | None]:
        against = RunDir.open(compare_to) if compare_to else records.previous_run(Path(run_dir).parent, preset)
        previous = (against.name, records.read_config(against)) if against is not None else None  # before overwrite
        run = RunDir.create(run_dir, overwrite, argv)  # locked; only then is an --overwrite emptied
        with _unlocked_on_error(run):
            save_config(cfg, run.config_path)
            run.tokenizer_path.write_text(json.dumps(data.tokenizer.to_json()), encoding="utf-8")
            start_meta(run, to_dict(cfg), str(device), argv)
            run.update_meta(data_fingerprint=data.fingerprint(), data_notes=data.notes, total_steps=steps,
                            num_parameters=count_parameters(algorithm.generator), world_size=dist.world_size())
            if init is not None:
                run.update_meta(init_from=str(init.resolve()))
            changes = None
            if previous is not None:
                changes = {"against": previous[0],
                           "changed": [list(c) for c in config_changes(previous[1], to_dict(cfg))]}
            run.update_meta(preset=preset, changes=changes)
        return run, changes

    created, path = _rank0_first(create, lambda made: str(made[0].path))
    run, changes = created or (RunDir(path), None)  # the other ranks: rank 0's run directory, never written
    with _unlocked_on_error(run):
        trainer = Trainer(cfg, run, data, algorithm, steps, quiet=quiet)
    return Session(cfg, run, data, algorithm, trainer, changes)


def _check_same_setup(run: RunDir, cfg: Config, trainer_state: dict[str, Any], ignore: set[str]) -> None:
    """Refuse to resume when the run's config.yaml or the langan version differ from the checkpoint's."""
    from langan import __version__

    problems = []
    saved_version = trainer_state.get("langan_version", __version__)
    if saved_version != __version__:
        problems.append(f"langan version: {saved_version} -> {__version__}")
    saved = trainer_state.get("config")
    if saved is not None:
        # a key the checkpoint lacks was added to langan after it was written; at its default it changes nothing
        defaults = flatten(to_dict(Config()))
        problems += [f"{key}: {old!r} -> {new!r}" for key, old, new in config_changes(saved, to_dict(cfg), ignore)
                     if not (key not in saved and new == defaults.get(key))]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise LanganError(f"run '{run.path}' differs from its checkpoint ({shown}); resuming would not continue the "
                          "same experiment. Restore config.yaml, or add --force to resume anyway")


def resume_session(run_dir: str | Path, steps: int | None = None, argv: list[str] | None = None,
                   quiet: bool = False, force: bool = False) -> Session:
    """Rebuild a run from its own files and restore its latest whole checkpoint, RNG included. The run's lock
    is held from here until `Session.train()` ends (or `Session.close()`)."""
    run = RunDir.open(run_dir)
    if dist.launch_rank() == 0:  # the other ranks of a torchrun job only read the run (the group is not joined yet)
        run.lock_for_writing(argv)  # a live writer is named here; a lock left by a killed one is taken over
    with _unlocked_on_error(run):
        return _resume_locked(run, steps, argv, force, quiet)


def _resume_locked(run: RunDir, steps: int | None, argv: list[str] | None, force: bool, quiet: bool) -> Session:
    overrides = [f"train.steps={steps}", "train.epochs=0"] if steps else []
    cfg, data, device = load_run_inputs(run, overrides)
    check_world(cfg, data)
    meta = run.read_meta()
    if meta.get("host") not in (None, socket.gethostname()) and run.status(meta) == "running":
        # the lock is seen only by processes sharing its file system's locks; another host's may be invisible
        raise LanganError(f"run '{run.path}' is recorded as running on {meta['host']} (pid {meta.get('pid')}); "
                          "stop it there first, or set its meta.json status to 'crashed' if that host is gone")
    path = checkpoint.find_checkpoint(run, "latest")
    algorithm, state, trainer_state = restore_algorithm(cfg, data, device, path)
    if not force:
        _check_same_setup(run, cfg, trainer_state, ignore={"train.steps", "train.epochs"} if steps else set())
    total = total_steps(cfg, len(data.train)) if steps else int(trainer_state["total_steps"])
    algorithm.total_steps = total
    trainer = Trainer(cfg, run, data, algorithm, total, quiet=quiet)
    trainer.load_state_dict(trainer_state)
    if trainer.step >= total:
        raise LanganError(f"run '{run.path}' already finished {trainer.step} of {total} steps; "
                          f"continue it with `langan train --resume {run.path} --steps N` (N > {trainer.step})")
    _restore_rank_state(run, state, algorithm, cfg.train.seed)
    if dist.is_main():
        if steps:
            save_config(cfg, run.config_path)  # the new horizon is part of the run's record
        resumes = [*meta.get("resumes", []), {"from": path.name, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                              "command": " ".join(sys.argv if argv is None else argv),
                                              "total_steps": total, "world_size": dist.world_size()}]
        run.update_meta(status="running", pid=os.getpid(), host=socket.gethostname(), resumes=resumes,
                        total_steps=total)
    return Session(cfg, run, data, algorithm, trainer)


def _restore_rank_state(run: RunDir, state: dict[str, Any], algorithm: Algorithm, seed: int) -> None:
    """This rank's RNG (and local algorithm state) from the checkpoint. With the world size it was saved with the
    resume is exact; with another one the run continues with the same global batch, but the ranks' random streams
    cannot be those of an uninterrupted run (rank 0 keeps its own, new ranks start from their seeds): said once."""
    saved = state.get("ranks") or [{"rng": state["rng"], "local": algorithm.local_state()}]
    here, r = dist.world_size(), dist.rank()
    if len(saved) != here and dist.is_main():
        print(f"note: run '{run.path}' was saved by {len(saved)} process(es) and resumes on {here}: the global batch "
              "is kept, but the sampling streams differ, so it will not match an uninterrupted run bit for bit",
              file=sys.stderr)
    if r < len(saved):
        checkpoint.restore_rng(saved[r]["rng"])
        if r > 0:
            algorithm.load_local_state(saved[r]["local"])
    else:
        seed_rank(seed)
