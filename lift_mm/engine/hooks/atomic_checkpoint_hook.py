import os

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmpretrain.registry import HOOKS
from ..checkpoint_files import ATOMIC_BACKEND, partial_files


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
        super().before_train(runner)
        if not self.atomic:
            runner.logger.warning(f'AtomicCheckpointHook: checkpoints to {self.out_dir} are saved through '
                                  f'{type(self.file_backend).__name__}, which does not write them atomically.')
        elif is_main_process():
            for path in partial_files(self.out_dir):
                os.remove(path)
                runner.logger.warning(f'AtomicCheckpointHook: removed {path}, left by an interrupted save.')
