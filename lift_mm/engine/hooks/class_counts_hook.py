from typing import Any, List, Tuple

import numpy as np
import torch
from mmengine.dataset import ClassBalancedDataset, ConcatDataset, RepeatDataset
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS
from torch.utils.data import ConcatDataset as TorchConcatDataset

from .utils import is_dataset_wrapper, unwrap_model

_HINT = "add metainfo['class_counts'] to the training dataset or pass `class_counts=[...]` to the loss."


def _num_classes(dataset: Any) -> int:
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    return 0 if classes is None else len(classes)


def _gt_labels(dataset: Any) -> np.ndarray:
    if not hasattr(dataset, 'get_gt_labels'):
        raise TypeError(f'ClassCountsHook cannot list the labels of {type(dataset).__name__}: it has no '
                        f'get_gt_labels(); {_HINT}')
    return np.asarray(dataset.get_gt_labels(), dtype=np.int64).reshape(-1)


def count_classes(dataset: Any, num_classes: int = 0) -> np.ndarray:
    """Number of samples of each class that one pass over ``dataset`` yields.

    A dataset's own ``metainfo['class_counts']`` is used when present, else the labels from
    ``get_gt_labels()`` are counted. Wrappers compose the counts of what they wrap: ``ConcatDataset`` adds them,
    ``RepeatDataset`` multiplies them by ``times``, and ``ClassBalancedDataset`` counts its over-sampled
    indices, so the counts are those of the distribution training actually draws from. Other wrappers (with a
    ``dataset`` or ``datasets`` attribute) must provide ``get_gt_labels()``; their metainfo describes the wrapped
    dataset, not the wrapper, so its ``class_counts`` is not used.

    Args:
        dataset (Any): The training dataset: an mmpretrain / MMEngine dataset, a wrapper of them, or any object
            with ``get_gt_labels()``.
        num_classes (int): Minimum length of the result. Defaults to 0.

    Returns:
        np.ndarray: Int64 counts of shape (max(num_classes, largest label + 1), ).
    """
    if isinstance(dataset, (ConcatDataset, TorchConcatDataset)):
        parts = [count_classes(part, num_classes) for part in dataset.datasets]
        length = max(len(part) for part in parts)
        return sum(np.pad(part, (0, length - len(part))) for part in parts)
    if isinstance(dataset, RepeatDataset):
        return dataset.times * count_classes(dataset.dataset, num_classes)
    if isinstance(dataset, ClassBalancedDataset):
        dataset.full_init()
        labels = _gt_labels(dataset.dataset)[np.asarray(dataset.repeat_indices, dtype=np.int64)]
        return np.bincount(labels, minlength=num_classes)
    is_wrapper = is_dataset_wrapper(dataset)
    metainfo = getattr(dataset, 'metainfo', None) or {}
    if not is_wrapper and metainfo.get('class_counts') is not None:
        counts = np.asarray(metainfo['class_counts'], dtype=np.int64).reshape(-1)
        if num_classes and len(counts) != num_classes:
            raise ValueError(f"{type(dataset).__name__}.metainfo['class_counts'] has {len(counts)} entries but "
                             f"metainfo['classes'] has {num_classes}.")
        return counts
    labels = _gt_labels(dataset)
    if labels.size and labels.min() < 0:
        raise ValueError(f'{type(dataset).__name__} has negative labels ({labels.min()}); ClassCountsHook expects '
                         f'single-label class indices; {_HINT}')
    return np.bincount(labels, minlength=num_classes)


@HOOKS.register_module()
class ClassCountsHook(Hook):
    """Give the training set's per-class sample counts to every module of the model that asks for them.

    Before training, every submodule with a ``set_class_counts`` method (the long-tail losses of lift_mm, any
    :class:`BaseClassCountsLoss`) receives the counts of ``runner.train_dataloader.dataset``, found as described in
    :func:`count_classes` (``metainfo['class_counts']``, else a count of ``get_gt_labels()``, which every mmpretrain
    dataset has), with the number of classes from ``metainfo['classes']``. If no module asks, the dataset is not
    read. The counts are not stored in checkpoints, so resumed runs get them the same way.

    Enable it with ``custom_hooks = [dict(type='ClassCountsHook')]``. Its priority is ``VERY_HIGH`` so that the
    counts are in place before other hooks' ``before_train`` could run the loss.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        receivers: List[Tuple[str, Any]] = [(name or type(module).__name__, module)
                                            for name, module in model.named_modules()
                                            if callable(getattr(module, 'set_class_counts', None))]
        if not receivers:
            runner.logger.debug('ClassCountsHook: no module of the model has set_class_counts; nothing to do.')
            return
        dataset = runner.train_dataloader.dataset
        names = ', '.join(name for name, _ in receivers)
        try:
            counts = count_classes(dataset, _num_classes(dataset))
        except (TypeError, ValueError) as err:
            raise RuntimeError(f'ClassCountsHook: {names} need per-class training counts, but they cannot be taken '
                               f'from {type(dataset).__name__}: {err}') from err
        for name, module in receivers:
            previous = getattr(module, 'class_counts', None)
            if isinstance(previous, torch.Tensor) and not np.array_equal(previous.cpu().numpy(), counts):
                runner.logger.warning(f'ClassCountsHook: replacing the class_counts of {name} (e.g. from the config) '
                                      "with the training set's.")
            try:
                module.set_class_counts(counts)
            except ValueError as err:
                raise ValueError(f'ClassCountsHook: the counts of {type(dataset).__name__} do not suit {name}: '
                                 f'{err}') from err
        runner.logger.info(f'ClassCountsHook: set class counts of {len(counts)} classes ({int(counts.sum())} samples, '
                           f'{int(counts.min())} to {int(counts.max())} per class) on {len(receivers)} module(s): '
                           f'{names}.')
