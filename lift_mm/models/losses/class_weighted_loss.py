"""Cross-entropy re-weighted per class by a function of the class counts."""
from abc import abstractmethod
from typing import Optional

import torch

from .base_class_counts_loss import BaseClassCountsLoss
from .class_counts_mixin import ClassCounts
from .utils import class_stat_like, reduce_sample_loss, soft_cross_entropy, to_soft_targets


def class_weighted_cross_entropy(cls_score: torch.Tensor,
                                 label: torch.Tensor,
                                 class_weight: torch.Tensor,
                                 avg_by_class_weight: bool = True,
                                 weight: Optional[torch.Tensor] = None,
                                 reduction: str = 'mean',
                                 avg_factor: Optional[float] = None) -> torch.Tensor:
    """Per-class weighted cross-entropy ``l_i = -sum_j w_j t_ij log p_ij``.

    Args:
        cls_score (torch.Tensor): Logits of shape (N, C).
        label (torch.Tensor): Class indices (N, ) or one-hot / soft targets ``t`` (N, C).
        class_weight (torch.Tensor): Per-class weights ``w`` of shape (C, ).
        avg_by_class_weight (bool): For ``'mean'``, divide ``sum_i s_i l_i`` by the batch's total weight
            ``sum_i s_i sum_j w_j t_ij`` (PyTorch's ``F.cross_entropy(weight=w)``; ``avg_factor`` unused) instead
            of by ``avg_factor`` or N. ``s_i`` are the sample weights (1 if not given). Defaults to True.
        weight (torch.Tensor, optional): Sample weights ``s`` of shape (N, ). Defaults to None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        avg_factor (float, optional): Divisor of the summed loss for ``'mean'`` when ``avg_by_class_weight`` is
            False. Defaults to None.

    Returns:
        torch.Tensor: The loss.
    """
    targets = to_soft_targets(label, cls_score)
    class_weight = class_stat_like(class_weight, cls_score)
    loss = soft_cross_entropy(cls_score, targets, class_weight)
    if avg_by_class_weight and reduction == 'mean':
        sample_class_weight = (targets.to(class_weight.dtype) * class_weight).sum(dim=-1)
        if weight is not None:
            sample_class_weight = sample_class_weight * weight.to(sample_class_weight.dtype)
        avg_factor = sample_class_weight.sum()
    return reduce_sample_loss(loss, weight, reduction, avg_factor)


class ClassWeightedLoss(BaseClassCountsLoss):
    """Base of the losses that weight each sample's cross-entropy by a weight of its class.

    Subclasses define :meth:`class_weight`, the per-class weights computed from the counts.

    Args:
        avg_by_class_weight (bool): For ``reduction='mean'``, divide by the batch's total class weight
            ``sum_i w_{y_i}``, as PyTorch's ``F.cross_entropy(weight=w)`` and LIFT do, rather than by the batch size
            (``avg_factor``, mmpretrain's convention for ``CrossEntropyLoss(class_weight=...)``). With weights
            normalised to mean 1 over classes, a long-tailed batch has ``sum_i w_{y_i}`` well below N, so the two
            differ by a batch-dependent factor that acts like a larger learning rate. Defaults to True.
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None (set by
            :class:`ClassCountsHook`).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 avg_by_class_weight: bool = True,
                 class_counts: Optional[ClassCounts] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(class_counts=class_counts, reduction=reduction, loss_weight=loss_weight)
        self.avg_by_class_weight = avg_by_class_weight

    @abstractmethod
    def class_weight(self, class_counts: torch.Tensor) -> torch.Tensor:
        """Per-class weights of shape (C, ) from float64 counts of shape (C, )."""

    def compute_loss(self, cls_score, label, class_counts, weight, reduction, avg_factor):
        return class_weighted_cross_entropy(cls_score, label, self.class_weight(class_counts),
                                           self.avg_by_class_weight, weight, reduction, avg_factor)
