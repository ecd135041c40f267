from typing import Any, List, Optional

from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmpretrain.registry import HOOKS

from ...datasets.transforms import MinimalistRandomCrop
from .utils import inner_datasets


def scheduled_transforms(transform: Any) -> List[MinimalistRandomCrop]:
    """Every :class:`MinimalistRandomCrop` in ``transform``, looking inside transforms that hold others under
    ``transforms`` (mmengine's ``Compose``, mmcv's ``RandomChoice`` / ``RandomApply`` / ``KeyMapper``, ...).

    Args:
        transform (Any): A transform or a pipeline.

    Returns:
        list[MinimalistRandomCrop]: The transforms found, in pipeline order.
    """
    if isinstance(transform, MinimalistRandomCrop):
        return [transform]
    inner = getattr(transform, 'transforms', None)
    if inner is None:
        return []
    parts = inner if isinstance(inner, (list, tuple)) else [inner]
    return [found for part in parts for found in scheduled_transforms(part)]


@HOOKS.register_module()
class AugmentationScheduleHook(Hook):
    """Tell every :class:`MinimalistRandomCrop` of the training pipeline how far training has gone (LIFT+'s MDA).

    The hook looks through dataset wrappers (``ConcatDataset``, ``RepeatDataset``, ``ClassBalancedDataset``,
    torch's ``Subset``, ...) and through transforms that hold others, and refuses a training pipeline without
    such a transform. It writes the progress ``t`` into the transforms' shared memory, which the data-loader
    workers read, persistent or not:

    * epoch-based loops (LIFT+): ``t = epoch / (max_epochs - 1)``, 0 when training has one epoch, written before
      each epoch, before the workers are asked for its first batch, so all crops of an epoch share its ``t``
      (LIFT+'s 5 epochs: 0, 1/4, 1/2, 3/4, 1). An epoch is the runner's, one pass of the training data loader: the
      ``times`` passes of a ``RepeatDataset`` are one step of the schedule;
    * other loops (``IterBasedTrainLoop``): one "epoch" of the schedule is one iteration,
      ``t = iter / (max_iters - 1)``, the next iteration's written after each iteration. An iteration-based loop
      fetches a batch before it runs the iteration's hooks, so without workers each batch gets exactly its
      iteration's ``t``; workers prefetch ``prefetch_factor x num_workers`` batches, so there a batch's crops use
      the progress of up to that many iterations earlier (and the batches prefetched when the loop is built,
      before any hook runs, use t=0).

    Both read the loop's epoch or iteration, which ``load_or_resume`` has restored before training starts, so a
    resumed run continues the schedule where it stopped.

    Enable it with ``custom_hooks = [dict(type='AugmentationScheduleHook')]``.
    """

    def __init__(self) -> None:
        self._transforms: Optional[List[MinimalistRandomCrop]] = None

    def before_train(self, runner) -> None:
        dataset = runner.train_dataloader.dataset
        self._transforms = [found for _, inner in inner_datasets(dataset)
                            for found in scheduled_transforms(getattr(inner, 'pipeline', None))]
        if not self._transforms:
            raise TypeError(f'AugmentationScheduleHook found no MinimalistRandomCrop in the pipeline of the training '
                            f'dataset {type(dataset).__name__}: add dict(type=\'MinimalistRandomCrop\', scale=...) '
                            'to train_dataloader.dataset.pipeline, or remove the hook from custom_hooks.')
        if not self._by_epoch(runner):
            self._write(runner, runner.iter)

    def before_train_epoch(self, runner) -> None:
        if self._by_epoch(runner):
            self._write(runner, runner.epoch)
            progress = self._transforms[0].progress
            areas = ', '.join(f'{crop.min_scale(progress):.4f} ({crop.schedule})' for crop in self._transforms)
            runner.logger.info(f'AugmentationScheduleHook: epoch {runner.epoch + 1}/{runner.max_epochs}, training '
                               f'progress t={progress:.4f}, minimum crop area: {areas}.')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self._by_epoch(runner):
            self._write(runner, runner.iter + 1)

    @staticmethod
    def _by_epoch(runner) -> bool:
        return isinstance(runner.train_loop, EpochBasedTrainLoop)

    def _write(self, runner, done: int) -> None:
        total = runner.max_epochs if self._by_epoch(runner) else runner.max_iters
        # After the last iteration `done` is `total`.
        progress = min(done / (total - 1), 1.) if total > 1 else 0.
        for transform in self._transforms:
            transform.progress = progress
