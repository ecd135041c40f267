"""Print the statistics of a config's datasets and check their image files.

Builds the train / val / test datasets of a config, prints the number of
classes and images, the images per class, the imbalance ratio and the sizes
of the many / medium / few groups, then reads and decodes every image file as
the datasets do in training.
Exits with status 1, listing the problems, if a dataset cannot be built or an
image is missing or unreadable.

Example::

    python tools/analysis/check_dataset.py \
        configs/_base_/datasets/imagenet-lt_bs128_clip-224.py --split train
"""
import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

# Runnable from the repository root without installing lift_mm.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.utils import import_modules_from_strings, track_parallel_progress, track_progress  # noqa: E402
from mmpretrain.registry import DATASETS  # noqa: E402

import lift_mm  # noqa: E402,F401  (fills the registries)
from lift_mm.datasets import GROUP_NAMES, image_problem, long_tail_groups  # noqa: E402

SPLITS = ('train', 'val', 'test')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Print dataset statistics and check the image files of '
        'a config.')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--split',
        nargs='+',
        choices=SPLITS,
        default=list(SPLITS),
        help='splits to check, by their <split>_dataloader (default: all)')
    parser.add_argument(
        '--many-thr',
        type=int,
        default=100,
        help='classes with more training images are many-shot')
    parser.add_argument(
        '--few-thr',
        type=int,
        default=20,
        help='classes with fewer training images are few-shot')
    parser.add_argument(
        '--workers',
        type=int,
        default=1,
        help='processes that open the images')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.dataset.data_root=/data/imagenet-lt')
    return parser.parse_args(argv)


def _spread(counts: np.ndarray) -> str:
    """``max .., min .., imbalance ratio ..`` of per-class counts."""
    largest, smallest = int(counts.max()), int(counts.min())
    ratio = f'{largest / smallest:.1f}' if smallest else (
        f'inf ({int((counts == 0).sum())} classes without images)')
    return f'max {largest}, min {smallest}, imbalance ratio {ratio}'


def describe(dataset, many_thr: int, few_thr: int) -> List[str]:
    """Lines describing the classes, images and groups of ``dataset``.

    Args:
        dataset: A built dataset with ``metainfo`` and ``get_gt_labels``.
        many_thr (int): Many-shot threshold of the groups.
        few_thr (int): Few-shot threshold of the groups.

    Returns:
        List[str]: Human-readable lines.
    """
    meta = dataset.metainfo
    labels = np.asarray(dataset.get_gt_labels(), dtype=np.int64)
    classes = meta.get('classes')
    num_classes = len(classes) if classes is not None else int(
        labels.max()) + 1
    per_class = np.bincount(labels, minlength=num_classes)
    lines = [
        f'classes: {num_classes}, images: {len(dataset)}',
        f'images per class: {_spread(per_class)}',
    ]
    if 'class_counts' not in meta:
        lines.append("no 'class_counts' in the dataset metainfo: training "
                     'counts and groups unknown')
        return lines
    train_counts = np.asarray(meta['class_counts'], dtype=np.int64)
    lines.append(f'training images per class: {_spread(train_counts)}')
    group_counts = meta.get('group_counts', meta['class_counts'])
    groups = long_tail_groups(group_counts, many_thr, few_thr)
    source = ('group_counts' if 'group_counts' in meta else 'class_counts')
    sizes = ', '.join(f'{name} {len(groups[name])}' for name in GROUP_NAMES)
    lines.append(f'groups by {source} (many > {many_thr}, medium '
                 f'{few_thr}-{many_thr}, few < {few_thr}): {sizes} classes')
    return lines


def check_images(dataset, workers: int) -> Tuple[int, List[Tuple[str, str]]]:
    """Read and decode every image file of ``dataset`` (see :func:`~lift_mm.datasets.image_problem`).

    Args:
        dataset: A built dataset.
        workers (int): Number of processes; 1 checks in this process.

    Returns:
        Tuple[int, List[Tuple[str, str]]]: The number of image files and the
        ``(path, problem)`` of each bad one. Datasets holding their images in
        memory have no files.
    """
    paths = [
        dataset.get_data_info(i).get('img_path') for i in range(len(dataset))
    ]
    paths = [path for path in paths if path is not None]
    if not paths:
        return 0, []
    if workers > 1:
        problems = track_parallel_progress(image_problem, paths, workers)
    else:
        problems = track_progress(image_problem, paths)
    return len(paths), [(path, problem)
                        for path, problem in zip(paths, problems) if problem]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the checks; return the exit status."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))

    failures = []
    checked: Dict[str, str] = {}
    for split in args.split:
        loader = cfg.get(f'{split}_dataloader')
        print(f'\n== {split} ==')
        if not loader or 'dataset' not in loader:
            failures.append(f'{split}: the config has no '
                            f'{split}_dataloader.dataset')
            print(failures[-1])
            continue
        key = repr(loader['dataset'])
        if key in checked:
            print(f'same dataset as {checked[key]}, checked above')
            continue
        checked[key] = split
        try:
            dataset = DATASETS.build(loader['dataset'])
        except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
            failures.append(f'{split}: cannot build the dataset: {err}')
            print(failures[-1])
            continue
        print(f'{type(dataset).__name__}')
        for line in describe(dataset, args.many_thr, args.few_thr):
            print(line)
        num_files, bad = check_images(dataset, args.workers)
        print()
        if not num_files:
            print('images are held in memory: no image files to check')
        elif bad:
            failures.append(f'{split}: {len(bad)} of {num_files} image files '
                            'are missing or unreadable:')
            failures.extend(f'  {path}: {problem}' for path, problem in bad)
        else:
            print(f'all {num_files} image files open')

    if failures:
        print('\nFAILED', file=sys.stderr)
        for line in failures:
            print(line, file=sys.stderr)
        return 1
    print('\nOK')
    return 0


if __name__ == '__main__':
    sys.exit(main())
