from . import hooks  # noqa: F401
from .autocast_optim_wrapper import AutocastOptimWrapper, mixed_precision_optim_wrapper
from .checkpoint_compatibility import CheckpointMismatchError, load_checkpoint_strictly
from .checkpoint_files import (CorruptCheckpointError, check_checkpoint_file, checkpoint_problem,
                               find_resumable_checkpoint, resolve_auto_resume)
from .feature_extraction import extract_features, feature_cache_key
from .hooks import FeatureCacheHook
from .runner_setup import (add_runner_arguments, apply_runner_arguments, pin_memory_enabled,
                           setup_distributed_without_cuda)
from .tta_setup import enable_tta, tta_settings
from .work_dir_lock import WorkDirInUseError, WorkDirLock

__all__ = [
    'AutocastOptimWrapper', 'CheckpointMismatchError', 'CorruptCheckpointError', 'FeatureCacheHook',
    'WorkDirInUseError', 'WorkDirLock', 'add_runner_arguments', 'apply_runner_arguments', 'check_checkpoint_file',
    'checkpoint_problem', 'enable_tta', 'extract_features', 'feature_cache_key', 'find_resumable_checkpoint', 'hooks',
    'load_checkpoint_strictly', 'mixed_precision_optim_wrapper', 'pin_memory_enabled', 'resolve_auto_resume',
    'setup_distributed_without_cuda', 'tta_settings'
]
