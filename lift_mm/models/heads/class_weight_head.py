import os
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from mmpretrain.models.heads import ClsHead
from ...utils import load_classnames
from ..utils import build_open_clip, build_tokenizer, encode_class_prompts, to_image_feature_space
from .text_prompts import PROMPT_SETS, class_descriptions, load_descriptors, prompt_templates

TEXT_INIT_KEYS = ('arch', 'pretrained', 'quick_gelu', 'prompt', 'templates', 'descriptors')


class ClassWeightHead(ClsHead):
    """Base of the lift_mm classifiers: one weight vector ``w_k`` per class, set randomly, from text or images.

    Subclasses only define how logits follow from the feature and the weights (:meth:`forward`). The weights
    start as LIFT's random initialisation (rows drawn from the cube [-1, 1]^d, scaled to unit norm) and can be
    replaced:

    * from CLIP text, with ``text_init``: :meth:`init_weights` (called by MMEngine's Runner before training and
      before any checkpoint is loaded) sets ``w_k`` to CLIP's text feature of the class's prompts (each
      L2-normalised, averaged over the prompts), mapped into the space of the image backbone's feature (through
      the transpose of a ViT's visual projection, see :func:`to_image_feature_space`) and L2-normalised. The CLIP
      model used for this is built, used and dropped there; it never becomes part of the trained module.
    * from image features of the training set (class means, k-shot class means, linear probing) by
      :class:`HeadInitHook`, through :meth:`load_class_weights`.

    The class-name file and the descriptor file are read (and checked against each other) at build time when they
    exist, and otherwise when first needed, so a model can be built and tested without them.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the input feature.
        classnames (Sequence[str] | str | dict, optional): Class names, a class-name file (``identifier class
            name`` lines, or iNaturalist's ``categories.json``), or a dataset config to take them from (read when
            needed); see :func:`lift_mm.utils.load_classnames`. Required with ``text_init``. Defaults to None.
        text_init (dict, optional): CLIP text initialisation. Keys: ``arch``, ``pretrained`` and ``quick_gelu``
            as for :class:`CLIPVisionTransformer` (the CLIP of the backbone); ``prompt``, one of LIFT's prompt
            sets ``'default'`` (``'a photo of a {}.'``, the default), ``'classname'`` (``'{}'``), ``'ensemble'``
            (CLIP's 80 ImageNet templates) or ``'descriptor'`` (per-class descriptions from the JSON file
            ``descriptors``, which maps each class name to a list of descriptions); or ``templates``, your own
            list of ``str.format`` patterns instead of ``prompt``. None keeps the random initialisation.
            Defaults to None.
        loss (dict): Config of the loss. Defaults to ``dict(type='CrossEntropyLoss')``.
        topk (int | Tuple[int]): Top-k accuracy reported in training. Defaults to ``(1, )``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    # True for heads that classify features in CLIP's joint image-text space, where text features need no mapping.
    text_in_joint_space = False

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 classnames: Union[Sequence[str], str, dict, None] = None,
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
        # A class-name file is read now when it exists (so a wrong count fails at build time), and otherwise
        # only when the names are needed, so testing and counting work without the dataset's files.
        self._classnames_source = classnames
        self._classnames = None
        if isinstance(classnames, (list, tuple)) or isinstance(classnames, str) and os.path.isfile(classnames):
            self._classnames = load_classnames(classnames, num_classes)
        self._descriptions: Optional[List[List[str]]] = None
        self.text_init = None if text_init is None else self._check_text_init(dict(text_init), classnames)
        self.weight = nn.Parameter(self.random_weight())

    def _check_text_init(self, text_init: dict, classnames) -> dict:
        unknown = set(text_init) - set(TEXT_INIT_KEYS)
        if unknown:
            raise KeyError(f'`text_init` has unknown keys {sorted(unknown)}; valid keys: {", ".join(TEXT_INIT_KEYS)}.')
        if classnames is None:
            raise ValueError('`text_init` needs `classnames` (a list, or the class-name file).')
        if 'prompt' in text_init and 'templates' in text_init:
            raise ValueError('`text_init`: give `prompt` (a named prompt set) or `templates` (your own), not both.')
        prompt = text_init.setdefault('prompt', None if 'templates' in text_init else 'default')
        if prompt is not None and prompt not in PROMPT_SETS:
            raise ValueError(f'`text_init.prompt`={prompt!r} is not a prompt set; valid: {list(PROMPT_SETS)}.')
        if (prompt == 'descriptor') != ('descriptors' in text_init):
            raise ValueError("`text_init.descriptors` (the descriptor JSON file) is required with "
                             "prompt='descriptor' and only used there.")
        # Like the class names, descriptions are checked now when both are at hand, else when needed.
        if prompt == 'descriptor' and os.path.isfile(text_init['descriptors']) and self._classnames is not None:
            self._class_descriptions(text_init['descriptors'])
        templates = text_init.get('templates')
        if templates is not None and (isinstance(templates, str) or not templates
                                      or not all(isinstance(t, str) and '{}' in t for t in templates)):
            raise ValueError(f'`text_init.templates` must be a non-empty list of strings with a {{}} for the class '
                             f'name, got {templates!r}.')
        return text_init

    @property
    def classnames(self) -> Optional[List[str]]:
        """The class names, read from the class-name file on first use."""
        if self._classnames is None and self._classnames_source is not None:
            self._classnames = load_classnames(self._classnames_source, self.num_classes)
        return self._classnames

    def _class_descriptions(self, path: str) -> List[List[str]]:
        if self._descriptions is None:
            self._descriptions = class_descriptions(load_descriptors(path), self.classnames, path)
        return self._descriptions

    def random_weight(self) -> torch.Tensor:
        """LIFT's random class weights: directions uniform in the cube [-1, 1]^d, scaled to unit norm."""
        return F.normalize(torch.empty(self.num_classes, self.in_channels).uniform_(-1, 1), dim=-1)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Logits of the last feature of ``feats``."""
        raise NotImplementedError

    def init_weights(self) -> None:
        super().init_weights()
        if self.text_init is not None:
            self.load_class_weights(self.text_classifier())

    def load_class_weights(self, weights: torch.Tensor) -> None:
        """Replace the class weights by ``weights`` of shape (num_classes, in_channels)."""
        if tuple(weights.shape) != tuple(self.weight.shape):
            raise ValueError(f'Class weights of shape {tuple(weights.shape)} do not fit the head: it has '
                             f'num_classes={self.num_classes} and in_channels={self.in_channels}.')
        with torch.no_grad():
            self.weight.copy_(weights)

    def text_classifier(self, clip: Optional[nn.Module] = None) -> torch.Tensor:
        """Class weights from CLIP text features, as described in the class docstring.

        Args:
            clip (nn.Module, optional): The CLIP model named by ``text_init``, if the caller has built it
                already. Defaults to None (built here).
        """
        cfg = dict(self.text_init)
        prompt, templates, descriptors = (cfg.pop(key, None) for key in ('prompt', 'templates', 'descriptors'))
        # Files are read before CLIP is built, so that a missing one fails fast.
        descriptions = self._class_descriptions(descriptors) if prompt == 'descriptor' else None
        classnames = self.classnames
        clip = clip if clip is not None else build_open_clip(**cfg)
        tokenizer = build_tokenizer(cfg['arch'])
        if descriptions is not None:
            # Each description is a whole prompt; a class's feature is the mean of its descriptions'.
            features = torch.stack([
                encode_class_prompts(clip, tokenizer, texts, ['{}']).mean(dim=0) for texts in descriptions
            ])
        else:
            features = encode_class_prompts(clip, tokenizer, classnames, templates or prompt_templates(prompt))
        visual_proj = None if self.text_in_joint_space else getattr(clip.visual, 'proj', None)
        weights = to_image_feature_space(features, visual_proj)
        if weights.shape[1] != self.in_channels:
            raise ValueError(f'CLIP text features map to {weights.shape[1]}-d weights but the head has '
                             f'in_channels={self.in_channels}: `text_init` must name the CLIP of the backbone.')
        return weights
