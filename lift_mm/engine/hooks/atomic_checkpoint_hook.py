import bisect
import contextlib
import os
from typing import ContextManager, Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import MMLogger
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmpretrain.registry import HOOKS

from ...utils import messages_dropped
from ..checkpoint_files import ATOMIC_BACKEND, partial_files

# What MMEngine's FileClient (and the HardDiskBackend it picks for local paths) logs when created.
FILE_CLIENT_DEPRECATIONS = (r'^("FileClient" will be deprecated in future'
                            r'|"HardDiskBackend" is the alias of "LocalBackend" and the former will be deprecated)')
# Key of a checkpoint's meta, True while the validation that follows its save has not finished.
VALIDATION_PENDING = 'validation_pending'


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook``, writing every checkpoint atomically and recording whether the validation
    that follows it finished.

    Checkpoints go through :class:`~lift_mm.engine.checkpoint_files.AtomicLocalBackend`: a checkpoint file is
    either absent or complete, even if the process is killed while saving, so the previous checkpoints stay
    loadable. ``work_dir/last_checkpoint`` is still written by MMEngine, after the checkpoint is in place, so it
    never names a partly written file; should a kill cut ``last_checkpoint`` itself short,
    :func:`~lift_mm.engine.checkpoint_files.find_resumable_checkpoint` falls back to the newest complete
    checkpoint. Before training, the partial files of saves that were interrupted are deleted.

    The training loop saves a checkpoint before it validates that step, so a run killed during that validation
    would resume after it and never validate that step. A checkpoint that a validation follows is therefore
    saved with ``meta['validation_pending'] = True`` and saved again once the validation has finished (with the
    validation's results in its message hub, as MMEngine does when ``save_best`` finds a better one). A run
    resumed from a checkpoint whose validation is pending runs that validation before training on; resumed after
    its last step, it only validates. This holds for epoch-based loops with ``by_epoch=True`` checkpoints and
    iteration-based loops with ``by_epoch=False`` ones.

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
        # The loop position (epoch, iter) of the saved checkpoint whose validation has not finished.
        self._pending: Optional[Tuple[int, int]] = None
        self._saving_pending = False

    def before_train(self, runner) -> None:
        """Set up the checkpoint directory as ``CheckpointHook`` does, remove partial files there, and run the
        validation that the resumed checkpoint is waiting for."""
        with self._unused_file_clients_quiet():
            super().before_train(runner)
        if not self.atomic:
            runner.logger.warning(f'AtomicCheckpointHook: checkpoints to {self.out_dir} are saved through '
                                  f'{type(self.file_backend).__name__}, which does not write them atomically.')
        elif is_main_process():
            for path in partial_files(self.out_dir):
                os.remove(path)
                runner.logger.warning(f'AtomicCheckpointHook: removed {path}, left by an interrupted save.')
        if self._pending is None:
            return
        if self._pending != (runner.epoch, runner.iter):
            # Not resumed: the loaded checkpoint only gave the initial weights.
            self._pending = None
        elif runner.val_loop is None:
            runner.logger.warning('AtomicCheckpointHook: the validation after the resumed checkpoint did not '
                                  'finish, and validation is off: it is left out.')
            self._pending = None
        else:
            runner.logger.info('AtomicCheckpointHook: the resumed checkpoint was saved before a validation that '
                               'did not finish; validating now.')
            runner.val_loop.run()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        self._pending = (meta['epoch'], meta['iter']) if meta.get(VALIDATION_PENDING) else None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._saving_pending:
            checkpoint['meta'][VALIDATION_PENDING] = True

    def after_val_epoch(self, runner, metrics) -> None:
        """Save the best checkpoint as ``CheckpointHook`` does, then record that the checkpoint waiting for this
        validation has it."""
        super().after_val_epoch(runner, metrics)
        if self._pending is not None and self._pending == (runner.epoch, runner.iter):
            epoch, iteration = self._pending
            self._pending = None
            self._save_checkpoint_with_step(runner, epoch if self.by_epoch else iteration,
                                            dict(epoch=epoch, iter=iteration))

    def _save_checkpoint(self, runner) -> None:
        follows = self._validation_follows(runner)
        self._saving_pending = follows
        try:
            super()._save_checkpoint(runner)
        finally:
            self._saving_pending = False
        # The position the checkpoint's meta records, which is the runner's while the validation runs.
        position = (runner.epoch + 1, runner.iter) if self.by_epoch else (runner.epoch, runner.iter + 1)
        self._pending = position if follows else None

    def _validation_follows(self, runner) -> bool:
        """Whether the training loop validates right after the step being saved, as its ``run`` decides."""
        loop = runner.train_loop
        if self.by_epoch and type(loop) is EpochBasedTrainLoop:
            step, last = runner.epoch + 1, loop.max_epochs
        elif not self.by_epoch and type(loop) is IterBasedTrainLoop:
            step, last = runner.iter + 1, loop.max_iters
        else:
            return False
        # The loops pick the interval for the step after the one that just finished.
        interval = loop.dynamic_intervals[bisect.bisect(loop.dynamic_milestones, step + 1) - 1]
        return runner.val_loop is not None and step >= loop.val_begin and (step % interval == 0 or step == last)

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
