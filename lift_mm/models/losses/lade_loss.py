import math
from typing import Optional

import torch
from mmpretrain.registry import MODELS

from .base_class_counts_loss import BaseClassCountsLoss, ClassCounts
from .logit_adjusted_loss import logit_adjusted_loss
from .utils import class_stat_like, to_soft_targets


def lade_regulariser(cls_score: torch.Tensor,
                     label: torch.Tensor,
                     class_counts: torch.Tensor,
                     remine_lambda: float = 0.1) -> torch.Tensor:
    """LADE regulariser ``R = -sum_j pi_j (A_j - B_j - lambda B_j^2)`` of a batch.

    ``A_j`` is the mean logit of class ``j`` over the batch's samples of class ``j`` (label mass ``N_j``; 0 when
    the batch has none), ``B_j = log((1/N) sum_i exp(z_ij - log pi_j + log(1/C)))`` over all N samples. See
    :class:`LADELoss`.

    Args:
        cls_score (torch.Tensor): Logits ``z`` of shape (N, C).
        label (torch.Tensor): Class indices (N, ) or one-hot / soft targets (N, C).
        class_counts (torch.Tensor): Positive training counts per class, shape (C, ).
        remine_lambda (float): Weight ``lambda`` of the ReMINE penalty ``B_j^2``. Defaults to 0.1.

    Returns:
        torch.Tensor: The scalar regulariser.
    """
    targets = to_soft_targets(label, cls_score)
    num_samples, num_classes = cls_score.shape
    counts = class_counts.double()
    prior = class_stat_like(counts / counts.sum(), cls_score)
    class_mass = targets.sum(dim=0)
    class_logit_sum = (targets * cls_score).sum(dim=0)
    # Classes absent from the batch contribute A_j = 0, as in LADE's and LIFT's code; the clamp keeps the unused
    # branch of `where` finite, since its gradient is still computed.
    mean_class_logit = torch.where(class_mass > 0, class_logit_sum / class_mass.clamp(min=1e-12),
                                   torch.zeros_like(class_logit_sum))
    balanced_logits = cls_score - torch.log(prior) + math.log(1.0 / num_classes)
    log_mean_exp = torch.logsumexp(balanced_logits, dim=0) - math.log(num_samples)
    lower_bound = mean_class_logit - log_mean_exp - remine_lambda * log_mean_exp.pow(2)
    return -(prior * lower_bound).sum()


def lade_loss(cls_score: torch.Tensor,
              label: torch.Tensor,
              class_counts: torch.Tensor,
              remine_lambda: float = 0.1,
              estim_loss_weight: float = 0.1,
              weight: Optional[torch.Tensor] = None,
              reduction: str = 'mean',
              avg_factor: Optional[float] = None) -> torch.Tensor:
    """LADE loss ``CE(z + log(pi), y) + estim_loss_weight * R``; see :class:`LADELoss`.

    Args:
        cls_score (torch.Tensor): Logits of shape (N, C).
        label (torch.Tensor): Class indices (N, ) or one-hot / soft targets (N, C).
        class_counts (torch.Tensor): Positive training counts per class, shape (C, ).
        remine_lambda (float): Weight of the ReMINE penalty. Defaults to 0.1.
        estim_loss_weight (float): Weight of the regulariser. Defaults to 0.1.
        weight (torch.Tensor, optional): Sample weights of the cross-entropy term, shape (N, ). Defaults to None.
        reduction (str): ``'mean'`` or ``'sum'`` of the cross-entropy term. Defaults to ``'mean'``.
        avg_factor (float, optional): Divisor of the summed cross-entropy for ``'mean'``. Defaults to None.

    Returns:
        torch.Tensor: The scalar loss.
    """
    if reduction == 'none':
        raise ValueError("LADELoss cannot use reduction='none': its regulariser is a statistic of the whole batch; "
                         "use 'mean' or 'sum'.")
    cross_entropy = logit_adjusted_loss(cls_score, label, class_counts, 1.0, weight, reduction, avg_factor)
    return cross_entropy + estim_loss_weight * lade_regulariser(cls_score, label, class_counts, remine_lambda)


@MODELS.register_module()
class LADELoss(BaseClassCountsLoss):
    """LADE loss of "Disentangling Label Distribution for Long-tailed Visual Recognition" (Hong et al., CVPR
    2021), as used by LIFT.

    With logits ``z`` (N, C), training prior ``pi_j = n_j / sum_k n_k`` and the balanced target prior ``1/C``::

        loss = CE(z + log(pi), y) + estim_loss_weight * R
        R    = -sum_j pi_j * (A_j - B_j - remine_lambda * B_j^2)
        A_j  = (1 / N_j) sum_{i: y_i = j} z_ij                       (0 if N_j = 0)
        B_j  = log( (1 / N) sum_{i=1..N} exp(z_ij - log(pi_j) + log(1/C)) )

    The first term is LADE-CE (prior-corrected cross-entropy, the same as :class:`LogitAdjustedLoss` with
    ``tau=1``). ``A_j - B_j`` is the Donsker-Varadhan lower bound of the KL divergence that estimates class ``j``'s
    log-likelihood ratio ``z_.j`` under the balanced target prior, and ``remine_lambda * B_j^2`` is the ReMINE
    penalty that pins ``B_j`` near 0; ``R`` maximises the bounds weighted by the prior. For soft targets ``t``,
    ``N_j = sum_i t_ij`` and ``A_j = sum_i t_ij z_ij / N_j``.

    ``R`` is a statistic of the whole batch: sample weights and ``avg_factor`` apply to the cross-entropy term
    only, ``R`` is added once, and ``reduction='none'`` is not available. LIFT adds ``1e-9`` inside the logs of
    ``pi``; counts here are positive, so it is left out.

    Args:
        remine_lambda (float): Weight of the ReMINE penalty. Defaults to 0.1.
        estim_loss_weight (float): Weight of the regulariser ``R``. Defaults to 0.1.
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None (set by
            :class:`ClassCountsHook`).
        reduction (str): ``'mean'`` or ``'sum'`` (of the cross-entropy term). Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 remine_lambda: float = 0.1,
                 estim_loss_weight: float = 0.1,
                 class_counts: Optional[ClassCounts] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(class_counts=class_counts, reduction=reduction, loss_weight=loss_weight)
        self.remine_lambda = remine_lambda
        self.estim_loss_weight = estim_loss_weight

    def compute_loss(self, cls_score, label, class_counts, weight, reduction, avg_factor):
        return lade_loss(cls_score, label, class_counts, self.remine_lambda, self.estim_loss_weight, weight,
                         reduction, avg_factor)
