"""Evaluate a checkpoint: ``python tools/test.py CONFIG [CHECKPOINT] [options]``."""
import argparse
import os.path as osp
import sys

# Run from a checkout without installing: the repository root holds the lift_mm package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import lift_mm  # noqa: E402,F401  (registers components and the checkpoint allow-list)
from lift_mm.engine import (add_runner_arguments, apply_runner_arguments, enable_tta, pin_memory_enabled,  # noqa: E402
                            setup_distributed_without_cuda)
from lift_mm.engine.hooks.utils import train_images_cfg  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (none for models that need no training, '
                        'such as zero-shot CLIP)')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='do not pin memory in data loaders (pinned only on a machine with an accelerator)')
    parser.add_argument('--tta', action='store_true',
                        help='test-time ensembling: wrap the model in the config\'s `tta_model` (default '
                        'AverageLogitsTTA, which averages logits) and test with its `tta_pipeline`')
    parser.add_argument('--split', choices=('test', 'train'), default='test',
                        help='the images to test: the test set, or the training set (its dataset inside any '
                        'wrappers such as RepeatDataset) through the test pipeline (LIFT\'s test_train)')
    add_runner_arguments(parser)
    return parser.parse_args()


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    apply_runner_arguments(cfg, args)
    cfg.load_from = args.checkpoint
    loader = cfg.test_dataloader
    loader.pin_memory = pin_memory_enabled(not args.no_pin_memory)
    loader.persistent_workers = loader.get('num_workers', 0) > 0 and loader.get('persistent_workers', True)
    if args.out is not None:
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(cfg.test_evaluator, (list, tuple)) \
            else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # After --cfg-options, which may change the training set and the TTA settings.
    if args.split == 'train':
        try:
            dataset = train_images_cfg(cfg, '--split train')
        except TypeError as error:
            sys.exit(f'error: {error.args[0]}')
        # A copy of the loader: configs often share one dict between the val and test loaders.
        cfg.test_dataloader = dict(cfg.test_dataloader, dataset=dataset)
    if args.tta:
        try:
            enable_tta(cfg)
        except (KeyError, ValueError) as error:
            sys.exit(f'error: --tta: {error.args[0]}')
    return cfg


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    setup_distributed_without_cuda(cfg, args.launcher)
    Runner.from_cfg(cfg).test()


if __name__ == '__main__':
    main()
