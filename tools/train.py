"""Train a model from an mmpretrain/lift_mm config: ``python tools/train.py CONFIG [options]``."""
import argparse
import os.path as osp
import sys

import torch

# Run from a checkout without installing: the repository root holds the lift_mm package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import lift_mm  # noqa: E402,F401  (registers components and the checkpoint allow-list)
from lift_mm.engine import (add_runner_arguments, apply_runner_arguments, mixed_precision_optim_wrapper,  # noqa: E402
                            pin_memory_enabled, resolve_auto_resume, setup_distributed_without_cuda)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or from the newest complete one in the work dir if '
                        'no path is given')
    parser.add_argument('--amp', action='store_true',
                        help="mixed-precision training: float16 with dynamic loss scaling through MMEngine's "
                        'AmpOptimWrapper on a GPU, bfloat16 through AutocastOptimWrapper on a machine without one')
    parser.add_argument('--no-validate', action='store_true', help='skip validation during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by total batch size / auto_scale_lr.base_batch_size')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='do not pin memory in data loaders (pinned only on a machine with an accelerator)')
    parser.add_argument('--no-persistent-workers', action='store_true',
                        help='do not keep validation and test data-loader workers alive between evaluations '
                        '(training workers always restart each epoch)')
    add_runner_arguments(parser)
    return parser.parse_args()


def set_loader_options(cfg: Config, pin_memory: bool, persistent_workers: bool) -> None:
    """Apply the loader switches to every data loader of the config."""
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if not loader:
            continue
        loader.pin_memory = pin_memory
        # Training workers start afresh each epoch, and MMEngine seeds new workers from (seed, rank, worker id)
        # alone, so an epoch's augmentation does not depend on earlier epochs and a run resumed from an epoch
        # checkpoint matches an uninterrupted one; persistent workers would carry their random state over.
        # Persistent workers are an error for a loader without workers.
        loader.persistent_workers = (persistent_workers and name != 'train_dataloader'
                                     and loader.get('num_workers', 0) > 0)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    apply_runner_arguments(cfg, args)
    if args.amp:
        cfg.optim_wrapper = mixed_precision_optim_wrapper(cfg.optim_wrapper,
                                                          'cuda' if torch.cuda.is_available() else 'cpu')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    set_loader_options(cfg, pin_memory_enabled(not args.no_pin_memory), not args.no_persistent_workers)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main() -> None:
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    resolve_auto_resume(cfg)
    setup_distributed_without_cuda(cfg, args.launcher)
    Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    main()
