from typing import Tuple

import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

from .class_weight_head import ClassWeightHead


@MODELS.register_module()
class CosineClsHead(ClassWeightHead):
    """Cosine classifier, LIFT's default: ``logits = scale * cos(feature, w_k)``.

    Initialisations: see :class:`ClassWeightHead`.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        scale (float): Multiplier of the cosine similarities. Defaults to 25.
        **kwargs: ``classnames``, ``text_init``, ``loss``, ``topk`` and ``init_cfg`` of
            :class:`ClassWeightHead`.
    """

    def __init__(self, num_classes: int, in_channels: int, scale: float = 25., **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, **kwargs)
        self.scale = scale

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Scaled cosine similarities between the last feature and every class weight."""
        features = self.pre_logits(feats)
        return self.scale * F.linear(F.normalize(features, dim=-1), F.normalize(self.weight, dim=-1))
