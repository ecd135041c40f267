"""Label conversion, reduction and cross-entropy helpers shared by the long-tail losses."""
from typing import Optional

import torch
from mmpretrain.models.losses.utils import weight_reduce_loss
from torch.nn import functional as F

REDUCTIONS = ('none', 'mean', 'sum')


def resolve_reduction(reduction: str, reduction_override: Optional[str] = None) -> str:
    """Pick ``reduction_override`` if given, else ``reduction``, and check it.

    Args:
        reduction (str): The loss's configured reduction.
        reduction_override (str, optional): Reduction for this call. Defaults to None.

    Returns:
        str: One of ``'none'``, ``'mean'`` and ``'sum'``.
    """
    chosen = reduction if reduction_override is None else reduction_override
    if chosen not in REDUCTIONS:
        raise ValueError(f'reduction={chosen!r} is not supported; use one of {REDUCTIONS}.')
    return chosen


def check_cls_score(cls_score: torch.Tensor) -> None:
    """Raise unless ``cls_score`` is a (N, C) tensor of logits."""
    if cls_score.dim() != 2:
        raise ValueError(f'cls_score must have shape (N, C), got {tuple(cls_score.shape)}.')


def to_soft_targets(label: torch.Tensor, cls_score: torch.Tensor) -> torch.Tensor:
    """Turn class indices or one-hot/soft labels into (N, C) float targets.

    Args:
        label (torch.Tensor): Integer class indices of shape (N, ) or (N, 1), or one-hot / soft targets of
            shape (N, C) (e.g. from Mixup or CutMix).
        cls_score (torch.Tensor): Logits of shape (N, C).

    Returns:
        torch.Tensor: Targets of shape (N, C) in the dtype of ``cls_score``.
    """
    check_cls_score(cls_score)
    num_samples, num_classes = cls_score.shape
    # With a single class, integer (N, 1) labels are indices, not targets.
    if label.dim() == 2 and label.shape[1] == num_classes and (label.is_floating_point() or num_classes > 1):
        if label.shape[0] != num_samples:
            raise ValueError(f'label has {label.shape[0]} rows but cls_score has {num_samples}.')
        return label.to(cls_score.dtype)
    return F.one_hot(to_class_indices(label, cls_score), num_classes).to(cls_score.dtype)


def to_class_indices(label: torch.Tensor, cls_score: torch.Tensor) -> torch.Tensor:
    """Check integer class indices of shape (N, ) or (N, 1) and return them as a (N, ) long tensor.

    Args:
        label (torch.Tensor): Integer class indices.
        cls_score (torch.Tensor): Logits of shape (N, C).

    Returns:
        torch.Tensor: Class indices of shape (N, ).
    """
    check_cls_score(cls_score)
    num_samples, num_classes = cls_score.shape
    if label.is_floating_point() or label.dim() not in (1, 2) or (label.dim() == 2 and label.shape[1] != 1):
        raise ValueError(f'label must be integer class indices of shape (N, ) or (N, 1), or one-hot/soft targets '
                         f'of shape (N, {num_classes}); got {label.dtype} of shape {tuple(label.shape)}.')
    indices = label.reshape(-1).long()
    if indices.numel() != num_samples:
        raise ValueError(f'label has {indices.numel()} entries but cls_score has {num_samples} rows.')
    if indices.numel() and (indices.min() < 0 or indices.max() >= num_classes):
        raise ValueError(f'label has class indices outside [0, {num_classes - 1}]: '
                         f'min {int(indices.min())}, max {int(indices.max())}.')
    return indices


def to_hard_class_indices(label: torch.Tensor, cls_score: torch.Tensor, loss_name: str) -> torch.Tensor:
    """Class indices from integer labels or exactly one-hot (N, C) labels; soft labels raise.

    Args:
        label (torch.Tensor): Class indices (N, ) / (N, 1), or one-hot labels (N, C).
        cls_score (torch.Tensor): Logits of shape (N, C).
        loss_name (str): Name of the calling loss, for the error message.

    Returns:
        torch.Tensor: Class indices of shape (N, ).
    """
    check_cls_score(cls_score)
    num_classes = cls_score.shape[1]
    if label.dim() == 2 and label.shape[1] == num_classes and num_classes > 1:
        is_one_hot = ((label == 0) | (label == 1)).all() and (label.sum(dim=1) == 1).all()
        if not is_one_hot:
            raise ValueError(f'{loss_name} needs one true class per sample, but got soft (N, C) labels, e.g. from '
                             'Mixup, CutMix or label smoothing; remove those batch augmentations for this loss.')
        label = label.argmax(dim=1)
    return to_class_indices(label, cls_score)


def class_stat_like(stat: torch.Tensor, cls_score: torch.Tensor) -> torch.Tensor:
    """Cast a per-class statistic for combination with ``cls_score``.

    Under mixed precision the logits are half precision; keeping the statistic in at least float32 makes the
    sum with the logits float32 too, so the loss is not computed in half precision.

    Args:
        stat (torch.Tensor): Per-class statistic of shape (C, ).
        cls_score (torch.Tensor): Logits of shape (N, C).

    Returns:
        torch.Tensor: ``stat`` on the device of ``cls_score``.
    """
    return stat.to(device=cls_score.device, dtype=torch.promote_types(cls_score.dtype, torch.float32))


def soft_cross_entropy(logits: torch.Tensor,
                       targets: torch.Tensor,
                       class_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sample cross-entropy ``-sum_j w_j t_ij log softmax(logits_i)_j`` without reduction.

    Args:
        logits (torch.Tensor): Logits of shape (N, C).
        targets (torch.Tensor): One-hot or soft targets of shape (N, C).
        class_weight (torch.Tensor, optional): Per-class weights ``w`` of shape (C, ). Defaults to None
            (all ones).

    Returns:
        torch.Tensor: Loss of each sample, shape (N, ).
    """
    log_probs = F.log_softmax(logits, dim=-1)
    targets = targets.to(log_probs.dtype)
    if class_weight is not None:
        targets = targets * class_weight
    return -(targets * log_probs).sum(dim=-1)


def reduce_sample_loss(loss: torch.Tensor,
                       weight: Optional[torch.Tensor] = None,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None) -> torch.Tensor:
    """Apply per-sample weights and reduce as mmpretrain's losses do.

    Args:
        loss (torch.Tensor): Loss of each sample, shape (N, ).
        weight (torch.Tensor, optional): Sample weights of shape (N, ). Defaults to None.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to ``'mean'``.
        avg_factor (float, optional): Divisor of the sum for ``'mean'`` instead of N. Defaults to None.

    Returns:
        torch.Tensor: The reduced loss.
    """
    if weight is not None:
        weight = weight.to(loss.dtype)
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)
