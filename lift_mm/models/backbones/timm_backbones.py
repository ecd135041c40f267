"""timm's ImageNet-pretrained encoders as frozen lift_mm backbones: the ViTs and ResNets LIFT+ adds to CLIP.

LIFT+ builds them with timm's default weights of each name (``vit_base_patch16_224(pretrained=True)`` and so
on). With timm 1.0 these tags are ImageNet-21k pre-trained weights fine-tuned on ImageNet-1k:
``vit_base_patch16_224.augreg2_in21k_ft_in1k``, ``vit_base_patch16_384.augreg_in21k_ft_in1k``,
``vit_large_patch16_224.augreg_in21k_ft_in1k`` and ``vit_large_patch16_384.augreg_in21k_ft_in1k`` (normalised
with mean and std 0.5), and ``resnet50.a1_in1k``, ``resnet101.a1h_in1k`` and ``resnet152.a1h_in1k`` (ImageNet's
mean and std). Naming the tag in ``model_name`` keeps a config's weights fixed across timm versions.
"""
import os
import pickle
from typing import Optional, Sequence, Tuple, Union

import timm
import torch
from mmengine.logging import MMLogger
from mmpretrain.models.backbones import TIMMBackbone
from mmpretrain.registry import MODELS
from safetensors import SafetensorError
from timm.layers import Mlp
from timm.models.resnet import ResNet
from timm.models.vision_transformer import Attention, Block, VisionTransformer
from torch import nn

from ...utils import messages_dropped
from ...utils.checkpoint_safety import weights_only_refusal
from ..peft import inject_light_modules
from ..peft.base import BlockParts, TunableBlock
from ..utils import FrozenFoundationMixin
from ..utils.open_clip_factory import RANDOM_INIT_SEED
from .resnet_light_modules import ResNetLightModules

# The stages of a ResNet that LIFT+ tunes in place; its stem stays frozen.
RESNET_STAGES = ('layer1', 'layer2', 'layer3', 'layer4')
# What obtaining or reading weights raises (hub and network errors are OSErrors; a file of other weights fails the
# state-dict load); errors of the model's own arguments (TypeError, AssertionError) pass unchanged.
LOAD_ERRORS = (OSError, RuntimeError, ValueError, KeyError, SafetensorError)
# What ``pretrained`` takes, for error messages.
PRETRAINED_ACCEPTS = ("True (timm's default weights of `model_name`, or of the tag it names, from the Hugging Face "
                      'hub or its cache), False (random weights from a fixed seed) or the path of a checkpoint file '
                      'of the model as timm saves it (`model.state_dict()`, .pth or .safetensors)')


# The lines mmpretrain's TIMMBackbone logs about timm's feature_info.
FEATURE_INFO_LINES = r'^backbone (feature_info\[\d+\]|out_indices|out_channels|out_strides): '


def _unpickling_error(error: BaseException) -> Optional[pickle.UnpicklingError]:
    """The refusal of torch's weights-only unpickling that ``error`` was raised from, if any (timm re-raises it
    as a RuntimeError that advises unsafe loading)."""
    while error is not None and not isinstance(error, pickle.UnpicklingError):
        error = error.__cause__ or error.__context__
    return error


class TimmFoundation(FrozenFoundationMixin, TIMMBackbone):
    """A timm model (``timm_model``) built by mmpretrain's ``TIMMBackbone`` without its classifier, with its
    weights from timm's hub, a local file or a fixed seed; subclasses freeze it and add light modules.

    Args:
        model_name (str): timm model name, optionally with a pretrained tag (``'vit_base_patch16_224'``,
            ``'vit_base_patch16_224.augreg2_in21k_ft_in1k'``).
        pretrained (bool | str): True for timm's weights of ``model_name`` (from the Hugging Face hub; offline,
            from huggingface_hub's cache with ``HF_HUB_OFFLINE=1``), a local checkpoint file (loaded by timm
            with weights-only unpickling, through the model's checkpoint filter, which also resamples position
            embeddings for another ``img_size``), or False for random weights from a fixed seed.
        **kwargs: Further arguments of ``timm.create_model`` (``img_size``, ...).
    """
    # The timm model class a subclass supports, and examples of its names, for error messages.
    MODEL_TYPE: type = nn.Module
    EXAMPLES: Tuple[str, ...] = ()

    def __init__(self, model_name: str, pretrained: Union[bool, str], **kwargs) -> None:
        kind = type(self).__name__
        if not (isinstance(model_name, str) and timm.is_model(model_name)):
            raise ValueError(f'{kind}: `model_name`={model_name!r} is not a timm model; it takes names such as '
                             f'{list(self.EXAMPLES)} (all: timm.list_models()).')
        if type(pretrained) is not bool and not isinstance(pretrained, str):
            raise TypeError(f'{kind}: `pretrained`={pretrained!r} must be {PRETRAINED_ACCEPTS}.')
        if isinstance(pretrained, str):
            if not os.path.isfile(pretrained):
                raise FileNotFoundError(f'{kind}: `pretrained`={pretrained!r} is no file; it takes '
                                        f'{PRETRAINED_ACCEPTS}.')
            kwargs['pretrained_cfg_overlay'] = dict(file=pretrained)
        # TIMMBackbone logs timm's feature_info (one line per block, on every build, HeadInitHook's copy too): a
        # development aid that says nothing about a run, which reads only the final feature.
        with messages_dropped(MMLogger.get_current_instance(), FEATURE_INFO_LINES):
            if pretrained is False:
                # Every process, and the frozen copy HeadInitHook builds, must get the same random weights.
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(RANDOM_INIT_SEED)
                    super().__init__(model_name=model_name, pretrained=False, **kwargs)
            else:
                self._build_pretrained(model_name, pretrained, kwargs)
        if not isinstance(self.timm_model, self.MODEL_TYPE):
            raise ValueError(f'{kind}: timm builds `model_name`={model_name!r} as a {type(self.timm_model).__name__}'
                             f', not a {self.MODEL_TYPE.__name__} ({list(self.EXAMPLES)}, ...).')
        # The classifier is gone, so timm records ``num_classes = 0``; mmpretrain's ClassNumCheckHook (in the
        # default runtime) compares every module's ``num_classes`` with the dataset's classes and would stop
        # every run. The feature forward never reads it.
        del self.timm_model.num_classes
        self.timm_model.eval()

    def _build_pretrained(self, model_name: str, pretrained: Union[bool, str], kwargs: dict) -> None:
        kind = type(self).__name__
        try:
            super().__init__(model_name=model_name, pretrained=True, **kwargs)
        except LOAD_ERRORS as error:
            refused = _unpickling_error(error)
            if refused is not None:
                raise weights_only_refusal(f'{kind}: `pretrained`={pretrained!r}', refused,
                                           PRETRAINED_ACCEPTS) from error
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if isinstance(pretrained, str):
                raise ValueError(f'{kind}: `pretrained`={pretrained!r} holds no weights of timm\'s {model_name!r} '
                                 f'({reason}); it takes {PRETRAINED_ACCEPTS}. A checkpoint of a trained lift_mm '
                                 'model goes to `load_from` or tools/test.py instead.') from error
            raise RuntimeError(
                f"{kind}: could not obtain timm's pretrained weights of {model_name!r} ({reason}). Without internet "
                'access, set `model.backbone.pretrained` to a local checkpoint file, or copy huggingface_hub\'s '
                'cache of the weights from a machine that has them and set HF_HUB_OFFLINE=1.') from error


class TimmTunableBlock(TunableBlock):
    """:class:`TunableBlock` for timm's ViT ``Block``: fused ``qkv`` linear, ``proj``, ``Mlp`` (``fc1``,
    ``act``, ``fc2``) and LayerScale (``ls1``, ``ls2``, identities when the model has none).

    Blocks whose forward differs from that are refused: q/k normalisation, a norm or gate on the attention
    output, a head width other than width / heads, a gated or normalised MLP, or another block type. Dropouts
    and drop-path are not applied: the frozen host runs as in eval mode.
    """

    def __init__(self, block: nn.Module) -> None:
        problem = self._unsupported(block)
        if problem:
            raise ValueError(f'TimmTunableBlock supports timm ViT `Block`s with a plain attention (fused qkv, no '
                             'q/k norm, no norm or gate on its output, head width = width / heads) and a two-linear '
                             f'`Mlp`; this block has {problem}.')
        super().__init__(block)

    @staticmethod
    def _unsupported(block: nn.Module) -> Optional[str]:
        if type(block) is not Block:
            return f'the type {type(block).__name__}'
        attn, mlp = block.attn, block.mlp
        if type(attn) is not Attention:
            return f'the attention {type(attn).__name__}'
        norms = [getattr(attn, name, None) for name in ('q_norm', 'k_norm', 'norm')]
        if not all(norm is None or isinstance(norm, nn.Identity) for norm in norms):
            return 'q/k or attention-output normalisation'
        if getattr(attn, 'gate', None) is not None:
            return 'an attention gate'
        if attn.qkv.out_features != 3 * attn.proj.out_features or attn.proj.in_features != attn.proj.out_features:
            return f'attention width {attn.proj.in_features} for residual width {attn.proj.out_features}'
        if type(mlp) is not Mlp or not isinstance(mlp.norm, nn.Identity) or not isinstance(mlp.fc1, nn.Linear):
            return f'the MLP {type(mlp).__name__} (normalised or convolutional)'
        return None

    def parts(self) -> BlockParts:
        block = self.block
        return BlockParts(
            ln_1=block.norm1, qkv_weight=block.attn.qkv.weight, qkv_bias=block.attn.qkv.bias,
            out_proj=block.attn.proj, num_heads=block.attn.num_heads, ls_1=block.ls1, ln_2=block.norm2,
            fc1=block.mlp.fc1, act=block.mlp.act, fc2=block.mlp.fc2, ls_2=block.ls2)


@MODELS.register_module()
class TimmVisionTransformer(TimmFoundation):
    """A timm ViT (LIFT+'s ImageNet-21k ``vit_base_patch16_224``, ``vit_base_patch16_384``,
    ``vit_large_patch16_224``, ``vit_large_patch16_384``), frozen, with light modules injected into its blocks.

    The output is LIFT+'s feature, the class token after the final norm (timm's pre-logits feature of
    class-token pooled ViTs), 768-d for ViT-B. Every light module of :class:`CLIPVisionTransformer` works here;
    ``BitFit``, ``FullFineTuning`` and the other host-tuning kinds act on each block. Models without a class
    token, average-pooled ones (``fc_norm``) and those that take any input size (``dynamic_img_size``) are
    refused, as are blocks :class:`TimmTunableBlock` cannot run.

    Args:
        model_name (str): timm model name, optionally with a pretrained tag, e.g.
            ``'vit_base_patch16_224.augreg2_in21k_ft_in1k'`` (see the module docstring for LIFT+'s tags).
        pretrained (bool | str): True for timm's weights of ``model_name``, a local checkpoint file, or False for
            fixed-seed random weights, see :class:`TimmFoundation`. Defaults to True.
        light_modules (Sequence[dict | str]): Light module configs, as for :class:`CLIPVisionTransformer`.
            Defaults to LIFT's AdaptFormer.
        num_classes (int, optional): Number of classes, for ``'auto'`` light-module sizes. Defaults to None.
        compact_state_dict (bool): Leave the frozen timm weights out of the state dict; they are rebuilt from
            ``model_name`` and ``pretrained`` on load. Defaults to True.
        check_fingerprint (bool): Refuse checkpoints trained on other timm weights. Defaults to True.
        **kwargs: Further arguments of ``timm.create_model``, such as ``img_size`` (timm resamples the pretrained
            position embeddings to it).
    """
    MODEL_TYPE = VisionTransformer
    EXAMPLES = ('vit_base_patch16_224', 'vit_base_patch16_384', 'vit_large_patch16_224', 'vit_large_patch16_384')

    def __init__(self,
                 model_name: str,
                 pretrained: Union[bool, str] = True,
                 light_modules: Sequence[Union[dict, str]] = (dict(type='AdaptFormer'), ),
                 num_classes: Optional[int] = None,
                 compact_state_dict: bool = True,
                 check_fingerprint: bool = True,
                 **kwargs) -> None:
        super().__init__(model_name, pretrained, **kwargs)
        vit = self.timm_model
        # Average-pooled ViTs normalise after pooling (``fc_norm``) instead of before (``norm``).
        if not vit.has_class_token or not isinstance(vit.fc_norm, nn.Identity) or isinstance(vit.norm, nn.Identity):
            raise ValueError(f"TimmVisionTransformer: {model_name!r} has no class token normalised by a final norm, "
                             "LIFT+'s feature (it has no class token, or pools by average and normalises after "
                             'pooling); use a class-token ViT such as vit_base_patch16_224.')
        if vit.dynamic_img_size:
            raise ValueError('TimmVisionTransformer: `dynamic_img_size=True` is not supported: light modules such as '
                             'visual prompts are sized for a fixed number of tokens; set `img_size` instead.')
        self.build_light_weight('timm_model', light_modules, num_classes, compact_state_dict, check_fingerprint)

    def add_light_modules(self, light_modules: Sequence[Union[dict, str]], num_classes: Optional[int]) -> None:
        """Wrap every block in a :class:`TimmTunableBlock` holding its light modules."""
        vit = self.timm_model
        inject_light_modules(vit.blocks, light_modules, TimmTunableBlock,
                             num_tokens=vit.patch_embed.num_patches + vit.num_prefix_tokens,
                             patch_size=tuple(vit.patch_embed.patch_size), num_classes=num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Patch, class and position embeddings and the pre-norm (timm's own steps): tokens of shape
        (batch, tokens, width)."""
        vit = self.timm_model
        expected = tuple(vit.patch_embed.img_size)
        if tuple(images.shape[-2:]) != expected:
            raise ValueError(f'TimmVisionTransformer: input images of size {tuple(images.shape[-2:])}, but timm\'s '
                             f'model was built for {expected}: resize or crop the inputs to that size in the data '
                             'pipeline, or build the backbone with `img_size` (timm resamples the pretrained '
                             'position embeddings).')
        return vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(images))))

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor]:
        tokens = self.embed(images)
        blocks = self.timm_model.blocks
        for index, block in enumerate(blocks):
            # Only the class token leaves the encoder: the last block computes nothing else after its attention.
            tokens = block(tokens, class_token_only=index == len(blocks) - 1)
        return (self.timm_model.norm(tokens[:, 0]), )


@MODELS.register_module()
class TimmResNet(ResNetLightModules, TimmFoundation):
    """A timm ResNet (LIFT+'s ImageNet-1k ``resnet50``, ``resnet101``, ``resnet152``), frozen, with LIFT+'s
    options for it.

    The output is the globally average-pooled feature of the last stage (2048-d for ResNet-50), timm's pre-logits
    feature. The options are those of :class:`CLIPResNet`: ``BitFit``, ``BatchNormTuning`` and
    ``FullFineTuning`` train weights in place, LIFT+ only those of the residual stages (``within=['layer1',
    'layer2', 'layer3', 'layer4']``, the default here; without ``within`` the stem trains too), and
    ``SSFOutput`` scales and shifts the pooled feature (LIFT+'s SSF for ResNets).

    Args:
        model_name (str): timm model name, optionally with a pretrained tag, e.g. ``'resnet50.a1_in1k'``.
        pretrained (bool | str): True for timm's weights of ``model_name``, a local checkpoint file, or False for
            fixed-seed random weights, see :class:`TimmFoundation`. Defaults to True.
        light_modules (Sequence[dict | str]): Configs of the options above, or their names. Defaults to LIFT+'s
            bias tuning of the residual stages, ``[dict(type='BitFit', within=['layer1', ..., 'layer4'])]``.
        num_classes (int, optional): Number of classes (unused by these options; accepted for uniform configs).
            Defaults to None.
        compact_state_dict (bool): Leave the frozen timm weights out of the state dict. Defaults to True.
        check_fingerprint (bool): Refuse checkpoints trained on other timm weights. Defaults to True.
        **kwargs: Further arguments of ``timm.create_model``.
    """
    MODEL_TYPE = ResNet
    EXAMPLES = ('resnet50', 'resnet101', 'resnet152')
    HOST_NAME = 'timm ResNets'

    def __init__(self,
                 model_name: str,
                 pretrained: Union[bool, str] = True,
                 light_modules: Sequence[Union[dict, str]] = (dict(type='BitFit', within=RESNET_STAGES), ),
                 num_classes: Optional[int] = None,
                 compact_state_dict: bool = True,
                 check_fingerprint: bool = True,
                 **kwargs) -> None:
        super().__init__(model_name, pretrained, **kwargs)
        self.build_light_weight('timm_model', light_modules, num_classes, compact_state_dict, check_fingerprint)

    def output_dims(self) -> int:
        return self.timm_model.num_features

    def light_module_host(self) -> nn.Module:
        """The module whose weights light modules act on."""
        return self.timm_model

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor]:
        # TIMMBackbone removed timm's pooling with its classifier; LIFT+ averages the last feature map.
        feature = self.timm_model.forward_features(images).mean(dim=(2, 3))
        return (self.at_site('output', feature, feature), )
