"""Plot per-class and per-group accuracy from LongTailAccuracy dump files.

Each result (the JSON written by ``LongTailAccuracy(dump_file=...)``) gets a
panel of per-class top-1 accuracy, classes sorted by their number of training
images (grey bars, log scale on the right), with the many / medium / few
accuracies as segments over their groups; a last panel compares the many /
medium / few and overall accuracy of all results. The figure is sized and
typeset for a two-column paper (300 dpi).

Example (the dump files come from ``tools/test.py``)::

    python tools/test.py CONFIG CHECKPOINT \
        --cfg-options test_evaluator.dump_file=work_dirs/lift/result.json
    python tools/analysis/plot_long_tail.py work_dirs/zero-shot/result.json \
        work_dirs/lift/result.json --labels zero-shot LIFT --out long_tail.png
"""
import argparse
import json
import math
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patheffects import withStroke  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

GROUPS = ('many', 'medium', 'few')
REQUIRED_KEYS = ('metrics', 'many_thr', 'few_thr', 'class_counts', 'groups',
                 'per_class_accuracy')
# Fewer classes give a running mean over too few of them to show a trend.
MIN_CLASSES_FOR_TREND = 100
# A panel is a column of a two-column paper figure, printed at 300 dpi.
PANEL_SIZE = (3.4, 2.8)
DPI = 300
# A white edge keeps the lines visible over a cloud of points.
OUTLINE = [withStroke(linewidth=3, foreground='white')]
STYLE = {
    'font.size': 7,
    'axes.titlesize': 7,
    'axes.labelsize': 7,
    'xtick.labelsize': 6,
    'ytick.labelsize': 6,
    'legend.fontsize': 6,
    'axes.spines.top': False,
    'lines.linewidth': 1.0,
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot per-class accuracy against training count from '
        'LongTailAccuracy dump files.')
    parser.add_argument(
        'results', nargs='+', help='JSON files written by LongTailAccuracy')
    parser.add_argument('--out', required=True, help='PNG file to write')
    parser.add_argument(
        '--labels',
        nargs='+',
        help='a name per result (default: the file names)')
    return parser.parse_args(argv)


def load_result(path: str) -> dict:
    """Read and check one dump file.

    Args:
        path (str): The JSON file.

    Returns:
        dict: Its content.

    Raises:
        ValueError: If the file is not a LongTailAccuracy dump; the message
            names the file and the key.
    """
    try:
        with open(path, encoding='utf-8') as f:
            result = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'{path}: not valid JSON ({err}).') from None
    if not isinstance(result, dict):
        raise ValueError(f'{path}: expected a JSON object written by '
                         'LongTailAccuracy(dump_file=...).')
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        raise ValueError(f'{path}: missing key(s) {missing}; is it a dump of '
                         'LongTailAccuracy(dump_file=...)?')
    counts, accuracy = result['class_counts'], result['per_class_accuracy']
    if len(counts) != len(accuracy):
        raise ValueError(f"{path}: 'class_counts' has {len(counts)} classes "
                         f"but 'per_class_accuracy' has {len(accuracy)}.")
    if min(counts) < 1:
        raise ValueError(f"{path}: 'class_counts' must be positive for a "
                         f'log-scale axis; class {counts.index(min(counts))} '
                         f'has {min(counts)}.')
    return result


def plot_per_class(ax, result: dict, label: str, color: str) -> int:
    """Draw one result's per-class accuracy, classes sorted by training count.

    Points are per-class top-1 accuracy (left axis), grey bars the training
    images of each class (right axis, log scale), horizontal segments the
    many / medium / few accuracy the metric reported; with 100 classes or
    more, a running mean over 5 % of the classes shows the trend that single
    classes (few test images each) hide.

    Args:
        ax (matplotlib.axes.Axes): The panel.
        result (dict): A dump of ``LongTailAccuracy``.
        label (str): The result's name (panel title).
        color (str): The result's colour (also its bars in the group chart).

    Returns:
        int: The number of classes without evaluated samples (not drawn).
    """
    counts = np.asarray(result['class_counts'], dtype=np.float64)
    accuracy = np.array(
        [math.nan if a is None else a for a in result['per_class_accuracy']],
        dtype=np.float64)
    order = np.argsort(-counts, kind='stable')
    counts, accuracy = counts[order], accuracy[order]
    group_of = np.empty(len(order), dtype=object)
    for name, members in result['groups'].items():
        group_of[members] = name
    group_of = group_of[order]
    ranks = np.arange(1, len(order) + 1)
    evaluated = ~np.isnan(accuracy)

    # Training counts behind the accuracies, on their own (right) axis.
    counts_ax = ax.twinx()
    counts_ax.bar(ranks, counts, width=1.0, color='0.88', linewidth=0)
    counts_ax.set_yscale('log')
    counts_ax.set_ylim(counts.min() / 2, counts.max() * 2)
    counts_ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    counts_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f'{v:g}'))
    counts_ax.yaxis.set_minor_formatter(NullFormatter())
    counts_ax.set_ylabel('training images', color='0.45')
    counts_ax.tick_params(axis='y', colors='0.45')
    ax.set_zorder(counts_ax.get_zorder() + 1)
    ax.patch.set_visible(False)

    # Points above the group segments and the running mean; larger ones
    # where there are few classes.
    ax.scatter(ranks[evaluated], accuracy[evaluated],
               s=9 if len(ranks) >= MIN_CLASSES_FOR_TREND else 16, color=color,
               alpha=0.6, linewidths=0, clip_on=False, zorder=5, label='class')
    runs = _group_runs(group_of)
    for i, (name, first, last) in enumerate(runs):
        value = result['metrics'].get(name)
        if value is not None:
            ax.hlines(value, first - 0.5, last + 0.5, color='black',
                      linewidth=1.5, zorder=4, path_effects=OUTLINE,
                      label='group accuracy' if i == 0 else None)
        if i:
            ax.axvline(first - 0.5, color='0.5', linestyle='--', linewidth=0.8)
        # Above the plot area, so that no accuracy point hides the name.
        ax.annotate(name, ((first + last) / 2, 1), xycoords=ax.get_xaxis_transform(),
                    xytext=(0, 2), textcoords='offset points', ha='center', va='bottom',
                    fontsize='small', color='0.35')
    num_evaluated = int(evaluated.sum())
    if num_evaluated >= MIN_CLASSES_FOR_TREND:
        window = np.ones(num_evaluated // 20)
        # Dividing by the number of classes in each window keeps the ends
        # unbiased where the window sticks out.
        trend = np.convolve(accuracy[evaluated], window, 'same') / np.convolve(
            np.ones(num_evaluated), window, 'same')
        ax.plot(ranks[evaluated], trend, color=color, linewidth=1.2, zorder=4,
                path_effects=OUTLINE,
                label=f'running mean of {window.size} classes')
    ax.set_xlim(0.5, len(ranks) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=3))
    # A little room below 0 % and above 100 % keeps those points whole.
    ax.set_ylim(-2, 102)
    ax.set_yticks(range(0, 101, 20))
    ax.set_xlabel(f'class, most training images first (many > '
                  f'{result["many_thr"]}, few < {result["few_thr"]})')
    ax.set_ylabel('per-class top-1 accuracy (%)')
    metrics = result['metrics']
    ax.set_title(f'{label}: top-1 {_fmt(metrics.get("top1"))}, mean class '
                 f'{_fmt(metrics.get("mean_class"))}', pad=14)
    # Below the panel, where it hides no point.
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.2), ncol=3,
              frameon=False, handlelength=1.5)
    return int((~evaluated).sum())


def _group_runs(group_of: np.ndarray) -> List[tuple]:
    """(group, first rank, last rank) of each run of consecutive classes
    (ranks from 1) in the same group."""
    runs = []
    for rank, name in enumerate(group_of, start=1):
        if runs and runs[-1][0] == name:
            runs[-1][2] = rank
        else:
            runs.append([name, rank, rank])
    return [tuple(run) for run in runs]


def _fmt(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def plot_groups(ax, results: List[dict], labels: List[str],
                colors: List[str]) -> None:
    """Draw a grouped bar chart of many / medium / few / overall top-1, each
    bar labelled with its value; the legend sits above the plot area."""
    names = GROUPS + ('top1', )
    width = 0.8 / len(results)
    for i, (result, label, color) in enumerate(zip(results, labels, colors)):
        values = [result['metrics'].get(name) for name in names]
        xs = np.arange(len(names)) + (i - (len(results) - 1) / 2) * width
        heights = [math.nan if v is None else v for v in values]
        bars = ax.bar(xs, heights, width, label=label, color=color)
        ax.bar_label(bars, labels=[_fmt(v) for v in values], padding=1,
                     fontsize='x-small')
    ax.set_xticks(np.arange(len(names)), ['many', 'medium', 'few', 'overall'])
    # Headroom above 100 % for the value labels.
    ax.set_ylim(0, 109)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel('top-1 accuracy (%)')
    ax.legend(loc='lower center', bbox_to_anchor=(0.5, 1.0), ncol=len(results),
              frameon=False, handlelength=1.0)


def plot_figure(results: List[dict],
                labels: List[str]) -> Tuple[plt.Figure, List[int]]:
    """One panel per result and a last panel comparing the groups.

    Args:
        results (list[dict]): Dumps of ``LongTailAccuracy``.
        labels (list[str]): A name per result.

    Returns:
        tuple[matplotlib.figure.Figure, list[int]]: The figure, sized for
        print, and per result the number of classes without evaluated
        samples (not drawn).
    """
    colors = [f'C{i}' for i in range(len(results))]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1, len(results) + 1, figsize=(PANEL_SIZE[0] * (len(results) + 1), PANEL_SIZE[1]),
            squeeze=False, layout='constrained')
        skipped = [
            plot_per_class(ax, result, label, color)
            for ax, result, label, color in zip(axes[0], results, labels, colors)
        ]
        plot_groups(axes[0][-1], results, labels, colors)
    return fig, skipped


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the figure; return the exit status."""
    args = parse_args(argv)
    labels = args.labels or [Path(path).stem for path in args.results]
    if len(labels) != len(args.results):
        print(f'error: {len(args.results)} results but {len(labels)} '
              '--labels; give one label per result.', file=sys.stderr)
        return 2
    try:
        results = [load_result(path) for path in args.results]
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    fig, skipped = plot_figure(results, labels)
    for path, num_skipped in zip(args.results, skipped):
        if num_skipped:
            print(f'{path}: {num_skipped} classes had no evaluated sample and '
                  'are not drawn.')
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=DPI)
    plt.close(fig)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
