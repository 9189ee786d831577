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


def relaunch(argv: list[str], nproc: int) -> int:
    """Run `langan ARGV` in `nproc` processes through torchrun (standalone: one machine), sharing the cores between
    them; returns its exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max((os.cpu_count() or 1) // nproc, 1)))
    entry = "import sys; from langan.cli.launch import torchrun; sys.exit(torchrun(int(sys.argv[1]), sys.argv[2:]))"
    proc = subprocess.Popen([sys.executable, "-c", entry, str(nproc), *argv], env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the workers too: let them write their checkpoint and stop
        return proc.wait()


def torchrun(nproc: int, argv: list[str]) -> int:
    """torchrun's launcher, given langan's arguments as they are (its own parser would read `--n 50` as an
    abbreviation of one of its options); a failed process is one line per rank, not the launcher's traceback."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", "langan"])
    args.training_script_args = argv
    try:
        run(args)
    except ChildFailedError as err:
        codes = {rank: failure.exitcode for rank, failure in sorted(err.failures.items())}
        if set(codes.values()) != {2}:  # 2 on every rank: a user's mistake, already said in one line
            for rank, code in codes.items():
                print(f"langan: rank {rank} ended with exit code {code}", file=sys.stderr)
        return 2 if set(codes.values()) == {2} else 1
    return 0
