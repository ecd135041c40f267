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
    ``w_k`` (unit vectors) and leave the bias at zero. The random initialisation is LIFT's: Kaiming-normal
    weights and a zero bias. Arguments: see :class:`ClassWeightHead`.
    """

    def __init__(self, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def random_weight(self) -> torch.Tensor:
        return nn.init.kaiming_normal_(torch.empty(self.num_classes, self.in_channels))

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Affine scores of the last feature."""
        return F.linear(self.pre_logits(feats), self.weight, self.bias)
