from typing import Tuple

import torch
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn import functional as F

from .class_weight_head import ClassWeightHead


@MODELS.register_module()
class LayerNormedClsHead(ClassWeightHead):
    """Layer-normalised feature times L2-normalised weights: ``logits = LN(feature) . w_k / ||w_k||``.

    LIFT's ``LayerNormedClassifier``: the layer norm has no affine parameters (and eps 1e-12), so it only
    standardises the feature; the head's parameters are the class weights alone. Arguments and
    initialisations: see :class:`ClassWeightHead`.
    """

    def __init__(self, num_classes: int, in_channels: int, **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)
        self.norm = nn.LayerNorm(in_channels, eps=1e-12, elementwise_affine=False)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Products of the standardised last feature with every normalised class weight."""
        return F.linear(self.norm(self.pre_logits(feats)), F.normalize(self.weight, dim=-1))
