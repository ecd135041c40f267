from typing import Tuple

import torch
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn import functional as F

from .class_weight_head import ClassWeightHead


@MODELS.register_module()
class LIFTLinearClsHead(ClassWeightHead):
    """Plain linear classifier with bias, ``logits = feature . w_k + b_k``: LIFT's ``LinearClassifier``.

    Unlike mmpretrain's ``LinearClsHead`` it takes every initialisation of :class:`ClassWeightHead`; those set
    ``w_k`` (unit vectors) and leave the bias at zero; the bias starts at zero in every case.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the feature.
        random_init (str): The random initialisation of the weights: ``'kaiming_normal'`` (LIFT's
            ``LinearClassifier``) or ``'unit_uniform'`` (LIFT+'s: rows uniform in [-1, 1]^d scaled to unit norm,
            as every other head of LIFT and LIFT+ starts). Defaults to ``'kaiming_normal'``.
        **kwargs: The other arguments of :class:`ClassWeightHead`.
    """

    def __init__(self, num_classes: int, in_channels: int, random_init: str = 'kaiming_normal', **kwargs) -> None:
        if random_init not in ('kaiming_normal', 'unit_uniform'):
            raise ValueError(f"LIFTLinearClsHead: `random_init`={random_init!r} must be 'kaiming_normal' (LIFT's) "
                             "or 'unit_uniform' (LIFT+'s).")
        # Read by random_weight(), which the base class calls while it is built.
        self.random_init = random_init
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def random_weight(self) -> torch.Tensor:
        if self.random_init == 'unit_uniform':
            return super().random_weight()
        return nn.init.kaiming_normal_(torch.empty(self.num_classes, self.in_channels))

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Affine scores of the last feature."""
        return F.linear(self.pre_logits(feats), self.weight, self.bias)
