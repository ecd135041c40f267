from . import hooks  # noqa: F401
from .runner_setup import add_runner_arguments, apply_runner_arguments, setup_distributed_without_cuda

__all__ = ['add_runner_arguments', 'apply_runner_arguments', 'hooks', 'setup_distributed_without_cuda']
from .tta_setup import enable_tta, tta_settings  # noqa: E402

__all__ += ['enable_tta', 'tta_settings']
from .checkpoint_files import (CorruptCheckpointError, check_checkpoint_file, checkpoint_problem,  # noqa: E402
                               find_resumable_checkpoint, resolve_auto_resume)

__all__ += [
    'CorruptCheckpointError', 'check_checkpoint_file', 'checkpoint_problem', 'find_resumable_checkpoint',
    'resolve_auto_resume'
]
from .autocast_optim_wrapper import AutocastOptimWrapper  # noqa: E402

__all__ += ['AutocastOptimWrapper']
from .feature_cache_hook import FeatureCacheHook  # noqa: E402

__all__ += ['FeatureCacheHook']
