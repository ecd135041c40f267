from typing import Optional

import torch

from mmpretrain.registry import MODELS
from .class_counts_mixin import ClassCounts
from .class_weighted_loss import ClassWeightedLoss


def class_balanced_weights(class_counts: torch.Tensor, beta: float = 0.9999) -> torch.Tensor:
    """Class-balanced weights ``w_j = (1 - beta) / (1 - beta^{n_j})``, normalised so ``sum_j w_j = C``.

    ``(1 - beta^n) / (1 - beta)`` is the effective number of samples of a class with ``n`` samples.

    Args:
        class_counts (torch.Tensor): Positive training counts per class, shape (C, ).
        beta (float): Hyper-parameter in ``[0, 1)``; 0 gives equal weights, values near 1 approach
            inverse-frequency weights. Defaults to 0.9999.

    Returns:
        torch.Tensor: Weights of shape (C, ), float64.
    """
    counts = class_counts.double()
    # -expm1(n log beta) = 1 - beta^n without the cancellation of 1 - pow for beta close to 1.
    weights = (1.0 - beta) / -torch.expm1(counts * torch.log(counts.new_tensor(beta)))
    return weights * (counts.numel() / weights.sum())


@MODELS.register_module()
class ClassBalancedLoss(ClassWeightedLoss):
    """Class-balanced softmax cross-entropy of "Class-Balanced Loss Based on Effective Number of Samples"
    (Cui et al., CVPR 2019).

    ``loss_i = w_{y_i} CE(z_i, y_i)`` with ``w_j = (1 - beta) / (1 - beta^{n_j})`` normalised to sum to the number
    of classes C, as in LIFT. Soft targets ``t`` give ``-sum_j w_j t_ij log p_ij``. See :class:`ClassWeightedLoss`
    for ``avg_by_class_weight``, which by default averages as LIFT does.

    Args:
        beta (float): Hyper-parameter in ``[0, 1)``. Defaults to 0.9999.
        avg_by_class_weight (bool): Divide by the batch's total class weight for ``'mean'``. Defaults to True.
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None (set by
            :class:`ClassCountsHook`).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 beta: float = 0.9999,
                 avg_by_class_weight: bool = True,
                 class_counts: Optional[ClassCounts] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(avg_by_class_weight=avg_by_class_weight, class_counts=class_counts, reduction=reduction,
                         loss_weight=loss_weight)
        if not 0 <= beta < 1:
            raise ValueError(f'ClassBalancedLoss beta={beta} must be in [0, 1).')
        self.beta = beta

    def class_weight(self, class_counts: torch.Tensor) -> torch.Tensor:
        return class_balanced_weights(class_counts, self.beta)
