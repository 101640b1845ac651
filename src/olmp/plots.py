"""Figures as files: matplotlib without a window, written atomically."""

from __future__ import annotations

import os
from typing import Any

from olmp.files import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the file-only Agg backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` as PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)


def counted_x_axis(ax: Any, label: str) -> None:
    """Label ``ax``'s x axis ``label`` with whole-number ticks only: rounds and epochs are
    counted, and a short run would otherwise be ticked 1.0, 1.2, 1.4, ..."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
