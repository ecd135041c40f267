"""Cross-entropy re-weighted per class by a function of the class counts: the shared base, class-balanced and
generalized re-weighting."""
from abc import abstractmethod
from typing import Optional

import torch
from mmpretrain.registry import MODELS

from .base_class_counts_loss import BaseClassCountsLoss, ClassCounts
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
