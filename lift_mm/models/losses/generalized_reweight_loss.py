from typing import Optional

import torch

from mmpretrain.registry import MODELS
from .class_counts_mixin import ClassCounts
from .class_weighted_loss import ClassWeightedLoss


def generalized_reweight_weights(class_counts: torch.Tensor, exp_scale: float = 1.0) -> torch.Tensor:
    """Generalized re-weighting weights ``w_j = (1 / pi_j)^exp_scale``, normalised so ``sum_j w_j = C``.

    ``pi_j = n_j / sum_k n_k``; the normalisation makes this the same as ``(1 / n_j)^exp_scale`` normalised.

    Args:
        class_counts (torch.Tensor): Positive training counts per class, shape (C, ).
        exp_scale (float): Exponent; 0 gives equal weights, 1 inverse-frequency weights. Defaults to 1.0.

    Returns:
        torch.Tensor: Weights of shape (C, ), float64.
    """
    counts = class_counts.double()
    weights = (counts.sum() / counts).pow(exp_scale)
    return weights * (counts.numel() / weights.sum())


@MODELS.register_module()
class GeneralizedReweightLoss(ClassWeightedLoss):
    """Generalized re-weighting (GRW) cross-entropy of "Distribution Alignment: A Unified Framework for
    Long-tail Visual Recognition" (Zhang et al., CVPR 2021).

    ``loss_i = w_{y_i} CE(z_i, y_i)`` with ``w_j = (1 / pi_j)^exp_scale``, ``pi_j = n_j / sum_k n_k``, normalised
    to sum to the number of classes C, as in LIFT. Soft targets ``t`` give ``-sum_j w_j t_ij log p_ij``. See
    :class:`ClassWeightedLoss` for ``avg_by_class_weight``, which by default averages as LIFT does.

    Args:
        exp_scale (float): Exponent of the inverse class frequency. Defaults to 1.0.
        avg_by_class_weight (bool): Divide by the batch's total class weight for ``'mean'``. Defaults to True.
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None (set by
            :class:`ClassCountsHook`).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 exp_scale: float = 1.0,
                 avg_by_class_weight: bool = True,
                 class_counts: Optional[ClassCounts] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(avg_by_class_weight=avg_by_class_weight, class_counts=class_counts, reduction=reduction,
                         loss_weight=loss_weight)
        self.exp_scale = exp_scale

    def class_weight(self, class_counts: torch.Tensor) -> torch.Tensor:
        return generalized_reweight_weights(class_counts, self.exp_scale)
