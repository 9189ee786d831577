"""The run lock (langan.runs.lock): one writer per run directory; a killed writer's lock is taken over; the lock
is released however training ends; readers never wait for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, tiny_overrides
from langan.cli import main
from langan.errors import LanganError
from langan.runs import checkpoint
from langan.runs.lock import LOCK_NAME, RunLock, check_free
from langan.runs.records import list_runs
from langan.runs.rundir import RunDir
from langan.train.session import new_session, resume_session

PRESET = str(REPO / "configs" / "names-mle.yaml")
WAIT_S = 90  # generous for 2 shared cores; every wait below gives up after it


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _lock_pid(run: RunDir) -> int | None:
    try:
        return json.loads((run.path / LOCK_NAME).read_text() or "{}").get("pid")
    except (OSError, json.JSONDecodeError):
        return None


@pytest.fixture
def live_run(names_file: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, RunDir]]:
    """A real `langan train` child with a step budget it never reaches, once it has written a checkpoint."""
    cmd = [sys.executable, "-m", "langan", "train", PRESET, *tiny_overrides(names_file, **{"train.steps": 10**6}),
           "train.early_stop=0", "train.threads=1", "--runs-dir", str(tmp_path / "runs"), "--name", "same", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = RunDir(tmp_path / "runs" / "same")
    try:
        _wait_for(lambda: proc.poll() is not None or (checkpoint.step_checkpoints(run) and _lock_pid(run)),
                  "the first run's first checkpoint")
        assert proc.poll() is None, proc.communicate()[1]
        yield proc, run
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=WAIT_S)


def _snapshot(run: RunDir) -> dict[str, bytes]:
    return {name: (run.path / name).read_bytes() for name in ("config.yaml", "tokenizer.json")}


def test_a_second_writer_gets_one_line_naming_the_live_one(live_run, names_file: Path, tiny_cfg, tmp_path: Path,
                                                           capsys) -> None:
    proc, run = live_run
    before, meta, first = _snapshot(run), run.read_meta(), run.read_metrics()[0]
    with pytest.raises(LanganError, match=f"pid {proc.pid} on {socket.gethostname()}"):
        new_session(tiny_cfg, run.path, overwrite=True, quiet=True)
    with pytest.raises(LanganError, match=f"pid {proc.pid}"):
        RunDir.create(run.path, overwrite=True)  # the lock is checked before anything is deleted
    attempts = {"--overwrite": ["train", PRESET, *tiny_overrides(names_file), "--runs-dir", str(run.path.parent),
                                "--name", "same", "--overwrite", "--quiet"],
                "--resume": ["train", "--resume", str(run.path), "--quiet"],
                "no flag": ["train", PRESET, *tiny_overrides(names_file), "--runs-dir", str(run.path.parent),
                            "--name", "same", "--quiet"]}
    for what, argv in attempts.items():
        capsys.readouterr()
        assert main(argv) == 2, what
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], (what, err)
        assert f"is being written by pid {proc.pid}" in err[0] and "langan train" in err[0], (what, err)
        assert "wait for it to finish" in err[0] and f"kill {proc.pid}" in err[0] and "--name" in err[0]
    assert proc.poll() is None, "the live run kept going"
    assert _snapshot(run) == before and run.read_meta()["started"] == meta["started"]
    assert checkpoint.step_checkpoints(run) and run.read_metrics()[0] == first  # nothing deleted
    # readers keep working while it trains
    assert main(["sample", str(run.path), "--n", "3", "--plain"]) == 0
    (run.path.parent / "no-run").mkdir()
    (run.path.parent / "no-run" / LOCK_NAME).write_text("")  # a lock file alone does not make a run
    assert [(r["name"], r["status"]) for r in list_runs(run.path.parent)] == [("same", "running")]


def test_a_killed_writers_lock_is_taken_over(live_run, tiny_cfg) -> None:
    proc, run = live_run
    proc.send_signal(signal.SIGKILL)  # no cleanup: the lock file keeps its record, the OS drops the lock
    proc.wait(timeout=WAIT_S)
    assert _lock_pid(run) == proc.pid and run.status() == "crashed"
    s = resume_session(run.path, quiet=True)  # --resume takes it over
    assert _lock_pid(run) == os.getpid()
    s.close()
    assert _lock_pid(run) is None
    proc2 = subprocess.Popen([sys.executable, "-c", "import os, signal, sys; from langan.runs.lock import RunLock; "
                              "RunLock.acquire(sys.argv[1]); print('locked', flush=True); "
                              "os.kill(os.getpid(), signal.SIGKILL)", str(run.path)],
                             stdout=subprocess.PIPE, text=True)
    assert proc2.communicate(timeout=WAIT_S)[0].strip() == "locked"
    assert _lock_pid(run) == proc2.pid
    s = new_session(tiny_cfg, run.path, overwrite=True, quiet=True)  # and so does --overwrite
    assert s.trainer.step == 0 and not checkpoint.step_checkpoints(run) and _lock_pid(run) == os.getpid()
    s.close()


def _free(run: RunDir) -> bool:
    """The lock can be taken by a new open file (so it fails even within this process while held)."""
    check_free(run.path)
    with RunLock.acquire(run.path):
        return True


def test_the_lock_is_released_when_training_finishes_stops_or_fails(tiny_cfg, tmp_path: Path, monkeypatch) -> None:
    s = new_session(tiny_cfg, tmp_path / "r", quiet=True)
    with pytest.raises(LanganError, match=f"pid {os.getpid()}"):
        RunLock.acquire(s.run.path)  # held while the session writes
    assert s.train(stop_after=3) == "stopped" and _free(s.run)
    s = resume_session(tmp_path / "r", quiet=True)
    assert s.train() == "finished" and _free(s.run) and s.run.read_meta()["status"] == "finished"

    def broken(_batch):
        raise RuntimeError("boom")

    s = new_session(tiny_cfg, tmp_path / "r", overwrite=True, quiet=True)
    monkeypatch.setattr(s.algorithm, "step", broken)
    with pytest.raises(RuntimeError, match="boom"):
        s.train()
    assert _free(s.run) and s.run.read_meta()["status"] == "crashed"


def test_a_failing_setup_releases_the_lock(names_file: Path, tmp_path: Path, capsys) -> None:
    base = ["train", PRESET, *tiny_overrides(names_file), "--runs-dir", str(tmp_path), "--name", "r", "--quiet"]
    assert main([*base, "train.steps=4"]) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "--quiet"]) == 2  # already finished: refused
    assert "already finished" in capsys.readouterr().err
    assert _free(RunDir(tmp_path / "r"))
    assert main(base) == 2 and "already exists" in capsys.readouterr().err  # no --overwrite
    assert main([*base, "--overwrite"]) == 0 and _free(RunDir(tmp_path / "r"))
    assert sorted(p.name for p in (tmp_path / "r").iterdir())[0] == LOCK_NAME
