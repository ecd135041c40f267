"""Logit adjustment by the training label prior, and balanced softmax, the same loss at ``tau=1``."""
from typing import Optional

import torch
from mmpretrain.registry import MODELS

from .base_class_counts_loss import BaseClassCountsLoss, ClassCounts
from .utils import class_stat_like, reduce_sample_loss, soft_cross_entropy, to_soft_targets


def logit_adjusted_loss(cls_score: torch.Tensor,
                        label: torch.Tensor,
                        class_counts: torch.Tensor,
                        tau: float = 1.0,
                        weight: Optional[torch.Tensor] = None,
                        reduction: str = 'mean',
                        avg_factor: Optional[float] = None) -> torch.Tensor:
    """Logit-adjusted cross-entropy: ``CE(cls_score + tau * log(prior), label)``, ``prior = n / sum(n)``.

    Args:
        cls_score (torch.Tensor): Logits of shape (N, C).
        label (torch.Tensor): Class indices (N, ) or one-hot / soft targets (N, C).
        class_counts (torch.Tensor): Positive training counts per class, shape (C, ).
        tau (float): Strength of the adjustment. Defaults to 1.0.
        weight (torch.Tensor, optional): Sample weights of shape (N, ). Defaults to None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        avg_factor (float, optional): Divisor of the summed loss for ``'mean'``. Defaults to None.

    Returns:
        torch.Tensor: The loss.
    """
    counts = class_counts.double()
    log_prior = class_stat_like(torch.log(counts / counts.sum()), cls_score)
    loss = soft_cross_entropy(cls_score + tau * log_prior, to_soft_targets(label, cls_score))
    return reduce_sample_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class LogitAdjustedLoss(BaseClassCountsLoss):
    """Logit-adjusted loss of "Long-tail learning via logit adjustment" (Menon et al., ICLR 2021).

    ``loss = CE(z + tau * log(pi), y)`` with ``pi_j = n_j / sum_k n_k`` the training label prior. Training on the
    adjusted logits makes the raw logits ``z`` estimate the class-balanced posterior, so predictions use ``z``
    unchanged. This is LIFT's default loss (``tau=1``).

    Args:
        tau (float): Strength of the adjustment; 0 gives plain cross-entropy. Defaults to 1.0.
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None (set by
            :class:`ClassCountsHook`).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 tau: float = 1.0,
                 class_counts: Optional[ClassCounts] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(class_counts=class_counts, reduction=reduction, loss_weight=loss_weight)
        self.tau = tau

    def compute_loss(self, cls_score, label, class_counts, weight, reduction, avg_factor):
        return logit_adjusted_loss(cls_score, label, class_counts, self.tau, weight, reduction, avg_factor)


def balanced_softmax_loss(cls_score: torch.Tensor,
                          label: torch.Tensor,
                          class_counts: torch.Tensor,
                          weight: Optional[torch.Tensor] = None,
                          reduction: str = 'mean',
                          avg_factor: Optional[float] = None) -> torch.Tensor:
    """Balanced softmax cross-entropy: ``CE(cls_score + log(n), label)``.

    Args:
        cls_score (torch.Tensor): Logits of shape (N, C).
        label (torch.Tensor): Class indices (N, ) or one-hot / soft targets (N, C).
        class_counts (torch.Tensor): Positive training counts per class, shape (C, ).
        weight (torch.Tensor, optional): Sample weights of shape (N, ). Defaults to None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        avg_factor (float, optional): Divisor of the summed loss for ``'mean'``. Defaults to None.

    Returns:
        torch.Tensor: The loss.
    """
    # log(n) and log(n / sum(n)) differ by a constant, which softmax ignores: this is logit adjustment, tau = 1.
    return logit_adjusted_loss(cls_score, label, class_counts, 1.0, weight, reduction, avg_factor)


@MODELS.register_module()
class BalancedSoftmaxLoss(BaseClassCountsLoss):
    """Balanced softmax of "Balanced Meta-Softmax for Long-Tailed Visual Recognition" (Ren et al., NeurIPS 2020).

    ``loss = CE(z + log(n), y)`` with ``n_j`` the training samples of class ``j``. Softmax ignores a constant
    shift of the logits, so this equals :class:`LogitAdjustedLoss` with ``tau=1``. (LIFT's reference trainer
    writes ``==`` where it should assign this loss, so it never builds it; here the loss is built and used.)

    Args:
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None (set by
            :class:`ClassCountsHook`).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def compute_loss(self, cls_score, label, class_counts, weight, reduction, avg_factor):
        return balanced_softmax_loss(cls_score, label, class_counts, weight, reduction, avg_factor)
