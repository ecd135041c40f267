"""Training accuracy of all classes and of the many / medium / few groups against epochs (LIFT's Figure 5).

Each WORK_DIR is a run of ``tools/train.py`` with ``TrainingAccuracyHook`` in its ``custom_hooks`` and
``LongTailAccuracy`` as its test evaluator; the tool reads the metrics the hook logged (``train_long_tail/top1``,
``.../many``, ``.../medium``, ``.../few`` at step = the epoch) from ``<timestamp>/vis_data/scalars.json`` of every
launch in it, so a resumed run is drawn whole (a later launch's value of an epoch replaces an earlier one's). The
run may still be training.

It writes to ``--out``: ``training_accuracy.png`` (one panel per group, one line per run: the picture the hook
sends to the visualizer backends during training, for several runs at once) and ``training_accuracy.csv`` (run,
epoch and the four accuracies, in percent).

Example (full fine-tuning against LIFT, both trained with the hook)::

    python tools/analysis/plot_training_accuracy.py work_dirs/full-ft work_dirs/lift \
        --labels 'full fine-tuning' LIFT --out work_dirs/figure5
"""
import argparse
import csv
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

# The repository's lift_mm before an installed one; compare_runs beside this file.
sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from compare_runs import launch_dirs, read_scalars, run_labels  # noqa: E402

from lift_mm.utils.figures import GROUP_PANELS, group_curves, save_figure, training_accuracy_figure  # noqa: E402

COLUMNS = ('run', 'epoch', *GROUP_PANELS)


def read_training_accuracy(work_dir: Path, prefix: str) -> Dict[str, Dict[int, float]]:
    """The logged training accuracy of one run, per metric of ``GROUP_PANELS`` and epoch.

    Args:
        work_dir (Path): The run's work dir.
        prefix (str): What precedes ``/top1``, ``/many``, ... in the metric names.

    Returns:
        dict[str, dict[int, float]]: ``{'top1': {epoch: accuracy, ...}, 'many': ..., 'medium': ..., 'few': ...}``.

    Raises:
        ValueError: If the logs lack a metric; the message names the work dir and how to log it.
    """
    history: Dict[int, dict] = {}
    for launch in launch_dirs(work_dir):
        for record in read_scalars(launch):
            if any(key.startswith(f'{prefix}/') for key in record):
                if 'step' not in record:
                    raise ValueError(f'{launch}/vis_data/scalars.json: a record of {prefix}/... has no "step"; '
                                     'was it written by an MMEngine visualizer backend?')
                history[record['step']] = record
    curves = group_curves(history, prefix)
    missing = [f'{prefix}/{metric}' for metric in GROUP_PANELS if metric not in curves]
    if missing:
        raise ValueError(f'{work_dir}: no {missing} in its training scalars (<timestamp>/vis_data/scalars.json); '
                         "train with custom_hooks=[..., dict(type='TrainingAccuracyHook')] and "
                         "test_evaluator=dict(type='LongTailAccuracy'), or give the metrics' --prefix.")
    return curves


def write_csv(runs: Dict[str, Dict[str, Dict[int, float]]], path: Path) -> None:
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for name, curves in runs.items():
            for epoch in sorted(set().union(*(curve.keys() for curve in curves.values()))):
                writer.writerow(dict(run=name, epoch=epoch,
                                     **{metric: curve.get(epoch, '') for metric, curve in curves.items()}))


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Training accuracy of all, many-, medium- and few-shot classes '
                                     'against epochs, from the metrics TrainingAccuracyHook logged.')
    parser.add_argument('work_dirs', nargs='+', help='work dirs of runs trained with TrainingAccuracyHook')
    parser.add_argument('--out', required=True, help='folder for training_accuracy.png and .csv')
    parser.add_argument('--labels', nargs='+', help='a name per run (default: the work dir names)')
    parser.add_argument('--prefix', default='train_long_tail',
                        help="the metric names' part before /top1, /many, ...: the hook's prefix, '_' and the "
                        "LongTailAccuracy's prefix (default: train_long_tail)")
    parser.add_argument('--dpi', type=int, default=150, help='pixels per inch of the PNG (default: 150)')
    args = parser.parse_args(argv)
    if args.dpi < 1:
        parser.error(f'--dpi must be at least 1, not {args.dpi}.')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the figure and the CSV; return the exit status."""
    args = parse_args(argv)
    try:
        labels = run_labels(args.work_dirs, args.labels)
        runs = {label: read_training_accuracy(Path(work_dir), args.prefix)
                for label, work_dir in zip(labels, args.work_dirs)}
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(training_accuracy_figure(runs, dpi=args.dpi), out / 'training_accuracy.png')
    write_csv(runs, out / 'training_accuracy.csv')
    print(f'wrote {out}/training_accuracy.png, training_accuracy.csv')
    return 0


if __name__ == '__main__':
    sys.exit(main())
