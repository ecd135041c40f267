import os.path as osp
from typing import Sequence

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop
from mmpretrain.registry import HOOKS

from ..checkpoint_compatibility import (CheckpointMismatchError, checkpoint_state_dict, config_differences,
                                        describe_mismatch, state_dict_mismatch, unwrap_model)

ON_CONFIG_CHANGE = ('error', 'warn')
# Settings whose change makes a resumed run differ from an uninterrupted one: light modules, loss, batch size,
# optimiser (learning rate, mixed precision, ...), schedule and its length.
RESULT_KEYS = ('model.backbone.light_modules', 'model.head.loss', 'train_dataloader.batch_size', 'optim_wrapper',
               'param_scheduler', 'auto_scale_lr', 'train_cfg.max_epochs', 'train_cfg.max_iters')


@HOOKS.register_module()
class CheckpointCompatibilityHook(Hook):
    """Refuse checkpoints that do not fit the model, and resuming with settings that change the results.

    For every checkpoint the runner loads (``load_from``, ``--resume``, the checkpoint of ``tools/test.py``):

    * before loading, a ``load_from`` that is a directory or does not exist is refused, naming the key;
    * the checkpoint must hold a state dict (not a bare tensor, an empty dict or weights nested under another key);
    * its state dict is compared with the model (see :func:`~lift_mm.engine.checkpoint_compatibility.
      state_dict_mismatch`): keys the model saves but the checkpoint lacks, keys the model does not have, and
      tensors of other shapes. Testing, validating and resuming refuse any of these with a
      :class:`~lift_mm.engine.checkpoint_compatibility.CheckpointMismatchError` naming the keys; ``load_from`` in
      training (fine-tuning from other weights) loads what fits and warns, listing what keeps its initialisation;
    * resuming compares the ``config_keys`` with the config stored in the checkpoint (``meta['cfg']``) and refuses
      (or, with ``on_config_change='warn'``, warns) listing each key that differs with both values.

    Args:
        on_config_change (str): ``'error'`` refuses to resume with changed ``config_keys``, ``'warn'`` logs them
            and resumes. Defaults to ``'error'``.
        config_keys (Sequence[str]): Dotted config keys that must not change on resume. Defaults to
            :data:`RESULT_KEYS` (light modules, loss, batch size, optimiser, schedule and its length).
    """

    priority = 'VERY_HIGH'

    def __init__(self, on_config_change: str = 'error', config_keys: Sequence[str] = RESULT_KEYS) -> None:
        if on_config_change not in ON_CONFIG_CHANGE:
            raise ValueError(f'`on_config_change` must be one of {ON_CONFIG_CHANGE}, got {on_config_change!r}.')
        self.on_config_change = on_config_change
        self.config_keys = tuple(config_keys)

    @staticmethod
    def _training(runner) -> bool:
        # Runner.train() builds its loop before loading the checkpoint; test() and val() leave it a config.
        return isinstance(runner._train_loop, BaseLoop)

    def _source(self, runner) -> str:
        """The checkpoint being loaded and the key or argument that named it."""
        # Runner keeps the arguments `load_from` and `resume` private; tools/train.py --resume PATH and the
        # CHECKPOINT argument of tools/test.py set them.
        path = runner._load_from
        if runner._resume:
            return f'The checkpoint to resume, {path} (`--resume`, `load_from`)'
        if self._training(runner):
            return f'`load_from`={path!r}'
        return f'The checkpoint {path} (`load_from`, the CHECKPOINT of tools/test.py)'

    def before_run(self, runner) -> None:
        path = runner._load_from
        if path is None or '://' in str(path):
            return
        path = osp.expanduser(path)
        if osp.isdir(path):
            raise IsADirectoryError(
                f'{self._source(runner)} is a directory; it takes a checkpoint file such as '
                f'{osp.join(path, "epoch_1.pth")}. To resume the newest checkpoint of a work dir, use '
                '`tools/train.py CONFIG --resume` without a path and `--work-dir` set to it.')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{self._source(runner)}: no such file; it takes a checkpoint file written by '
                                    'tools/train.py (or a state dict saved with torch.save).')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        source = self._source(runner)
        if runner._resume:
            self._check_config(runner, checkpoint, source)
        mismatch = state_dict_mismatch(unwrap_model(runner.model), checkpoint_state_dict(checkpoint, source))
        if not mismatch:
            return
        details = describe_mismatch(mismatch)
        if runner._resume:
            raise CheckpointMismatchError(
                f'{source} does not fit the model of this config:\n{details}\nResume with the config the run was '
                "trained with (the checkpoint keeps it in meta['cfg']); to start a new run from these weights, "
                'use `load_from` instead.')
        if not self._training(runner):
            raise CheckpointMismatchError(
                f'{source} does not fit the model of this config, so the results would not be the checkpoint\'s:'
                f'\n{details}\nTest it with the config it was trained with (the checkpoint keeps it in '
                "meta['cfg']).")
        runner.logger.warning(
            f'{source} does not fit the model exactly; training starts with these entries as the model '
            f'initialised them (fine-tuning from other weights):\n{details}')

    def _check_config(self, runner, checkpoint: dict, source: str) -> None:
        meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
        saved_text = meta.get('cfg') if isinstance(meta, dict) else None
        if saved_text is None:
            runner.logger.warning(f'{source} holds no config (meta["cfg"]), so resuming cannot check that '
                                  f'{", ".join(self.config_keys)} are unchanged.')
            return
        try:
            saved = Config.fromstring(saved_text, '.py')
        except Exception as error:  # any failure of parsing a stored config means the same here
            runner.logger.warning(f'{source}: its stored config cannot be read ({error!r}), so resuming cannot check '
                                  f'that {", ".join(self.config_keys)} are unchanged.')
            return
        differences = config_differences(saved, runner.cfg, self.config_keys)
        if not differences:
            return
        message = (f'{source} was saved with other settings than this run, so the resumed run would not match '
                   'an uninterrupted one:\n  ' + '\n  '.join(differences) + '\nResume with the settings of the '
                   'checkpoint, start a new run (with `load_from` to start from its weights), or resume anyway '
                   'with `--cfg-options default_hooks.checkpoint_compatibility.on_config_change=warn`.')
        if self.on_config_change == 'error':
            raise CheckpointMismatchError(message)
        runner.logger.warning(message)
