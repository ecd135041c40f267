from typing import Optional

import torch
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn import functional as F

from .utils import check_cls_score, reduce_sample_loss, resolve_reduction, to_soft_targets


def softmax_focal_loss(cls_score: torch.Tensor,
                       label: torch.Tensor,
                       gamma: float = 2.0,
                       weight: Optional[torch.Tensor] = None,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None) -> torch.Tensor:
    """Softmax focal loss ``-sum_j t_j (1 - p_j)^gamma log p_j`` with ``p = softmax(cls_score)``.

    For a one-hot target this is ``-(1 - p_y)^gamma log p_y``.

    Args:
        cls_score (torch.Tensor): Logits of shape (N, C).
        label (torch.Tensor): Class indices (N, ) or one-hot / soft targets ``t`` (N, C).
        gamma (float): Focusing parameter. Defaults to 2.0.
        weight (torch.Tensor, optional): Sample weights of shape (N, ). Defaults to None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        avg_factor (float, optional): Divisor of the summed loss for ``'mean'``. Defaults to None.

    Returns:
        torch.Tensor: The loss.
    """
    log_probs = F.log_softmax(cls_score, dim=-1)
    targets = to_soft_targets(label, cls_score).to(log_probs.dtype)
    # (1 - p) from log p stays accurate when p is close to 1, where 1 - softmax would cancel.
    modulator = (-torch.expm1(log_probs)).pow(gamma)
    loss = -(targets * modulator * log_probs).sum(dim=-1)
    return reduce_sample_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class SoftmaxFocalLoss(nn.Module):
    """Focal loss on softmax probabilities, from "Focal Loss for Dense Object Detection" (Lin et al., ICCV 2017).

    ``loss = -(1 - p_y)^gamma log p_y`` with ``p = softmax(z)``; soft targets ``t`` give
    ``-sum_j t_j (1 - p_j)^gamma log p_j``. mmpretrain's ``FocalLoss`` is the sigmoid (one-vs-rest) form;
    LIFT's focal loss is this softmax form, built with its default ``gamma=2.0``. It needs no class counts.

    Args:
        gamma (float): Focusing parameter; 0 gives plain cross-entropy. Defaults to 2.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, gamma: float = 2.0, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f'SoftmaxFocalLoss gamma={gamma} must be >= 0.')
        self.gamma = gamma
        self.reduction = resolve_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        """Compute the loss.

        Args:
            cls_score (torch.Tensor): Logits of shape (N, C).
            label (torch.Tensor): Class indices (N, ) or one-hot / soft targets (N, C).
            weight (torch.Tensor, optional): Sample weights of shape (N, ). Defaults to None.
            avg_factor (float, optional): Divisor of the summed loss for ``'mean'``. Defaults to None (N).
            reduction_override (str, optional): Reduction for this call. Defaults to None.

        Returns:
            torch.Tensor: The loss, multiplied by ``loss_weight``.
        """
        reduction = resolve_reduction(self.reduction, reduction_override)
        check_cls_score(cls_score)
        return self.loss_weight * softmax_focal_loss(cls_score, label, self.gamma, weight, reduction, avg_factor)
