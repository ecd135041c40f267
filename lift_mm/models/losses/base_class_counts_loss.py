"""Common frame of the classification losses that depend on the training set's class counts."""
from abc import ABCMeta, abstractmethod
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .utils import check_cls_score, resolve_reduction

ClassCounts = Union[Sequence[int], np.ndarray, torch.Tensor]


def validate_class_counts(counts: ClassCounts) -> torch.Tensor:
    """Check per-class training counts and return them as a 1-D int64 tensor.

    Args:
        counts (Sequence[int] | np.ndarray | torch.Tensor): Number of training samples of each class.

    Returns:
        torch.Tensor: The counts, int64, shape (C, ).
    """
    if isinstance(counts, torch.Tensor):
        values = counts.detach().cpu().double()
    else:
        try:
            values = torch.as_tensor(np.asarray(counts, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f'class_counts must be a sequence of per-class sample counts, got {counts!r}.') from err
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f'class_counts must be a non-empty 1-D sequence, got shape {tuple(values.shape)}.')
    bad = torch.nonzero(~torch.isfinite(values) | (values != values.round()) | (values < 0)).flatten().tolist()
    if bad:
        raise ValueError(f'class_counts must hold non-negative whole numbers; class(es) {bad[:10]} have '
                         f'{values[bad[:10]].tolist()}.')
    empty = torch.nonzero(values == 0).flatten().tolist()
    if empty:
        raise ValueError(f'class_counts is 0 for class(es) {empty[:10]}{" ..." if len(empty) > 10 else ""}: a class '
                         'without training samples has prior 0 (log prior -inf), so long-tail losses are undefined. '
                         'Give every class at least one training sample or drop the empty classes.')
    return values.long()


class BaseClassCountsLoss(nn.Module, metaclass=ABCMeta):
    """Base of the losses that need per-class training counts, with mmpretrain's loss interface.

    ``forward(cls_score, label, weight, avg_factor, reduction_override)`` matches mmpretrain's losses, so a
    subclass can be used as ``loss=dict(type=...)`` of any mmpretrain head. Subclasses implement
    :meth:`compute_loss`.

    The counts are either given at construction or set later with :meth:`set_class_counts`, which
    :class:`ClassCountsHook` calls on every module of the model that has it before training starts. They are
    kept in a non-persistent int64 buffer: they move with ``module.to(device)``, are left out of
    ``state_dict`` (so checkpoints and ``load_state_dict`` are unaffected) and are not cast by
    ``module.half()``, since half precision cannot hold counts above 65504.

    Args:
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None, in which case
            :class:`ClassCountsHook` sets them from the training set before training.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    class_counts: Optional[torch.Tensor]

    def __init__(self,
                 class_counts: Optional[ClassCounts] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = resolve_reduction(reduction)
        self.loss_weight = loss_weight
        self.register_buffer('class_counts', None, persistent=False)
        if class_counts is not None:
            self.set_class_counts(class_counts)

    def set_class_counts(self, counts: ClassCounts) -> None:
        """Set (or replace) the per-class training counts.

        Args:
            counts (Sequence[int] | np.ndarray | torch.Tensor): Training samples of each class, all positive.
        """
        values = validate_class_counts(counts)
        # A module already moved to a device keeps its counts there.
        device = self.class_counts.device if self.class_counts is not None else values.device
        self.class_counts = values.to(device)

    def get_class_counts(self, num_classes: int, device: Union[str, torch.device]) -> torch.Tensor:
        """The counts as float64 on ``device``, checked against ``num_classes``.

        Args:
            num_classes (int): Number of classes of the logits they are used with.
            device (str | torch.device): Device of those logits.

        Returns:
            torch.Tensor: Float64 counts of shape (C, ).
        """
        if self.class_counts is None:
            raise RuntimeError(
                f'{type(self).__name__} needs the number of training samples per class, which are not set. Add '
                "`custom_hooks=[dict(type='ClassCountsHook')]` to the config to take them from the training set, "
                'or pass `class_counts=[...]` to the module.')
        if self.class_counts.numel() != num_classes:
            raise ValueError(f'{type(self).__name__} has class_counts for {self.class_counts.numel()} classes but '
                             f'the logits have {num_classes}; the counts must come from the same label set as the '
                             'head (check num_classes and the dataset).')
        if self.class_counts.device != torch.device(device):
            # ClassCountsHook sets CPU counts after the runner has moved the model; move them once, not per step.
            self.class_counts = self.class_counts.to(device)
        return self.class_counts.double()

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            cls_score (torch.Tensor): Logits of shape (N, C).
            label (torch.Tensor): Class indices (N, ), or one-hot / soft targets (N, C) where the loss allows.
            weight (torch.Tensor, optional): Sample weights of shape (N, ). Defaults to None.
            avg_factor (float, optional): Divisor of the summed loss for ``'mean'``. Defaults to None (N).
            reduction_override (str, optional): Reduction for this call. Defaults to None.

        Returns:
            torch.Tensor: The loss, multiplied by ``loss_weight``.
        """
        reduction = resolve_reduction(self.reduction, reduction_override)
        check_cls_score(cls_score)
        counts = self.get_class_counts(cls_score.shape[1], cls_score.device)
        loss = self.compute_loss(cls_score, label, counts, weight=weight, reduction=reduction, avg_factor=avg_factor)
        return self.loss_weight * loss

    @abstractmethod
    def compute_loss(self, cls_score: torch.Tensor, label: torch.Tensor, class_counts: torch.Tensor,
                     weight: Optional[torch.Tensor], reduction: str, avg_factor: Optional[float]) -> torch.Tensor:
        """The loss before ``loss_weight``, given float64 ``class_counts`` on the device of ``cls_score``."""
