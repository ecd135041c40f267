from typing import Optional, Tuple

import torch
from mmpretrain.registry import MODELS

from ..utils import SharedCLIP, freeze
from .class_weight_head import TEXT_INIT_PREFIX
from .cosine_cls_head import CosineClsHead


@MODELS.register_module()
class ZeroShotClsHead(CosineClsHead):
    """Zero-shot CLIP: cosine similarities between the projected image feature and the class prompts' text
    features, scaled by CLIP's learned logit scale.

    Pair it with ``CLIPVisionTransformer(light_modules=[], out_projected=True)`` (or a ``CLIPResNet``) in a
    ``CLIPImageClassifier``, which lends the head the backbone's CLIP. The class weights are computed when the
    model is built, so the model evaluates with ``tools/test.py CONFIG`` without a checkpoint and without
    training: when the classifier lends the backbone's CLIP, or, for a head that names its own CLIP in
    ``text_init``, in ``__init__``. The prompts are encoded by :class:`CLIPTextEncoder`, the text tower that the
    text-side methods of :class:`TextEncoderClsHead` train; with the single prompt ``'a photo of a {}.'``
    (``prompt='default'``) this is zero-shot CLIP as LIFT's and LIFT+'s papers report it.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of CLIP's joint space (512 for ViT-B/16).
        text_init (dict): Prompts (and, without a CLIP backbone, the CLIP), as for :class:`ClassWeightHead`;
            ``prompt='ensemble'`` gives the 80 ImageNet templates open_clip ships.
        scale (float, optional): Multiplier of the cosine similarities; None takes CLIP's own logit scale
            (100 for OpenAI's models). Defaults to None.
        **kwargs: ``classnames``, ``loss``, ``topk``, ``init_cfg`` of :class:`ClassWeightHead`.
    """
    text_in_joint_space = True

    def __init__(self, num_classes: int, in_channels: int, text_init: dict, scale: Optional[float] = None,
                 **kwargs) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels, text_init=text_init, scale=1., **kwargs)
        freeze(self.weight)
        self._fixed_scale = scale
        self._encoded = False
        if 'arch' in self.text_init:
            self._encode(self.text_clip())

    def _encode(self, clip: SharedCLIP) -> None:
        self.scale = clip.model.logit_scale.exp().item() if self._fixed_scale is None else self._fixed_scale
        self.load_class_weights(self.text_classifier(clip))
        self._encoded = True

    def use_backbone_clip(self, clip: Optional[SharedCLIP]) -> None:
        """Take the backbone's CLIP (see :class:`ClassWeightHead`) and compute the class weights with it."""
        super().use_backbone_clip(clip)
        if not self._encoded:
            self._encode(self.text_clip())

    def init_weights(self) -> None:
        """The text classifier is already in place (computed when the model was built)."""
        self._is_init = True

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        if not self._encoded:
            raise RuntimeError(
                'ZeroShotClsHead has no text classifier: it names no CLIP in `model.head.text_init` and was not '
                "lent one by a CLIP backbone. Use type='CLIPImageClassifier' for the model, or set "
                f'`{TEXT_INIT_PREFIX}arch`, `pretrained` and `quick_gelu`.')
        return super().forward(feats)
