from typing import Tuple

import torch
from mmpretrain.registry import MODELS
from torch.nn import functional as F

from .class_weight_head import ClassWeightHead


@MODELS.register_module()
class L2NormedClsHead(ClassWeightHead):
    """Linear classifier with L2-normalised weights and no bias: ``logits = feature . w_k / ||w_k||``.

    LIFT's ``L2NormedClassifier``. The feature keeps its norm, so unlike :class:`CosineClsHead` the logits'
    scale follows the backbone. Arguments and initialisations: see :class:`ClassWeightHead`.
    """

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Products of the last feature with every normalised class weight."""
        return F.linear(self.pre_logits(feats), F.normalize(self.weight, dim=-1))
