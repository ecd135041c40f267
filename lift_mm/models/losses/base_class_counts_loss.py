"""Common frame of the classification losses that depend on the training set's class counts."""
from abc import ABCMeta, abstractmethod
from typing import Optional

import torch
from torch import nn

from .class_counts_mixin import ClassCounts, ClassCountsMixin
from .utils import check_cls_score, resolve_reduction


class BaseClassCountsLoss(ClassCountsMixin, nn.Module, metaclass=ABCMeta):
    """Base of the losses that need per-class training counts, with mmpretrain's loss interface.

    ``forward(cls_score, label, weight, avg_factor, reduction_override)`` matches mmpretrain's losses, so a
    subclass can be used as ``loss=dict(type=...)`` of any mmpretrain head. Subclasses implement
    :meth:`compute_loss`.

    Args:
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None, in which case
            :class:`ClassCountsHook` sets them from the training set before training.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 class_counts: Optional[ClassCounts] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = resolve_reduction(reduction)
        self.loss_weight = loss_weight
        self.init_class_counts(class_counts)

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
