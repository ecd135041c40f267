"""Preparing an MMEngine config for the machine it runs on, shared by the train and test tools."""
import os
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
