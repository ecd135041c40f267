from typing import Optional, Sequence, Union

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ...datasets.long_tail_dataset import SKIPPED_IMAGES_KEY


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """Report how many unreadable training images were skipped, over all data-loader workers and ranks.

    A dataset with ``on_unreadable='skip'`` (:class:`~lift_mm.datasets.LongTailDataset`) logs each skipped image
    from the process that met it and marks the sample that replaces it (metainfo ``skipped_images``). This hook
    counts the marks in the batches that reach the model and, at the end of each training epoch (for
    iteration-based loops: of the training run), logs the total of all ranks as a warning.
    """

    def __init__(self) -> None:
        self.num_skipped = 0

    def before_train_epoch(self, runner) -> None:
        self.num_skipped = 0

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[Union[dict, tuple, list]] = None,
                         outputs: Optional[dict] = None) -> None:
        samples: Sequence = (data_batch.get('data_samples') or ()) if isinstance(data_batch, dict) else ()
        self.num_skipped += sum(len(sample.get(SKIPPED_IMAGES_KEY, ())) for sample in samples if hasattr(sample, 'get'))

    def after_train_epoch(self, runner) -> None:
        total = torch.tensor(self.num_skipped, dtype=torch.int64)
        all_reduce(total, op='sum')
        if total.item():
            runner.logger.warning(f'SkippedImagesHook: {total.item()} unreadable training image(s) were skipped and '
                                  'replaced by other samples in this epoch; the warnings above name them.')
