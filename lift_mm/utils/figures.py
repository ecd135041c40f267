"""Figures shared by the hooks and the analysis tools: training accuracy per group against epochs, and any
matplotlib figure as the RGB image MMEngine's visualizer backends take."""
from pathlib import Path
from typing import Dict, Mapping, Union

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

# The panels of the training-accuracy figure (LIFT's Figure 5): LongTailAccuracy's metric name and its title.
GROUP_PANELS = {
    'top1': 'all classes',
    'many': 'many-shot classes',
    'medium': 'medium-shot classes',
    'few': 'few-shot (tail) classes',
}
# Inches of one panel; the four sit in a 2 x 2 grid.
PANEL_SIZE = (3.4, 2.5)
STYLE = {'font.size': 7, 'axes.titlesize': 7, 'legend.fontsize': 6}


def training_accuracy_figure(runs: Mapping[str, Mapping[str, Mapping[int, float]]], dpi: int = 100) -> Figure:
    """Training accuracy against epochs: one panel per group of :data:`GROUP_PANELS`, one line per run.

    Args:
        runs (Mapping[str, Mapping[str, Mapping[int, float]]]): Per run name, per metric of
            :data:`GROUP_PANELS` (``'top1'``, ``'many'``, ...), the accuracy in percent per epoch. A run may lack
            a metric or an epoch; a legend names the runs when there are several.
        dpi (int): Pixels per inch of the figure (its size in pixels is ``dpi`` times 6.8 x 5 inches).
            Defaults to 100.

    Returns:
        matplotlib.figure.Figure: The figure, not bound to pyplot (nothing to close).
    """
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(2 * PANEL_SIZE[0], 2 * PANEL_SIZE[1]), dpi=dpi, layout='constrained')
        axes = fig.subplots(2, 2, sharex=True, sharey=True).flatten()
        for ax, (metric, title) in zip(axes, GROUP_PANELS.items()):
            for i, (name, metrics) in enumerate(runs.items()):
                points = sorted(metrics.get(metric, {}).items())
                if points:
                    ax.plot(*zip(*points), marker='o', markersize=3, color=f'C{i}', label=name)
            ax.set_title(title)
            ax.set_ylim(-2, 102)
            ax.grid(alpha=0.3)
        for ax in axes[2:]:
            ax.set_xlabel('epoch')
        for ax in axes[::2]:
            ax.set_ylabel('training top-1 accuracy (%)')
        axes[0].xaxis.get_major_locator().set_params(integer=True)
        if len(runs) > 1:
            axes[0].legend(frameon=False)
    return fig


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """The figure rendered at its own size and dpi, as ``runner.visualizer.add_image`` takes it.

    Args:
        fig (matplotlib.figure.Figure): Any figure.

    Returns:
        np.ndarray: uint8 RGB pixels, shape (height, width, 3).
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    # Constrained layout measures the text of its first pass in a provisional place (titles can end up cut at
    # the top); from the second pass on the places are right.
    fig.draw_without_rendering()
    canvas.draw()
    return np.array(canvas.buffer_rgba())[..., :3]


def save_figure(fig: Figure, path: Union[str, Path]) -> np.ndarray:
    """Render the figure once and write it as a PNG file.

    Args:
        fig (matplotlib.figure.Figure): Any figure; its size and dpi give the pixels.
        path (str | Path): The PNG file to write.

    Returns:
        np.ndarray: The same pixels (:func:`figure_to_rgb`), for ``visualizer.add_image``.
    """
    rgb = figure_to_rgb(fig)
    Image.fromarray(rgb).save(path)
    return rgb


def group_curves(history: Mapping[int, Mapping[str, float]], prefix: str) -> Dict[str, Dict[int, float]]:
    """Per-epoch metrics turned into the curves :func:`training_accuracy_figure` draws.

    Args:
        history (Mapping[int, Mapping[str, float]]): Per epoch, metrics such as ``train_long_tail/top1``.
        prefix (str): What precedes ``/`` + a metric of :data:`GROUP_PANELS` in the names, e.g.
            ``'train_long_tail'``; other metrics are left out.

    Returns:
        dict[str, dict[int, float]]: Per metric of :data:`GROUP_PANELS` that some epoch has, its value per epoch.
    """
    curves = {metric: {epoch: metrics[f'{prefix}/{metric}'] for epoch, metrics in history.items()
                       if f'{prefix}/{metric}' in metrics} for metric in GROUP_PANELS}
    return {metric: curve for metric, curve in curves.items() if curve}
