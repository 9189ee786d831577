"""Running the `langan` command from a benchmark script: one subprocess, its error shown on failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def langan(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m langan ARGS` in the repository root; exits with the command and its stderr tail if it fails."""
    cmd = [sys.executable, "-m", "langan", *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return proc
