import os
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from ...utils import load_classnames
from ..utils import build_open_clip, build_tokenizer, encode_class_prompts, to_image_feature_space


@MODELS.register_module()
class CosineClsHead(ClsHead):
    """Cosine classifier, ``logits = scale * cos(feature, w_k)``, optionally initialised from CLIP text.

    With ``text_init``, :meth:`init_weights` (called by MMEngine's Runner before training) sets ``w_k`` to CLIP's
    text feature of the prompted class name, L2-normalised, mapped through the transpose of CLIP's visual
    projection and L2-normalised again, which puts it in the space of the pre-projection image feature. The
    CLIP model used for this is built, used and dropped there; it never becomes part of the trained module.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        scale (float): Multiplier of the cosine similarities. Defaults to 25.
        classnames (Sequence[str] | str, optional): Class names, or a class-name file of
            ``identifier class name`` lines. Required with ``text_init``. Defaults to None.
        text_init (dict, optional): CLIP to take text features from: ``arch``, ``pretrained`` and ``quick_gelu``
            as for :class:`CLIPVisionTransformer`, and ``templates``, prompt templates whose features are
            averaged (default ``['a photo of a {}.']``). None keeps a random initialisation. Defaults to None.
        loss (dict): Config of the loss. Defaults to ``dict(type='CrossEntropyLoss')``.
        topk (int | Tuple[int]): Top-k accuracy reported in training. Defaults to ``(1, )``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 scale: float = 25.,
                 classnames: Union[Sequence[str], str, None] = None,
                 text_init: Optional[dict] = None,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 topk: Union[int, Tuple[int]] = (1, ),
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(loss=loss, topk=topk, init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer.')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.scale = scale
        # A class-name file is read now when it exists (so a wrong count fails at build time), and otherwise
        # only when the names are needed, so testing and counting work without the dataset's files.
        self._classnames_source = classnames
        self._classnames = None
        if not (isinstance(classnames, str) and not os.path.isfile(classnames)):
            self._classnames = None if classnames is None else load_classnames(classnames, num_classes)
        if text_init is not None:
            unknown = set(text_init) - {'arch', 'pretrained', 'quick_gelu', 'templates'}
            if unknown:
                raise KeyError(f'`text_init` has unknown keys {sorted(unknown)}; valid keys: arch, pretrained, '
                               'quick_gelu, templates.')
            if classnames is None:
                raise ValueError('`text_init` needs `classnames` (a list, or the class-name file).')
        self.text_init = text_init
        self.weight = nn.Parameter(torch.empty(num_classes, in_channels))
        nn.init.normal_(self.weight, std=in_channels**-0.5)

    @property
    def classnames(self) -> Optional[List[str]]:
        """The class names, read from the class-name file on first use."""
        if self._classnames is None and self._classnames_source is not None:
            self._classnames = load_classnames(self._classnames_source, self.num_classes)
        return self._classnames

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Scaled cosine similarities between the last feature and every class weight."""
        features = self.pre_logits(feats)
        return self.scale * F.linear(F.normalize(features, dim=-1), F.normalize(self.weight, dim=-1))

    def init_weights(self) -> None:
        super().init_weights()
        if self.text_init is not None:
            self.weight.data.copy_(self.text_classifier())

    def text_classifier(self) -> torch.Tensor:
        """Class weights from CLIP text features, as described in the class docstring."""
        cfg = dict(self.text_init)
        templates = cfg.pop('templates', ['a photo of a {}.'])
        clip = build_open_clip(**cfg)
        features = encode_class_prompts(clip, build_tokenizer(cfg['arch']), self.classnames, templates)
        weights = to_image_feature_space(features, getattr(clip.visual, 'proj', None))
        if weights.shape != self.weight.shape:
            raise ValueError(f'CLIP text features map to {weights.shape[1]}-d weights but the head has '
                             f'in_channels={self.in_channels}: `text_init` must name the CLIP of the backbone.')
        return weights
