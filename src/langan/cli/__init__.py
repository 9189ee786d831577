"""`langan` command line: one module per command (`register(subparsers)`, `run(args)`); here the parser and main().

A user's mistake is one line, never a traceback. Each command imports its heavy modules (torch, training) inside
`run`, so `langan --help` and `langan runs` stay fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from langan.cli import compare, config, export, report, runs, sample, sweep, sweep_temperature, train
from langan.cli import eval as evaluate
from langan.errors import LanganError

EPILOG = "Examples:\n  langan train configs/names-mle.yaml train.steps=2000 --name try1\n" \
         "  langan sample runs/try1 --n 20 --temperature 0.8\n  langan eval runs/try1\n  langan runs"

# command -> its module, in the order of the top-level help
COMMANDS = {"train": train, "sample": sample, "eval": evaluate, "sweep-temperature": sweep_temperature,
            "compare": compare, "report": report, "runs": runs, "sweep": sweep, "config": config, "export": export}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="langan", description="Train and evaluate language GANs against "
                                     "honest maximum-likelihood baselines.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    args.argv = ["langan", *argv]  # recorded in meta.json as the command line
    # overrides may also come after options: `langan train C.yaml --name x train.steps=5`
    stray = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command].run(args)
    except LanganError as err:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank meets the same mistake: say it once
            print(f"langan {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"langan {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `langan sample ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """Under torchrun: leave the process group cleanly (only if a command joined one; torch is not imported here)."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is None or not distributed.is_available() or not distributed.is_initialized():
        return
    import datetime

    try:  # every rank arrives before any leaves: a rank that leaves early aborted its peers' gloo threads
        if distributed.get_backend() == "gloo":
            distributed.monitored_barrier(timeout=datetime.timedelta(seconds=60))
        else:
            distributed.barrier()
    except Exception:  # a peer is gone (a killed rank): nothing to wait for
        pass
    distributed.destroy_process_group()
