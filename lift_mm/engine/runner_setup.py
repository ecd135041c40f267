"""Preparing an MMEngine config for the machine it runs on, shared by the train and test tools."""
import argparse
import os
import os.path as osp
from datetime import timedelta

import torch
from mmengine.config import Config
from torch import distributed

# Default of `env_cfg.dist_cfg.timeout` when a config sets none, in seconds.
DEFAULT_DIST_TIMEOUT = 1800


def setup_distributed_without_cuda(cfg: Config, launcher: str) -> None:
    """Make MMEngine's data-parallel training work on CPU-only machines.

    MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` and its default DDP wrapper pins ``device_ids`` to
    the local GPU, both of which fail without CUDA. Here the process group is started with gloo (so MMEngine skips
    its own start) and DDP is wrapped without device ids. With CUDA this does nothing.

    Args:
        cfg (Config): The config the runner will be built from; ``model_wrapper_cfg`` is set.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'Distributed runs without CUDA are supported with the pytorch launcher '
                           f'(tools/dist_train.sh, torchrun), not with launcher={launcher!r}.')
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', DEFAULT_DIST_TIMEOUT)
    if not distributed.is_initialized():
        distributed.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']),
            timeout=timedelta(seconds=timeout))
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.update(device_ids=None, broadcast_buffers=False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every tool that runs a config takes: work dir, config overrides and the launcher."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='directory for logs, checkpoints and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. model.backbone.pretrained=/path/ViT-B-16.pt')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def apply_runner_arguments(cfg: Config, args: argparse.Namespace) -> None:
    """Set the launcher and the work dir (``--work-dir``, else the config's, else ``work_dirs/<config name>``), and
    check every checkpoint the run loads with ``CheckpointCompatibilityHook`` unless the config configures it."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if cfg.get('default_hooks') is None:
        cfg.default_hooks = dict()
    if 'checkpoint_compatibility' not in cfg.default_hooks:
        cfg.default_hooks.checkpoint_compatibility = dict(type='CheckpointCompatibilityHook')
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])


def pin_memory_enabled(requested: bool) -> bool:
    """Whether the tools' data loaders pin memory: when ``requested`` (unless ``--no-pin-memory``) and an accelerator
    is there to copy batches to. Without one, pinned memory gains nothing and torch warns of it every epoch."""
    return requested and torch.accelerator.is_available()
