import os
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.heads import ClsHead
from torch import nn
from torch.nn import functional as F

from ...utils import load_classnames
from ..utils import SharedCLIP
from .clip_text_encoder import CLIPTextEncoder
from .text_init import (PROMPT_SETS, class_descriptions, encode_class_prompts, load_descriptors, prompt_templates,
                        to_image_feature_space)

CLIP_KEYS = ('arch', 'pretrained', 'quick_gelu')
TEXT_INIT_KEYS = CLIP_KEYS + ('separate_clip', 'prompt', 'templates', 'descriptors')
# Where a head's CLIP keys sit in a config, for error messages.
TEXT_INIT_PREFIX = 'model.head.text_init.'


class ClassWeightHead(ClsHead):
    """Base of the lift_mm classifiers: one weight vector ``w_k`` per class, set randomly, from text or images.

    Subclasses only define how logits follow from the feature and the weights (:meth:`forward`). The weights
    start as LIFT's random initialisation (rows drawn from the cube [-1, 1]^d, scaled to unit norm) and can be
    replaced:

    * from CLIP text, with ``text_init``: :meth:`init_weights` (called by MMEngine's Runner before training and
      before any checkpoint is loaded) sets ``w_k`` to CLIP's text feature of the class's prompts (each
      L2-normalised, averaged over the prompts), mapped into the space of the image backbone's feature (through
      the transpose of a ViT's visual projection, see :func:`to_image_feature_space`) and L2-normalised. The CLIP
      is the backbone's own: a :class:`~lift_mm.models.classifiers.CLIPImageClassifier` lends the head the model
      its CLIP backbone loaded (:meth:`use_backbone_clip`), so the weights are read once, and the text tower is
      released after use; it never becomes part of the trained module.
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
        text_init (dict, optional): CLIP text initialisation. Keys: ``prompt``, one of LIFT's prompt sets
            ``'default'`` (``'a photo of a {}.'``, the default), ``'classname'`` (``'{}'``), ``'ensemble'`` (CLIP's
            80 ImageNet templates) or ``'descriptor'`` (per-class descriptions from the JSON file ``descriptors``,
            which maps each class name to a list of descriptions); or ``templates``, your own list of
            ``str.format`` patterns instead of ``prompt``. The CLIP is the backbone's (``model.backbone.arch``,
            ``pretrained``, ``quick_gelu``). Without a CLIP backbone to follow (a head built on its own, in a plain
            ``ImageClassifier`` or after another backbone), name it with ``arch``, ``pretrained`` and
            ``quick_gelu`` as for :class:`CLIPVisionTransformer`; next to a CLIP backbone, these must agree with
            it unless ``separate_clip=True`` says that the text features come from another CLIP on purpose.
            None keeps the random initialisation. Defaults to None.
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
        # The backbone's CLIP, lent by the classifier (see use_backbone_clip); not a submodule.
        self._backbone_clip: Optional[SharedCLIP] = None
        self.weight = nn.Parameter(self.random_weight())

    def _check_text_init(self, text_init: dict, classnames) -> dict:
        unknown = set(text_init) - set(TEXT_INIT_KEYS)
        if unknown:
            raise KeyError(f'`text_init` has unknown keys {sorted(unknown)}; valid keys: {", ".join(TEXT_INIT_KEYS)}.')
        if classnames is None:
            raise ValueError('`text_init` needs `classnames` (a list, or the class-name file).')
        if 'prompt' in text_init and 'templates' in text_init:
            raise ValueError('`text_init`: give `prompt` (a named prompt set) or `templates` (your own), not both.')
        if text_init.get('separate_clip') and 'arch' not in text_init:
            raise ValueError(f'`{TEXT_INIT_PREFIX}separate_clip=True` takes the text features from another CLIP than '
                             f"the backbone's: name it with `{TEXT_INIT_PREFIX}arch` and `pretrained`.")
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

    def use_backbone_clip(self, clip: Optional[SharedCLIP]) -> None:
        """Take the text initialisation's CLIP from the backbone: called by the classifier after building both.

        Args:
            clip (SharedCLIP, optional): The backbone's CLIP, or None when the backbone is not a CLIP encoder.
        """
        if self.text_init is None or self.text_init.get('separate_clip'):
            return
        # quick_gelu=None asks for the automatic choice, which the backbone has made.
        named = {key: value for key, value in self.text_init.items()
                 if key in CLIP_KEYS and not (key == 'quick_gelu' and value is None)}
        if clip is None:
            if 'arch' not in named:
                raise ValueError(
                    f'`model.head.text_init` needs a CLIP for the text features, and the backbone is not a CLIP '
                    f'encoder to take it from: set `{TEXT_INIT_PREFIX}arch`, `pretrained` and `quick_gelu`, or '
                    '`model.head.text_init=None` for a random initialisation.')
            return
        differing = {key: value for key, value in named.items() if value != clip.config()[key]}
        if differing:
            raise ValueError(
                '`model.head.text_init` names another CLIP than the backbone: '
                + ', '.join(f'`{TEXT_INIT_PREFIX}{key}`={value!r} but `model.backbone.{key}`={clip.config()[key]!r}'
                            for key, value in differing.items())
                + f'. Remove {sorted(differing)} from `model.head.text_init` to take the text features from the '
                f"backbone's CLIP, or set `{TEXT_INIT_PREFIX}separate_clip=True` to use that other CLIP on purpose.")
        self._backbone_clip = clip

    def text_clip(self) -> SharedCLIP:
        """The CLIP of the text initialisation: the backbone's, else the one ``text_init`` names."""
        if self._backbone_clip is not None:
            return self._backbone_clip
        if 'arch' not in self.text_init:
            raise ValueError(
                f'`model.head.text_init` names no CLIP and none was lent by a CLIP backbone. Build the model as '
                "type='CLIPImageClassifier' with a CLIP backbone (CLIPVisionTransformer, CLIPResNet) to take the "
                f"backbone's, or set `{TEXT_INIT_PREFIX}arch`, `pretrained` and `quick_gelu`.")
        return SharedCLIP(**{key: self.text_init[key] for key in CLIP_KEYS if key in self.text_init},
                          key_prefix=TEXT_INIT_PREFIX)

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

    def text_classifier(self, clip: Optional[SharedCLIP] = None) -> torch.Tensor:
        """Class weights from CLIP text features, as described in the class docstring.

        The text features are all that is needed from the CLIP: its loaded model is released afterwards.

        Args:
            clip (SharedCLIP, optional): The CLIP to encode the prompts with. Defaults to None
                (:meth:`text_clip`).
        """
        prompt, templates, descriptors = (self.text_init.get(key) for key in ('prompt', 'templates', 'descriptors'))
        # Files are read before CLIP is loaded, so that a missing one fails fast.
        descriptions = self._class_descriptions(descriptors) if prompt == 'descriptor' else None
        classnames = self.classnames
        clip = clip if clip is not None else self.text_clip()
        encoder = CLIPTextEncoder(clip)
        if descriptions is not None:
            # Each description is a whole prompt; a class's feature is the mean of its descriptions'.
            features = torch.stack([
                encode_class_prompts(encoder, texts, ['{}']).mean(dim=0) for texts in descriptions
            ])
        else:
            features = encode_class_prompts(encoder, classnames, templates or prompt_templates(prompt))
        visual_proj = None if self.text_in_joint_space else getattr(clip.model.visual, 'proj', None)
        weights = to_image_feature_space(features, visual_proj)
        clip.release()
        if weights.shape[1] != self.in_channels:
            raise ValueError(f'CLIP text features map to {weights.shape[1]}-d weights but the head has '
                             f'in_channels={self.in_channels}: the text features must come from the CLIP of the '
                             'backbone.')
        return weights
