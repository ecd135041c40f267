"""Plot per-class and per-group accuracy from LongTailAccuracy dump files.

Each result (the JSON written by ``LongTailAccuracy(dump_file=...)``) gets a
panel of per-class top-1 accuracy against the class's number of training
images (log scale, classes sorted by count, group boundaries dashed); a last
panel compares the many / medium / few and overall accuracy of all results.

Example::

    python tools/analysis/plot_long_tail.py work_dirs/a/result.json \
        work_dirs/b/result.json --labels zero-shot LIFT --out long_tail.png
"""
import argparse
import json
import math
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

GROUPS = ('many', 'medium', 'few')
REQUIRED_KEYS = ('metrics', 'many_thr', 'few_thr', 'class_counts',
                 'per_class_accuracy')


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


def plot_per_class(ax, result: dict, label: str) -> int:
    """Draw per-class accuracy against training count; return the number of
    classes without evaluated samples (not drawn)."""
    counts = np.asarray(result['class_counts'], dtype=np.float64)
    accuracy = np.array(
        [math.nan if a is None else a for a in result['per_class_accuracy']],
        dtype=np.float64)
    order = np.argsort(-counts, kind='stable')
    counts, accuracy = counts[order], accuracy[order]
    evaluated = ~np.isnan(accuracy)
    ax.scatter(counts[evaluated], accuracy[evaluated], s=10, alpha=0.5)
    # A running mean over neighbouring classes shows the trend that single
    # classes (few test images each) hide.
    window = np.ones(max(1, int(evaluated.sum()) // 20))
    # Dividing by the number of classes in each window keeps the ends
    # unbiased where the window sticks out.
    trend = np.convolve(accuracy[evaluated], window, 'same') / np.convolve(
        np.ones(int(evaluated.sum())), window, 'same')
    ax.plot(counts[evaluated], trend, color='black', linewidth=1.2,
            label=f'running mean over {window.size} '
            f'class{"es" if window.size > 1 else ""}')
    many_thr, few_thr = result['many_thr'], result['few_thr']
    for boundary in (many_thr + 0.5, few_thr - 0.5):
        ax.axvline(boundary, color='grey', linestyle='--', linewidth=1)
    ax.set_xscale('log')
    low, high = counts.min() / 1.3, counts.max() * 1.3
    ax.set_xlim(high, low)  # head classes on the left
    for name, lo, hi in (('many', many_thr + 0.5, high),
                         ('medium', few_thr - 0.5, many_thr + 0.5),
                         ('few', low, few_thr - 0.5)):
        lo, hi = max(lo, low), min(hi, high)
        if lo < hi:
            ax.text(math.sqrt(lo * hi), 99, name, ha='center', va='top',
                    fontsize=8, color='grey')
    ax.set_ylim(-2, 102)
    ax.set_xlabel('training images of the class (log scale)')
    ax.set_ylabel('per-class top-1 accuracy (%)')
    metrics = result['metrics']
    ax.set_title(f'{label}\ntop-1 {_fmt(metrics.get("top1"))}, mean class '
                 f'{_fmt(metrics.get("mean_class"))} | few < {few_thr} <= '
                 f'medium <= {many_thr} < many', fontsize=9)
    ax.legend(loc='lower left', fontsize=8)
    return int((~evaluated).sum())


def _fmt(value: Optional[float]) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def plot_groups(ax, results: List[dict], labels: List[str]) -> None:
    """Draw a grouped bar chart of many / medium / few / overall top-1."""
    names = GROUPS + ('top1', )
    width = 0.8 / len(results)
    for i, (result, label) in enumerate(zip(results, labels)):
        values = [result['metrics'].get(name) for name in names]
        xs = np.arange(len(names)) + (i - (len(results) - 1) / 2) * width
        heights = [math.nan if v is None else v for v in values]
        bars = ax.bar(xs, heights, width, label=label)
        ax.bar_label(bars, labels=[_fmt(v) for v in values], fontsize=7)
    ax.set_xticks(np.arange(len(names)), ['many', 'medium', 'few', 'overall'])
    ax.set_ylim(0, 105)
    ax.set_ylabel('top-1 accuracy (%)')
    ax.set_title('accuracy by group', fontsize=9)
    ax.legend(fontsize=8)


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

    fig, axes = plt.subplots(
        1, len(results) + 1, figsize=(5 * (len(results) + 1), 4.5),
        squeeze=False)
    for ax, result, label, path in zip(axes[0], results, labels, args.results):
        skipped = plot_per_class(ax, result, label)
        if skipped:
            print(f'{path}: {skipped} classes had no evaluated sample and are '
                  'not drawn.')
    plot_groups(axes[0][-1], results, labels)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    plt.close(fig)
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
