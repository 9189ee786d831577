"""Crash-safe file writing shared by configs, run records and checkpoints."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from langan.errors import LanganError


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary sibling, flush to disk, rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_csv_beside(png: Path, rows: list[dict[str, Any]]) -> Path:
    """The table of a figure as CSV next to it (same stem, .csv), creating its folder; returns the CSV path."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    try:
        png.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LanganError(f"cannot create '{png.parent}' for '{png.name}': {err.strerror}") from None
    path = png.with_suffix(".csv")
    atomic_write_text(path, out.getvalue())
    return path
