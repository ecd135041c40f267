"""A CLIP classifier whose class weights are the text encoder's features of the class prompts (CoOp, CLIP-Adapter,
projection tuning, light modules in the text transformer)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn import functional as F

from ...utils import load_classnames
from ..peft.adapter import AdapterMLP
from ..utils import SharedCLIP, freeze, make_state_dict_compact
from .clip_text_encoder import CLIPTextEncoder

# Where this head's keys sit in a config, for error messages.
HEAD_PREFIX = 'model.head.'
CLIP_ADAPTER_KEYS = ('bottleneck', 'image', 'text', 'ratio')


def _drop_text_cache(head: 'TextEncoderClsHead', incompatible_keys) -> None:
    # A function of the module, not a closure, so that copies and pickles of the head keep a hook of their own.
    head.drop_text_cache()


class CLIPJointSpace(nn.Module):
    """CLIP's map of the image feature into the joint image-text space, and its logit scale, copied from a CLIP.

    Args:
        clip (nn.Module): The open_clip CLIP model to copy them from.
    """

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        proj = getattr(clip.visual, 'proj', None)
        # CLIP ResNets pool into the joint space themselves: they have no separate projection.
        self.image_proj = None if proj is None else nn.Parameter(proj.detach().clone())
        self.logit_scale = nn.Parameter(clip.logit_scale.detach().clone())


class ClipAdapter(nn.Module):
    """CLIP-Adapter's bottleneck on features of the joint space.

    LIFT+ adds it as a residual, ``x + A(x)``; the original CLIP-Adapter (Gao et al., IJCV 2024) blends,
    ``ratio * A(x) + (1 - ratio) * x``. ``A`` is :class:`~lift_mm.models.peft.adapter.AdapterMLP` (LayerNorm, down
    projection, ReLU, up projection starting at zero), so an untrained adapter keeps the direction of ``x``. Its
    down projection starts Kaiming-normal as LIFT's adapters do; LIFT+'s starts Kaiming-uniform (a different random
    start, the same function once trained weights are loaded).

    Args:
        width (int): Width of the features.
        bottleneck (int): Hidden width.
        ratio (float, optional): Blend ratio ``alpha`` of the original CLIP-Adapter, in (0, 1]; None for LIFT+'s
            residual. Defaults to None.
    """

    def __init__(self, width: int, bottleneck: int, ratio: Optional[float] = None) -> None:
        super().__init__()
        self.bottleneck = AdapterMLP(width, bottleneck)
        self.ratio = ratio

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ratio is None:
            return x + self.bottleneck(x)
        return self.ratio * self.bottleneck(x) + (1 - self.ratio) * x

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}'


@MODELS.register_module()
class TextEncoderClsHead(ClsHead):
    """CLIP as a classifier: ``logits = exp(logit_scale) * cos(image_proj(f), text_proj(t_k))``.

    The class weights are CLIP's text features of the class prompts (``template`` filled with each class name),
    computed by a :class:`CLIPTextEncoder` that may train context vectors (CoOp) or light modules inside the text
    transformer. ``f`` is the backbone's pre-projection feature (``CLIPVisionTransformer`` with
    ``out_projected=False``), mapped into the joint space by CLIP's visual projection ``image_proj``; a CLIP ResNet
    backbone outputs joint-space features already. The logit scale is CLIP's own (100 for OpenAI's weights). With
    nothing trainable, this is zero-shot CLIP with one prompt.

    The CLIP is the backbone's: build the model as ``type='CLIPImageClassifier'``, which lends the head the CLIP
    its backbone loaded (:meth:`use_backbone_clip`). The head keeps CLIP's text tower, a copy of the visual
    projection and the logit scale, all frozen except what a method trains; checkpoints keep only what trained
    (plus fingerprints of the frozen weights, checked on load), like the backbone's.

    Text features are recomputed in every training step only when the text encoder trains (context vectors, text
    light modules, the text projection); otherwise, and always outside training, they are computed once and
    cached. The cache is dropped when the mode changes (``train()`` / ``eval()``, i.e. when training resumes or
    ends) and when weights are loaded. The classes are encoded in chunks of ``chunk_size`` prompts.

    Cost: a training step with a trainable text encoder runs the text transformer over the prompts of all ``K``
    classes (forward, a recomputed forward per chunk, backward). For CLIP ViT-B/16's text tower with CoOp, counted
    from the shapes: about 2.6 TFLOP for ImageNet-LT's 1,000 classes and 25 TFLOP for iNaturalist 2018's 8,142,
    against 1.1 TFLOP for the forward pass of a batch of 32 images through the frozen image encoder; measured on a
    2-core CPU, 39 s and 364 s (extrapolated from 512 classes). See ``configs/baselines/README.md``, "What a
    training step costs".

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Width of the backbone's feature (768 for ViT-B/16's pre-projection feature).
        classnames (Sequence[str] | str | dict): Class names, a class-name file or a dataset config to take them
            from (read when first needed), see :func:`lift_mm.utils.load_classnames`.
        template (str): The prompt, a ``str.format`` pattern with one ``{}`` for the class name (underscores in
            names become spaces). Defaults to ``'a photo of a {}.'``, LIFT+'s.
        context (dict, optional): CoOp's learnable context, as for :class:`CLIPTextEncoder`. Defaults to None.
        text_light_modules (Sequence[dict | str]): Light modules inside the text transformer, as for
            :class:`CLIPTextEncoder`. Defaults to ``()``.
        clip_adapter (dict, optional): CLIP-Adapter, see :class:`ClipAdapter`. Keys: ``bottleneck`` (hidden width,
            default 4), ``image`` and ``text`` (adapt the image / text features, both default True), ``ratio`` (the
            original CLIP-Adapter's blend ratio; default None, LIFT+'s residual). Defaults to None.
        tune_image_projection (bool): Train CLIP's visual projection in place (projection tuning). Defaults to
            False.
        tune_text_projection (bool): Train CLIP's text projection in place. Defaults to False.
        chunk_size (int): Class prompts encoded per call of the text transformer; bounds the memory of the
            encoding (with gradients, each chunk is recomputed in the backward pass). Defaults to 256.
        loss (dict): Config of the loss. Defaults to ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        topk (int | Tuple[int]): Top-k accuracy reported in training. Defaults to ``(1, )``.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 classnames: Union[Sequence[str], str, dict],
                 template: str = 'a photo of a {}.',
                 context: Optional[dict] = None,
                 text_light_modules: Sequence[Union[dict, str]] = (),
                 clip_adapter: Optional[dict] = None,
                 tune_image_projection: bool = False,
                 tune_text_projection: bool = False,
                 chunk_size: int = 256,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 topk: Union[int, Tuple[int]] = (1, ),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(loss=loss, topk=topk, init_cfg=init_cfg)
        if num_classes <= 0:
            raise ValueError(f'`{HEAD_PREFIX}num_classes`={num_classes} must be a positive integer.')
        if not isinstance(template, str) or template.count('{}') != 1:
            raise ValueError(f'`{HEAD_PREFIX}template`={template!r} must be a string with one {{}} for the class '
                             "name, e.g. 'a photo of a {}.'.")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.template = template
        self._classnames_source = classnames
        self._classnames = None
        if isinstance(classnames, (list, tuple)):
            self._classnames = load_classnames(classnames, num_classes)
        self.clip_adapter = None if clip_adapter is None else self._check_clip_adapter(dict(clip_adapter))
        self._encoder_cfg = dict(light_modules=text_light_modules, context=context, chunk_size=chunk_size)
        self.tune_image_projection = tune_image_projection
        self.tune_text_projection = tune_text_projection
        # Built from the backbone's CLIP by use_backbone_clip.
        self.text_encoder: Optional[CLIPTextEncoder] = None
        self.joint_space: Optional[CLIPJointSpace] = None
        self.image_adapter: Optional[ClipAdapter] = None
        self.text_adapter: Optional[ClipAdapter] = None
        self._cached_text: Optional[torch.Tensor] = None
        self.register_load_state_dict_post_hook(_drop_text_cache)

    @staticmethod
    def _check_clip_adapter(cfg: dict) -> dict:
        unknown = set(cfg) - set(CLIP_ADAPTER_KEYS)
        if unknown:
            raise KeyError(f'`{HEAD_PREFIX}clip_adapter` has unknown keys {sorted(unknown)}; valid keys: '
                           f'{", ".join(CLIP_ADAPTER_KEYS)}.')
        cfg = dict(dict(bottleneck=4, image=True, text=True, ratio=None), **cfg)
        if not (cfg['image'] or cfg['text']):
            raise ValueError(f'`{HEAD_PREFIX}clip_adapter` adapts neither the image nor the text features: set '
                             '`image=True` or `text=True`, or `clip_adapter=None`.')
        ratio = cfg['ratio']
        if ratio is not None and not 0 < ratio <= 1:
            raise ValueError(f'`{HEAD_PREFIX}clip_adapter.ratio`={ratio!r} must lie in (0, 1] (the weight of the '
                             "adapter's output in the blend), or be None for LIFT+'s residual adapter.")
        if not isinstance(cfg['bottleneck'], int) or cfg['bottleneck'] <= 0:
            raise ValueError(f'`{HEAD_PREFIX}clip_adapter.bottleneck`={cfg["bottleneck"]!r} must be a positive '
                             'integer.')
        return cfg

    @property
    def classnames(self) -> List[str]:
        """The class names, read on first use."""
        if self._classnames is None:
            self._classnames = load_classnames(self._classnames_source, self.num_classes)
        return self._classnames

    def use_backbone_clip(self, clip: Optional[SharedCLIP]) -> None:
        """Build the text encoder, the joint space and the adapters from the backbone's CLIP: called by
        :class:`~lift_mm.models.classifiers.CLIPImageClassifier` after building the backbone and the head.

        Args:
            clip (SharedCLIP, optional): The backbone's CLIP, or None when the backbone is not a CLIP encoder.
        """
        if clip is None:
            raise ValueError('TextEncoderClsHead classifies with the text tower of the backbone\'s CLIP, and the '
                             'backbone is not a CLIP encoder: use a CLIPVisionTransformer or CLIPResNet backbone.')
        self.text_encoder = CLIPTextEncoder(clip, num_classes=self.num_classes, **self._encoder_cfg)
        joint_space = CLIPJointSpace(clip.model)
        width = (self.text_encoder.output_dims
                 if joint_space.image_proj is None else joint_space.image_proj.shape[0])
        if width != self.in_channels:
            raise ValueError(
                f'`{HEAD_PREFIX}in_channels`={self.in_channels}, but the backbone\'s CLIP feeds {width}-d features '
                'into its projection: set it to the width of the pre-projection feature (768 for ViT-B/16), with '
                '`model.backbone.out_projected=False`.')
        freeze(joint_space)
        # Checkpoints keep only what trains. The backbone's fingerprint already covers this CLIP (and names the
        # config key to fix), so the copy's is not checked again.
        make_state_dict_compact(joint_space, '', check_fingerprint=False)
        if self.tune_image_projection:
            if joint_space.image_proj is None:
                raise ValueError(f'`{HEAD_PREFIX}tune_image_projection=True`, but this CLIP has no separate visual '
                                 'projection (a CLIP ResNet pools into the joint space): set it to False.')
            joint_space.image_proj.requires_grad_(True)
        if self.tune_text_projection:
            projection = self.text_encoder.text.text_projection
            if projection is None:
                raise ValueError(f'`{HEAD_PREFIX}tune_text_projection=True`, but this CLIP has no text projection: '
                                 'set it to False.')
            projection.requires_grad_(True)
        self.joint_space = joint_space
        if self.clip_adapter is not None:
            dims, bottleneck, ratio = self.text_encoder.output_dims, self.clip_adapter['bottleneck'], \
                self.clip_adapter['ratio']
            self.image_adapter = ClipAdapter(dims, bottleneck, ratio) if self.clip_adapter['image'] else None
            self.text_adapter = ClipAdapter(dims, bottleneck, ratio) if self.clip_adapter['text'] else None

    def _require_clip(self) -> None:
        if self.text_encoder is None:
            raise RuntimeError(
                'TextEncoderClsHead has no text encoder: it takes the CLIP of the backbone, which only a '
                "CLIPImageClassifier lends it. Set `model.type='CLIPImageClassifier'` with a CLIP backbone.")

    @property
    def text_trains(self) -> bool:
        """Whether the class features change with training (the text encoder has trainable weights)."""
        self._require_clip()
        return self.text_encoder.trainable

    def drop_text_cache(self) -> None:
        """Forget the cached class features (they are computed again when next needed)."""
        self._cached_text = None

    def class_features(self, device: torch.device) -> torch.Tensor:
        """The text encoder's features of the class prompts, of shape (num_classes, joint width), before the text
        adapter: computed with gradients in training when the text encoder trains, else taken from the cache."""
        if self.training and self.text_trains:
            return self.text_encoder.encode_classes(self.classnames, self.template)
        if self._cached_text is None or self._cached_text.device != device:
            with torch.no_grad():
                self._cached_text = self.text_encoder.encode_classes(self.classnames, self.template)
        return self._cached_text

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """CLIP's scaled cosine similarities between the projected image feature and the class features."""
        self._require_clip()
        image = self.pre_logits(feats)
        if self.joint_space.image_proj is not None:
            image = image @ self.joint_space.image_proj
        text = self.class_features(image.device)
        if self.image_adapter is not None:
            image = self.image_adapter(image)
        if self.text_adapter is not None:
            text = self.text_adapter(text)
        cosines = F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()
        return self.joint_space.logit_scale.exp() * cosines

    def train(self, mode: bool = True) -> nn.Module:
        """Switch the mode; the cached class features are dropped, since training may change them."""
        self.drop_text_cache()
        return super().train(mode)
