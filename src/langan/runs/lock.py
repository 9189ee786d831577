"""The lock of a live run: one writer per run directory.

Every process that writes a run (a new run, `--overwrite`, `--resume`, a sweep's seed run) holds an exclusive
`flock` on `RUN_DIR/.lock` for as long as it writes. The OS drops the lock with its process, so a run killed
by SIGKILL leaves no live lock: the next writer takes it over. The file holds the holder's pid, host and
command line, for the message a second writer gets. It is never deleted (`--overwrite` empties the directory
around it), so every writer locks the same file. Readers (`langan sample`, `eval`, `runs`) take no lock.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are unlocked there
    fcntl = None  # type: ignore[assignment]

from langan.errors import LanganError

LOCK_NAME = ".lock"


def lock_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LOCK_NAME


def _try_flock(f: IO[str], mode: int) -> bool:
    """True when `mode` (LOCK_EX / LOCK_SH) was granted at once; False when another process holds the lock."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(f.fileno(), mode | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise LanganError(f"cannot lock '{f.name}': {err.strerror}; the file system may not support "
                          "file locks (put the runs directory on a local disk)") from None
    return True


def _holder(run_dir: Path) -> dict[str, Any]:
    """Who holds the lock: the lock file's record (written right after locking), else meta.json's."""
    for _ in range(20):  # the holder may be between locking and writing its record
        try:
            record = json.loads(lock_path(run_dir).read_text(encoding="utf-8") or "{}")
        except (OSError, json.JSONDecodeError):
            record = {}
        if record.get("pid"):
            return record
        time.sleep(0.05)
    try:
        meta = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: meta.get(k) for k in ("pid", "host", "command")}


def busy_error(run_dir: str | Path) -> LanganError:
    """One line: which process writes the run, and what to do about it."""
    run_dir = Path(run_dir)
    who = _holder(run_dir)
    pid, host = who.get("pid"), who.get("host") or "this host"
    process = f"pid {pid} on {host}" if pid else "another process"
    command = f" (`{who['command']}`)" if who.get("command") else ""
    stop = f"`kill {pid}`" if pid else "Ctrl-C"
    return LanganError(f"run '{run_dir}' is being written by {process}{command}; wait for it to finish, stop it "
                       f"({stop}: it writes a checkpoint and exits), or pick another --name")


def check_free(run_dir: str | Path) -> None:
    """Raise `busy_error` when a live process holds the run's lock; creates nothing. (A shared probe: a writer
    starting in the same instant may see it as busy, never two writers as free.)"""
    path = lock_path(run_dir)
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError:
        return  # no lock file: no langan process writes it
    with f:
        if not _try_flock(f, fcntl.LOCK_SH if fcntl else 0):
            raise busy_error(run_dir)


class RunLock:
    """An exclusive lock on a run directory, held until `release()` (or the process's end)."""

    def __init__(self, run_dir: Path, file: IO[str]):
        self.run_dir, self.file = run_dir, file

    @classmethod
    def acquire(cls, run_dir: str | Path, argv: list[str] | None = None) -> RunLock:
        """Lock an existing directory, or raise `busy_error`. A lock left by a killed process is taken over."""
        run_dir = Path(run_dir)
        try:
            f = open(lock_path(run_dir), "a+", encoding="utf-8")  # noqa: SIM115 (closed by release)
        except OSError as err:
            raise LanganError(f"cannot create the lock file of run '{run_dir}': {err.strerror}") from None
        try:
            granted = _try_flock(f, fcntl.LOCK_EX if fcntl else 0)
        except BaseException:
            f.close()
            raise
        if not granted:
            f.close()
            raise busy_error(run_dir)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "command": " ".join(sys.argv if argv is None else argv),
                  "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        f.truncate(0)
        f.write(json.dumps(record) + "\n")
        f.flush()
        return cls(run_dir, f)

    @property
    def held(self) -> bool:
        return not self.file.closed

    def release(self) -> None:
        """Clear the record and unlock (closing the file unlocks). Safe to call twice."""
        if self.file.closed:
            return
        try:
            self.file.truncate(0)
            self.file.flush()
        except OSError:
            pass  # the lock goes with the file all the same
        self.file.close()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def clear_directory(run_dir: Path) -> None:
    """Delete everything in a run directory but its lock file (held by the caller): `--overwrite`."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_NAME:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as err:
            raise LanganError(f"cannot clear run directory '{run_dir}' for --overwrite: {err.strerror} "
                              f"({entry.name})") from None
