"""Drawing fields with matplotlib, off screen: shared by ``mgno plot`` and the loggers.

Figures are made without pyplot (no global backend or state) and drawn with
the Agg canvas. 1-D fields are drawn as curves, 2-D fields as images, 3-D
fields as their middle slice along the last axis; always the first channel.
This module imports nothing else of mgno, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def new_figure(width: float, height: float):
    """A matplotlib Figure of ``width`` x ``height`` inches, drawn off screen."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def slice2d(field: np.ndarray) -> np.ndarray:
    """First channel of ``(C, *grid)``; the middle slice of a 3-D grid."""
    f = field[0]
    while f.ndim > 2:
        f = f[..., f.shape[-1] // 2]
    return f


def plot_fields(
    ax_row: Sequence,
    fields: Sequence[np.ndarray],
    titles: Sequence[str],
) -> None:
    """Draw fields ``(C, *grid)`` (first channel) into a row of axes.

    A title containing ``"error"`` gets its own colour map.
    """
    for ax, f, title in zip(ax_row, fields, titles, strict=True):
        g = slice2d(f)
        if g.ndim == 1:
            ax.plot(np.linspace(0, 1, g.shape[0]), g)
        else:
            im = ax.imshow(
                g.T,
                origin="lower",
                extent=(0, 1, 0, 1),
                cmap="viridis" if "error" not in title else "magma",
            )
            ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_title(title, fontsize=9)


def rgb_array(fig, dpi: float = 80) -> np.ndarray:
    """The figure drawn at ``dpi`` as an RGB image, ``(height, width, 3)`` uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


__all__ = ["new_figure", "plot_fields", "rgb_array", "slice2d"]
