"""`--nproc N`: the same command again under torchrun with N processes (DDP over gloo on CPU, NCCL on GPUs)."""

from __future__ import annotations

import os
import subprocess
import sys


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def without_nproc(argv: list[str]) -> list[str]:
    """The command line (after `langan`) without its --nproc option."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def relaunch(argv: list[str], nproc: int, resume_hint: str | None = None) -> int:
    """Run `langan ARGV` in `nproc` processes through torchrun (standalone: one machine), sharing the cores between
    them; returns its exit code. On failure `resume_hint` (a command) is printed as the way on."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max((os.cpu_count() or 1) // nproc, 1)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "langan", *argv]
    code = subprocess.run(cmd, env=env).returncode
    if code != 0 and resume_hint:
        print(f"langan: a process of the run ended with an error (exit {code}); its last checkpoint is intact. "
              f"Resume with: {resume_hint}", file=sys.stderr)
    return code
