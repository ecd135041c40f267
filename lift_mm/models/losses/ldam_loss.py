from typing import Optional

import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

from .base_class_counts_loss import BaseClassCountsLoss, ClassCounts
from .utils import class_stat_like, reduce_sample_loss, soft_cross_entropy, to_hard_class_indices


def ldam_margins(class_counts: torch.Tensor, max_margin: float = 0.5) -> torch.Tensor:
    """Per-class margins ``m_j = max_margin * (n_min / n_j)^(1/4)``, i.e. ``~ n_j^(-1/4)`` with the rarest class
    getting ``max_margin``.

    Args:
        class_counts (torch.Tensor): Positive training counts per class, shape (C, ).
        max_margin (float): Margin of the rarest class. Defaults to 0.5.

    Returns:
        torch.Tensor: Margins of shape (C, ), float64.
    """
    inv_fourth_root = class_counts.double().pow(-0.25)
    return inv_fourth_root * (max_margin / inv_fourth_root.max())


def ldam_loss(cls_score: torch.Tensor,
              label: torch.Tensor,
              class_counts: torch.Tensor,
              max_margin: float = 0.5,
              scale: float = 30.0,
              logits_scaled: bool = False,
              weight: Optional[torch.Tensor] = None,
              reduction: str = 'mean',
              avg_factor: Optional[float] = None) -> torch.Tensor:
    """LDAM loss: cross-entropy after subtracting the class margin from the true-class logit.

    ``logits_scaled=False``: ``CE(scale * (z - m_y e_y), y)``. ``logits_scaled=True`` (``z`` already multiplied by
    ``scale``): ``CE(z - scale * m_y e_y, y)``. Both are the same loss of the unscaled cosine logits.

    Args:
        cls_score (torch.Tensor): Logits ``z`` of shape (N, C).
        label (torch.Tensor): Class indices (N, ) or one-hot labels (N, C); soft labels raise.
        class_counts (torch.Tensor): Positive training counts per class, shape (C, ).
        max_margin (float): Margin of the rarest class. Defaults to 0.5.
        scale (float): Logit scale ``s``. Defaults to 30.0.
        logits_scaled (bool): Whether ``cls_score`` is already multiplied by ``scale``. Defaults to False.
        weight (torch.Tensor, optional): Sample weights of shape (N, ). Defaults to None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        avg_factor (float, optional): Divisor of the summed loss for ``'mean'``. Defaults to None.

    Returns:
        torch.Tensor: The loss.
    """
    indices = to_hard_class_indices(label, cls_score, 'LDAMLoss')
    one_hot = F.one_hot(indices, cls_score.shape[1])
    margins = class_stat_like(ldam_margins(class_counts, max_margin), cls_score)
    if logits_scaled:
        logits = cls_score - scale * margins * one_hot
    else:
        logits = scale * (cls_score - margins * one_hot)
    return reduce_sample_loss(soft_cross_entropy(logits, one_hot), weight, reduction, avg_factor)


@MODELS.register_module()
class LDAMLoss(BaseClassCountsLoss):
    """Label-distribution-aware margin loss of "Learning Imbalanced Datasets with Label-Distribution-Aware
    Margin Loss" (Cao et al., NeurIPS 2019).

    The true-class logit is lowered by ``m_y``, with ``m_j ~ n_j^(-1/4)`` scaled so the rarest class has
    ``max_margin``, and the logits are multiplied by ``scale`` before cross-entropy. Margins are defined on
    cosine logits in ``[-1, 1]``.

    ``scale`` and ``logits_scaled``: with a plain cosine head, leave ``logits_scaled=False`` and the loss
    computes ``CE(scale * (cos - m_y e_y))`` (Cao et al. use ``scale=30``). A head that already multiplies
    the cosines by its own scale (LIFT's cosine classifier, :class:`CosineClsHead` with ``scale=25``) passes
    ``scale * cos``; then set ``logits_scaled=True`` and ``scale`` to the head's scale, and only the margin is
    multiplied: ``CE(z - scale * m_y e_y)``. That is what LIFT does, passing its classifier scale as ``s``.
    Soft labels (Mixup, CutMix) raise an error, since the margin needs one true class.

    Args:
        max_margin (float): Margin of the rarest class. Defaults to 0.5.
        scale (float): Logit scale ``s``. Defaults to 30.0.
        logits_scaled (bool): Whether the head's logits already include ``scale``. Defaults to False.
        class_counts (Sequence[int], optional): Training samples per class. Defaults to None (set by
            :class:`ClassCountsHook`).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 max_margin: float = 0.5,
                 scale: float = 30.0,
                 logits_scaled: bool = False,
                 class_counts: Optional[ClassCounts] = None,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(class_counts=class_counts, reduction=reduction, loss_weight=loss_weight)
        if max_margin < 0 or scale <= 0:
            raise ValueError(f'LDAMLoss needs max_margin >= 0 and scale > 0, got max_margin={max_margin}, '
                             f'scale={scale}.')
        self.max_margin = max_margin
        self.scale = scale
        self.logits_scaled = logits_scaled

    def compute_loss(self, cls_score, label, class_counts, weight, reduction, avg_factor):
        return ldam_loss(cls_score, label, class_counts, self.max_margin, self.scale, self.logits_scaled, weight,
                         reduction, avg_factor)
