"""The Optuna study behind a sweep: storage, stale-trial recovery and claiming a point without duplicates.

Why Optuna: it is well kept and gives, for free, a storage that several processes or machines can share
(SQLite, PostgreSQL, MySQL), the random and TPE samplers, pruners and heartbeats. langan adds what a sweep
of *recorded runs* needs on top:
- a point (one set of parameter values) owns one folder, RUNS_DIR/sweeps/NAME/<point>/seed-S, so a trial
  that retries a point resumes its runs instead of training them again;
- a grid point is claimed by one worker only: a lock file on the point's folder serialises the workers of
  one machine exactly, and after claiming, a worker that sees another live trial of the same point gives
  its own up (marked `duplicate`), which covers workers on other machines;
- a trial left RUNNING by a dead worker is failed (at once when its process was on this machine and is
  gone; otherwise when its heartbeat is older than GRACE_S) and its point is retried by the next claim.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langan.errors import LanganError
from langan.runs.rundir import pid_alive
from langan.sweeps.spec import SweepSpec, point_dir_name, point_key

HEARTBEAT_S = 10  # a running trial records a heartbeat this often
GRACE_S = 60  # a trial of another machine silent this long is dead
SKIPPED = ("duplicate", "surplus", "invalid")  # user attrs of FAIL trials that are not lost work


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise LanganError("langan sweep needs Optuna: pip install 'langan[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # heartbeats outside Study.optimize are deliberate here: trial.py records them while it watches the runs
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    return optuna


def sweep_dir(runs_dir: str | Path, name: str) -> Path:
    return Path(runs_dir) / "sweeps" / name


def storage_url(spec_storage: str | None, runs_dir: str | Path, name: str) -> str:
    return spec_storage or f"sqlite:///{(sweep_dir(runs_dir, name) / 'study.db').resolve()}"


def open_storage(url: str) -> Any:
    optuna = _optuna()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):  # wait for another worker's write instead of failing with "database is locked"
        kwargs = {"connect_args": {"timeout": 120}}
    for attempt in range(5):
        try:
            with _creation_lock(url):
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                                  grace_period=GRACE_S)
        except Exception as err:  # a bad URL, a missing driver, or (other databases) two workers creating tables
            if attempt == 4 or type(err).__name__ not in ("IntegrityError", "OperationalError", "ProgrammingError"):
                raise LanganError(f"cannot open sweep storage '{url}': {type(err).__name__}: {err}".splitlines()[0]
                                  ) from None
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _creation_lock(url: str) -> Iterator[None]:
    """Optuna creates a new database's tables without guarding against a second process doing the same: on a
    local SQLite file, processes open it one at a time."""
    path = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if path is None or not path.parent.is_dir():
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def forced_sampler(base: Any) -> Any:
    """Wraps the spec's sampler: while `.forced` holds a point, a trial gets exactly those values (a grid point,
    or the retry of a lost trial); otherwise the wrapped sampler chooses."""
    optuna = _optuna()

    class ForcedSampler(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self.base, self.forced = base, None

        def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
            return {} if self.forced is not None else self.base.infer_relative_search_space(study, trial)

        def sample_relative(self, study: Any, trial: Any, space: dict[str, Any]) -> dict[str, Any]:
            return {} if self.forced is not None else self.base.sample_relative(study, trial, space)

        def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
            if self.forced is not None:
                return self.forced[name]
            return self.base.sample_independent(study, trial, name, distribution)

        def before_trial(self, study: Any, trial: Any) -> None:
            self.base.before_trial(study, trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self.base.after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:
            self.base.reseed_rng()

    return ForcedSampler()


def _sampler(spec: SweepSpec, n_existing: int) -> Any:
    optuna = _optuna()
    # A given seed is offset by the trials already made, so a restarted worker does not replay its proposals.
    seed = None if spec.sampler_seed is None else spec.sampler_seed + n_existing
    base = optuna.samplers.TPESampler(seed=seed) if spec.sampler == "tpe" else optuna.samplers.RandomSampler(seed)
    return forced_sampler(base)


def open_study(spec: SweepSpec, url: str) -> tuple[Any, Any, Any]:
    """(study, storage, sampler); creates the study, or checks that an existing one is the same experiment."""
    optuna = _optuna()
    storage = open_storage(url)
    pruner = optuna.pruners.NopPruner() if spec.pruner["type"] == "none" else optuna.pruners.MedianPruner(
        n_startup_trials=spec.pruner["startup_trials"], n_warmup_steps=spec.pruner["warmup_steps"])
    with _creation_lock(url):  # one process at a time creates the study and records its spec
        study = optuna.create_study(storage=storage, study_name=spec.name, direction=spec.direction,
                                    pruner=pruner, load_if_exists=True)
        recorded = study.user_attrs.get("fingerprint")
        if recorded is None:
            study.set_user_attr("fingerprint", spec.fingerprint())
            study.set_user_attr("spec", spec.to_json())
    if recorded is not None and recorded != spec.fingerprint():
        raise LanganError(f"sweep '{spec.name}' already exists in {url} with a different setup "
                          f"({_first_difference(study.user_attrs.get('spec', {}), spec.to_json())}); give this sweep "
                          "another name, or restore the original file")
    sampler = _sampler(spec, len(study.get_trials(deepcopy=False)))
    study.sampler = sampler
    return study, storage, sampler


def _first_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The first recorded value that differs, as 'key: old → new' (config keys first)."""
    a, b = old.get("base_config", {}), new["base_config"]
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) != b.get(key):
            return f"{key}: {a.get(key)!r} → {b.get(key)!r}"
    for key in ("space", "metric", "direction", "seeds", "sampler"):
        if old.get(key) != new[key]:
            return f"{key}: {old.get(key)!r} → {new[key]!r}"
    return "recorded by another langan version"


def load_study(name: str, url: str) -> Any:
    optuna = _optuna()
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise LanganError(f"no sweep named '{name}' in {url}") from None


# ----------------------------------------------------------------------------- trial bookkeeping


def params_of(t: Any) -> dict[str, Any]:
    return dict(t.params)


def claimed(t: Any) -> bool:
    """A trial that got past claiming (its params, worker and folder are recorded)."""
    return "host" in t.user_attrs


def is_done(t: Any) -> bool:
    return t.state.name in ("COMPLETE", "PRUNED")


def is_lost(t: Any) -> bool:
    """A failed trial whose point still needs doing (killed, interrupted or crashed; not a skipped duplicate)."""
    return t.state.name == "FAIL" and claimed(t) and not any(k in t.user_attrs for k in SKIPPED)


def fail(study: Any, t: Any, **attrs: Any) -> bool:
    """Mark a RUNNING trial failed with a reason; False when another process got there first."""
    optuna = _optuna()
    try:
        for key, value in attrs.items():
            study._storage.set_trial_user_attr(t._trial_id, key, value)
        return bool(study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL))
    except (optuna.exceptions.UpdateFinishedTrialError, optuna.exceptions.StorageInternalError):
        return False


def reap(study: Any) -> list[int]:
    """Fail the RUNNING trials of dead workers; returns their numbers (their points are retried)."""
    optuna = _optuna()
    host, reaped = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") == host and pid and pid != os.getpid() and not pid_alive(pid) and \
                fail(study, t, lost=f"worker pid {pid} died"):
            reaped.append(t.number)
    before = {t.number for t in study.get_trials(deepcopy=False) if t.state.name == "FAIL"}
    with contextlib.suppress(optuna.exceptions.StorageInternalError):
        optuna.storages.fail_stale_trials(study)  # other machines' workers: no heartbeat for GRACE_S
    after = {t.number for t in study.get_trials(deepcopy=False) if t.state.name == "FAIL"}
    return reaped + sorted(after - before)


class PointLock:
    """An exclusive, non-blocking lock on a point's folder (released when the process dies)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass
class Claim:
    trial: Any  # optuna.Trial
    params: dict[str, Any]
    folder: Path
    lock: PointLock
    retry: bool  # the point was tried before (its runs may be resumed)


def _state(trials: list[Any]) -> tuple[set[str], set[str]]:
    """Keys of the points that are done and of those a live worker holds."""
    done = {point_key(params_of(t)) for t in trials if is_done(t)}
    taken = {point_key(params_of(t)) for t in trials if t.state.name == "RUNNING" and claimed(t)}
    return done, taken


def _candidates(spec: SweepSpec, trials: list[Any], skip: set[str]) -> list[dict[str, Any]]:
    """Points to run before asking the sampler: lost trials' points (first: their runs are partly done), then
    for a grid its open points."""
    done, taken = _state(trials)
    if spec.sampler == "grid" and len(done) >= spec.n_trials:
        return []
    points = [params_of(t) for t in trials if is_lost(t)] + (spec.grid() if spec.sampler == "grid" else [])
    seen, out = set(), []
    for p in points:
        key = point_key(p)
        if key not in done | taken | skip | seen:
            seen.add(key)
            out.append(p)
    return out


def _count_ahead(trials: list[Any], mine: Any) -> int:
    """Trials that count toward n_trials and were claimed before `mine` (random / tpe)."""
    return sum(1 for t in trials if t._trial_id != mine._trial_id and claimed(t) and
               (is_done(t) or (t.state.name == "RUNNING" and t._trial_id < mine._trial_id)))


def _conflict(trials: list[Any], mine: Any, key: str) -> Any:
    """Another trial of the same point that is done, or running and claimed (the later claimer gives way)."""
    for t in trials:
        if t._trial_id != mine._trial_id and point_key(params_of(t)) == key and claimed(t) and \
                (is_done(t) or t.state.name == "RUNNING"):
            return t
    return None


def suggest(trial: Any, spec: SweepSpec) -> dict[str, Any]:
    """The trial's value of every searched key (forced ones come from the sampler wrapper)."""
    params = {}
    for key, p in spec.space.items():
        if p.kind in ("grid", "choices"):
            params[key] = trial.suggest_categorical(key, list(p.values))
        elif p.kind == "int":
            params[key] = trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            params[key] = trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)
    return params


def _ask(study: Any, spec: SweepSpec, sampler: Any, point: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    sampler.forced = point
    try:
        trial = study.ask()
        return trial, suggest(trial, spec)
    finally:
        sampler.forced = None


def claim(study: Any, storage: Any, spec: SweepSpec, sampler: Any, root: Path, skip: set[str],
          rng: random.Random) -> Claim | None:
    """A trial of a point nobody else runs or has done, with the point's folder locked; None when this worker
    has nothing left to do (grid done, n_trials reached, or every open point held by another worker)."""
    busy: set[str] = set()  # points another worker of this machine holds right now
    for _ in range(50):
        trials = study.get_trials(deepcopy=False)
        if spec.sampler != "grid" and sum(claimed(t) and (is_done(t) or t.state.name == "RUNNING")
                                          for t in trials) >= spec.n_trials:
            return None
        options = [p for p in _candidates(spec, trials, skip) if point_key(p) not in busy]
        if spec.sampler == "grid" and not options:
            return None
        lost = {point_key(params_of(t)) for t in trials if is_lost(t)}
        first = [p for p in options if point_key(p) in lost] or options
        point = rng.choice(first) if first else None  # random order: fewer collisions between workers
        lock = PointLock(root / point_dir_name(point)) if point is not None else None
        if lock is not None and not lock.acquire():
            busy.add(point_key(point))
            continue
        trial, params = _ask(study, spec, sampler, point)
        key, folder = point_key(params), root / point_dir_name(params)
        if lock is None:
            lock = PointLock(folder)
            if not lock.acquire():
                fail(study, trial, duplicate="another worker of this machine holds the point")
                continue
        for name, value in {"host": socket.gethostname(), "pid": os.getpid(), "folder": str(folder.resolve()),
                            "seeds": spec.seeds}.items():
            trial.set_user_attr(name, value)
        storage.record_heartbeat(trial._trial_id)
        # read after writing the claim: of two claims of one point racing, at least one sees the other
        trials = study.get_trials(deepcopy=False)
        other = _conflict(trials, trial, key)
        surplus = spec.sampler != "grid" and _count_ahead(trials, trial) >= spec.n_trials
        if other is not None or surplus:
            fail(study, trial, **({"duplicate": f"trial {other.number}"} if other is not None else
                                   {"surplus": "n_trials reached"}))
            lock.release()
            if surplus:
                return None
            busy.add(key)
            if other.state.name == "RUNNING":
                time.sleep(rng.random())  # two workers that gave way to each other try again at different times
            continue
        retry = any(point_key(params_of(t)) == key and is_lost(t) for t in trials)
        return Claim(trial, params, folder, lock, retry)
    return None
