"""Compare finished runs: accuracy against learnable parameters (LIFT, Figure 1) and the tuned fraction (Figure 4a).

Each WORK_DIR is a run trained by ``tools/train.py`` and tested by ``tools/test.py`` with the same ``--work-dir``.
From what MMEngine wrote there the tool reads:

- the parameter counts ``ParameterCountHook`` logged when training started (``<timestamp>/<timestamp>.log``);
- the epochs trained: the largest ``epoch`` of the training scalars (``<timestamp>/vis_data/scalars.json``);
- the latest test metrics (``<timestamp>/<timestamp>.json``, written by ``tools/test.py``), with
  ``LongTailAccuracy``'s ``long_tail/top1``, ``many``, ``medium`` and ``few``.

It writes to ``--out``: ``accuracy_vs_parameters.png`` (top-1 against trainable parameters, log scale, point area
proportional to the epochs), ``accuracy_vs_fraction.png`` (top-1 against the trainable share of all parameters),
``groups.png`` (many / medium / few / overall bars per run) and ``runs.csv``; ``--table`` also prints the numbers as
a Markdown table.

Example (the Figure 4a sweep, each config trained and tested into its own work dir)::

    python tools/analysis/compare_runs.py work_dirs/lift_vitb16_sparse-r* work_dirs/lift_vitb16_full-lr* \
        --out work_dirs/figure4a --table
"""
import argparse
import csv
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

# The group bar chart is the one plot_long_tail.py draws for its dump files.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_long_tail import DPI, GROUPS, PANEL_SIZE, STYLE, plot_groups  # noqa: E402

PREFIX = 'long_tail/'
METRICS = ('top1', ) + GROUPS
COLUMNS = ('run', 'epochs', 'trainable', 'total', 'trainable_share', *METRICS)
# One row of ParameterCountHook's table: name, count with thousands separators, share of the total.
COUNT_ROW = re.compile(r'^(\S+)\s+([\d,]+)\s+[\d.]+%$')
# MMEngine names each launch's folder by its start time, so names sort in time order.
TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')
# Point area per epoch in the parameter plot (points squared).
AREA_PER_EPOCH = 12


def parameter_counts(log: Path) -> Optional[Dict[str, int]]:
    """The last table ParameterCountHook wrote in ``log``, or None if it wrote none.

    Args:
        log (Path): An MMEngine text log.

    Returns:
        dict | None: ``{kind or child name: count, ..., 'trainable': n, 'total': n}``.
    """
    counts = None
    lines = log.read_text(encoding='utf-8', errors='replace').splitlines()
    for i, line in enumerate(lines):
        if not line.endswith('Parameters:'):
            continue
        counts = {}
        # The table's header follows the record's first line; its rows follow the header.
        for row in lines[i + 2:]:
            match = COUNT_ROW.match(row)
            if match is None:
                break
            counts[match.group(1)] = int(match.group(2).replace(',', ''))
    return counts


def launch_dirs(work_dir: Path) -> List[Path]:
    """The folders MMEngine made in ``work_dir``, one per launch (training, resumption or test), oldest first.

    Raises:
        ValueError: If ``work_dir`` is no folder or has no launch in it.
    """
    if not work_dir.is_dir():
        raise ValueError(f'{work_dir}: not a folder; give the --work-dir of a run.')
    launches = sorted(path for path in work_dir.glob('*') if path.is_dir() and TIMESTAMP.match(path.name))
    if not launches:
        raise ValueError(f'{work_dir}: no run folder (<timestamp>/) in it; is it the --work-dir of a training run?')
    return launches


def read_scalars(launch: Path) -> List[dict]:
    """The records of a launch's ``vis_data/scalars.json`` (none if it has no such file), in file order.

    Raises:
        ValueError: If a line is not a JSON object; the message names the file and line.
    """
    scalars = launch / 'vis_data' / 'scalars.json'
    if not scalars.is_file():
        return []
    records = []
    for number, line in enumerate(scalars.read_text(encoding='utf-8').splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f'{scalars}:{number}: not a JSON line ({err}).') from None
        if not isinstance(record, dict):
            raise ValueError(f'{scalars}:{number}: expected a JSON object of scalars, got {line[:80]!r}.')
        records.append(record)
    return records


def read_run(work_dir: Path) -> Dict[str, object]:
    """Parameter counts, epochs and latest test metrics of one finished run.

    Args:
        work_dir (Path): The run's work dir.

    Returns:
        dict: ``trainable``, ``total``, ``trainable_share`` (percent), ``epochs`` and the metrics of
        :data:`METRICS` (percent); None for a group the metric left out because it has no classes (e.g. few-shot
        on CIFAR-100-LT at ratio 10 grouped by its own counts).

    Raises:
        ValueError: If something is missing; the message names the work dir or file and how to get it.
    """
    counts, epochs, metrics_file = None, 0, None
    for launch in launch_dirs(work_dir):
        log = launch / f'{launch.name}.log'
        if log.is_file():
            counts = parameter_counts(log) or counts
        epochs = max([epochs] + [record.get('epoch', 0) for record in read_scalars(launch)])
        if (launch / f'{launch.name}.json').is_file():
            metrics_file = launch / f'{launch.name}.json'
    if counts is None or not {'trainable', 'total'} <= counts.keys():
        raise ValueError(f"{work_dir}: no parameter counts in its logs (ParameterCountHook's 'Parameters:' table); "
                         "train with dict(type='ParameterCountHook') in custom_hooks, as lift_mm's default runtime "
                         'has it.')
    if not epochs:
        raise ValueError(f"{work_dir}: no training scalars with an 'epoch' (<timestamp>/vis_data/scalars.json); "
                         'was the run trained by epochs and did it log at least once?')
    if metrics_file is None:
        raise ValueError(f'{work_dir}: no test results (<timestamp>/<timestamp>.json); test the run with '
                         f'`python tools/test.py CONFIG CHECKPOINT --work-dir {work_dir}`.')
    try:
        logged = json.loads(metrics_file.read_text(encoding='utf-8'))
    except json.JSONDecodeError as err:
        raise ValueError(f'{metrics_file}: not valid JSON ({err}).') from None
    if PREFIX + 'top1' not in logged:
        raise ValueError(f'{metrics_file}: no {PREFIX}top1 among the test metrics; test with '
                         "test_evaluator=dict(type='LongTailAccuracy').")
    return dict(epochs=epochs, trainable=counts['trainable'], total=counts['total'],
                trainable_share=100 * counts['trainable'] / counts['total'],
                **{name: logged.get(PREFIX + name) for name in METRICS})


def run_labels(work_dirs: Sequence[str], labels: Optional[Sequence[str]]) -> List[str]:
    """A distinct name per run: ``labels`` (``--labels``), else the work dir names.

    Raises:
        ValueError: If the counts differ or a name repeats.
    """
    labels = list(labels or [Path(work_dir).name for work_dir in work_dirs])
    if len(labels) != len(work_dirs):
        raise ValueError(f'{len(work_dirs)} work dirs but {len(labels)} --labels; give one label per work dir.')
    if len(set(labels)) != len(labels):
        raise ValueError(f'the run names {labels} repeat; give distinct ones with --labels.')
    return labels


def markdown_table(runs: Dict[str, dict]) -> str:
    """The runs as a Markdown table, one row per run, columns :data:`COLUMNS`."""
    lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
    for name, run in runs.items():
        cells = [name, str(run['epochs']), f'{run["trainable"]:,}', f'{run["total"]:,}',
                 f'{run["trainable_share"]:.4g} %',
                 *('n/a' if run[metric] is None else f'{run[metric]:.2f}' for metric in METRICS)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_csv(runs: Dict[str, dict], path: Path) -> None:
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for name, run in runs.items():
            writer.writerow(dict(run, run=name))


def plot_accuracy(runs: Dict[str, dict], x_key: str, x_label: str, path: Path) -> None:
    """Top-1 against ``x_key`` (log scale), each run a labelled point whose area grows with its epochs."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=PANEL_SIZE, layout='constrained')
        for i, (name, run) in enumerate(runs.items()):
            ax.scatter(run[x_key], run['top1'], s=AREA_PER_EPOCH * run['epochs'], color=f'C{i}', alpha=0.7,
                       linewidths=0, clip_on=False)
            ax.annotate(f'{name} ({run["epochs"]} ep)', (run[x_key], run['top1']), xytext=(4, 4),
                        textcoords='offset points', fontsize='x-small')
        ax.set_xscale('log')
        # Room for the labels of the outermost points.
        ax.margins(x=0.2, y=0.1)
        ax.set_xlabel(x_label)
        ax.set_ylabel('top-1 accuracy (%)')
        ax.set_title('point area: epochs trained')
        fig.savefig(path, dpi=DPI)
        plt.close(fig)


def plot_group_bars(runs: Dict[str, dict], path: Path) -> None:
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(PANEL_SIZE[0], 0.9 * len(runs) + 1.5), PANEL_SIZE[1]),
                               layout='constrained')
        plot_groups(ax, [dict(metrics=run) for run in runs.values()], list(runs),
                    [f'C{i}' for i in range(len(runs))])
        fig.savefig(path, dpi=DPI)
        plt.close(fig)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Compare finished runs: accuracy against learnable parameters, '
                                     'the trainable share and many / medium / few accuracy.')
    parser.add_argument('work_dirs', nargs='+', help='work dirs of trained and tested runs')
    parser.add_argument('--out', required=True, help='folder for the PNGs and runs.csv')
    parser.add_argument('--labels', nargs='+', help='a name per run (default: the work dir names)')
    parser.add_argument('--table', action='store_true', help='also print the numbers as a Markdown table')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the figures and the CSV; return the exit status."""
    args = parse_args(argv)
    try:
        labels = run_labels(args.work_dirs, args.labels)
        runs = {label: read_run(Path(work_dir)) for label, work_dir in zip(labels, args.work_dirs)}
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_accuracy(runs, 'trainable', 'trainable parameters', out / 'accuracy_vs_parameters.png')
    plot_accuracy(runs, 'trainable_share', 'trainable share of all parameters (%)', out / 'accuracy_vs_fraction.png')
    plot_group_bars(runs, out / 'groups.png')
    write_csv(runs, out / 'runs.csv')
    if args.table:
        print(markdown_table(runs))
    print(f'wrote {out}/accuracy_vs_parameters.png, accuracy_vs_fraction.png, groups.png, runs.csv')
    return 0


if __name__ == '__main__':
    sys.exit(main())
