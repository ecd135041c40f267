import contextlib
import os
from typing import ContextManager

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import MMLogger

from mmpretrain.registry import HOOKS
from ...utils import messages_dropped
from ..checkpoint_files import ATOMIC_BACKEND, partial_files

# What MMEngine's FileClient (and the HardDiskBackend it picks for local paths) logs when created.
FILE_CLIENT_DEPRECATIONS = (r'^("FileClient" will be deprecated in future'
                            r'|"HardDiskBackend" is the alias of "LocalBackend" and the former will be deprecated)')


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook``, writing every checkpoint atomically.

    Checkpoints go through :class:`~lift_mm.engine.checkpoint_files.AtomicLocalBackend`: a checkpoint file is
    either absent or complete, even if the process is killed while saving, so the previous checkpoints stay
    loadable. ``work_dir/last_checkpoint`` is still written by MMEngine, after the checkpoint is in place, so it
    never names a partly written file; should a kill cut ``last_checkpoint`` itself short,
    :func:`~lift_mm.engine.checkpoint_files.find_resumable_checkpoint` falls back to the newest complete
    checkpoint. Before training, the partial files of saves that were interrupted are deleted.

    Saving elsewhere than the local disk (``out_dir`` with a URI prefix, or ``backend_args`` /
    ``file_client_args`` given) goes through that backend as in ``CheckpointHook``, which is not atomic; a
    warning says so.

    Args:
        **kwargs: Keyword arguments of :class:`mmengine.hooks.CheckpointHook`.
    """

    def __init__(self, **kwargs) -> None:
        self.atomic = (kwargs.get('backend_args') is None and kwargs.get('file_client_args') is None
                       and '://' not in str(kwargs.get('out_dir') or ''))
        if self.atomic:
            kwargs['backend_args'] = dict(backend=ATOMIC_BACKEND)
        super().__init__(**kwargs)

    def before_train(self, runner) -> None:
        """Set up the checkpoint directory as ``CheckpointHook`` does, then remove partial files there."""
        with self._unused_file_clients_quiet():
            super().before_train(runner)
        if not self.atomic:
            runner.logger.warning(f'AtomicCheckpointHook: checkpoints to {self.out_dir} are saved through '
                                  f'{type(self.file_backend).__name__}, which does not write them atomically.')
        elif is_main_process():
            for path in partial_files(self.out_dir):
                os.remove(path)
                runner.logger.warning(f'AtomicCheckpointHook: removed {path}, left by an interrupted save.')

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        with self._unused_file_clients_quiet():
            super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner, metrics: dict) -> None:
        with self._unused_file_clients_quiet():
            super()._save_best_checkpoint(runner, metrics)

    def _unused_file_clients_quiet(self) -> ContextManager:
        """Without ``file_client_args``, MMEngine creates a FileClient it does not use when it sets up and at every
        save, and FileClient's deprecation notices concern nothing the user set: they are dropped. With
        ``file_client_args``, the notices are the user's to see."""
        if self.file_client_args is not None:
            return contextlib.nullcontext()
        return messages_dropped(MMLogger.get_current_instance(), FILE_CLIENT_DEPRECATIONS)
