"""matplotlib for every figure langan draws, imported only when a figure is wanted (it is an optional extra)."""

from __future__ import annotations

from typing import Any

from langan.errors import LanganError


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, or one line saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LanganError("the figures need matplotlib: pip install 'langan[plot]'") from None
    return plt
