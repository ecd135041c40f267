from typing import Optional

import torch

from mmpretrain.registry import MODELS
from .base_class_counts_loss import BaseClassCountsLoss
from .logit_adjusted_loss import logit_adjusted_loss


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
