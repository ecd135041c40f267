from typing import Optional

import torch

from mmpretrain.registry import MODELS
from ..utils import build_open_clip, freeze
from .cosine_cls_head import CosineClsHead


@MODELS.register_module()
class ZeroShotClsHead(CosineClsHead):
    """Zero-shot CLIP: cosine similarities between the projected image feature and the class prompts' text
    features, scaled by CLIP's learned logit scale.

    Pair it with ``CLIPVisionTransformer(light_modules=[], out_projected=True)`` (or a ``CLIPResNet``). The
    class weights come from ``text_init`` already when the head is built, so the model evaluates with
    ``tools/test.py CONFIG`` without a checkpoint and without training.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of CLIP's joint space (512 for ViT-B/16).
        text_init (dict): CLIP and prompts, as for :class:`ClassWeightHead`; ``prompt='ensemble'`` gives the 80
            ImageNet templates open_clip ships.
        scale (float, optional): Multiplier of the cosine similarities; None takes CLIP's own logit scale
            (100 for OpenAI's models). Defaults to None.
        **kwargs: ``classnames``, ``loss``, ``topk``, ``init_cfg`` of :class:`ClassWeightHead`.
    """
    text_in_joint_space = True

    def __init__(self, num_classes: int, in_channels: int, text_init: dict, scale: Optional[float] = None,
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, text_init=text_init, scale=1., **kwargs)
        clip_keys = ('arch', 'pretrained', 'quick_gelu')
        clip = build_open_clip(**{key: text_init[key] for key in clip_keys if key in text_init})
        self.scale = clip.logit_scale.exp().item() if scale is None else scale
        self.load_class_weights(self.text_classifier(clip))
        freeze(self.weight)

    def init_weights(self) -> None:
        """The text classifier is already in place (built in ``__init__``)."""
        self._is_init = True
