"""Measure how long building a dataset from long-tail annotation files takes, at a benchmark's size.

``python tools/analysis/benchmark_annotations.py [--classes 1000] [--max-images 1280] [--imbalance 256]
[--repeats 3]`` writes ImageNet-LT style files with ImageNet-LT's number of classes and largest and smallest class
sizes to a temporary folder (the sizes in between decay exponentially, as
:func:`~lift_mm.datasets.exponential_class_sizes` gives them: 229,853 training lines by default, twice ImageNet-LT's
115,846, whose sizes follow a Pareto profile), builds a :class:`~lift_mm.datasets.LongTailDataset` from them
``--repeats`` times (reading, validating and counting every line) and prints one JSON line: the numbers of images and
classes, and the median and every measurement of wall-clock and process CPU seconds. The figures depend on the
machine and its load, so they are measured here rather than asserted in tests.
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

# Run from a checkout without installing: the repository root holds the lift_mm package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from lift_mm.datasets import LongTailDataset, exponential_class_sizes  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Time building a LongTailDataset from annotation files.')
    parser.add_argument('--classes', type=int, default=1000, help='number of classes (ImageNet-LT: 1000)')
    parser.add_argument('--max-images', type=int, default=1280, help='images of the largest class (ImageNet-LT: 1280)')
    parser.add_argument('--imbalance', type=float, default=256, help='largest / smallest class (ImageNet-LT: 256)')
    parser.add_argument('--repeats', type=int, default=3, help='datasets built, each timed')
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error('--repeats must be at least 1')
    return args


def write_annotations(root: str, counts: List[int]) -> None:
    """An ImageNet-LT style class-name file and train list (wnid folders, ``.JPEG`` files) under ``root``."""
    with open(osp.join(root, 'classnames.txt'), 'w', encoding='utf-8') as file:
        file.writelines(f'n{c:08d} class {c}\n' for c in range(len(counts)))
    with open(osp.join(root, 'train.txt'), 'w', encoding='utf-8') as file:
        file.writelines(f'train/n{c:08d}/n{c:08d}_{i}.JPEG {c}\n' for c, n in enumerate(counts) for i in range(n))


def measure(args: argparse.Namespace) -> Dict[str, object]:
    """Build the dataset ``args.repeats`` times; the figures as a JSON-ready dict."""
    counts = exponential_class_sizes(args.max_images, args.classes, args.imbalance)
    wall, cpu = [], []
    with tempfile.TemporaryDirectory() as root:
        write_annotations(root, counts)
        for _ in range(args.repeats):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            dataset = LongTailDataset('train.txt', 'classnames.txt', root)
            wall.append(time.perf_counter() - start_wall)
            cpu.append(time.process_time() - start_cpu)
    if dataset.metainfo['class_counts'] != tuple(counts):
        raise RuntimeError('the dataset counted other class sizes than were written')
    return dict(figure='long_tail_dataset_build', images=len(dataset), classes=len(counts),
                median_wall_s=statistics.median(wall), median_cpu_s=statistics.median(cpu), wall_s=wall, cpu_s=cpu)


def main(argv: Optional[Sequence[str]] = None) -> int:
    print(json.dumps(measure(parse_args(argv))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
