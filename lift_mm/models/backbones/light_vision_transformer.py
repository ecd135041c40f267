from typing import Optional, Sequence, Union

from mmengine.model.weight_init import PretrainedInit
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.registry import MODELS
from torch import nn

from ..peft import VPTDeep, inject_light_modules
from ..peft.base import BlockParts, TunableBlock, light_module_cfg
from ..utils import FrozenFoundationMixin

# Output types that read the patch tokens back as a grid, which appended prompt tokens would break.
GRID_OUTPUTS = ('featmap', 'avg_featmap')


class MMPretrainTunableBlock(TunableBlock):
    """:class:`TunableBlock` for mmpretrain's ``TransformerEncoderLayer`` (ViT, DeiT, ...).

    The host's dropouts and drop-path are not applied: its weights are frozen and run as in eval mode.
    """

    def __init__(self, block: nn.Module) -> None:
        if getattr(block.attn, 'v_shortcut', False) or not hasattr(block.ffn, 'layers'):
            raise ValueError('Light modules support mmpretrain transformer layers with a plain attention (no '
                             'v_shortcut) and a two-linear FFN (not SwiGLU).')
        super().__init__(block)

    def parts(self) -> BlockParts:
        block = self.block
        return BlockParts(
            ln_1=block.ln1, qkv_weight=block.attn.qkv.weight, qkv_bias=block.attn.qkv.bias,
            out_proj=block.attn.proj, num_heads=block.attn.num_heads, ls_1=block.attn.gamma1, ln_2=block.ln2,
            fc1=block.ffn.layers[0][0], act=block.ffn.layers[0][1], fc2=block.ffn.layers[1], ls_2=block.ffn.gamma2)


@MODELS.register_module()
class LightVisionTransformer(FrozenFoundationMixin, VisionTransformer):
    """mmpretrain's ``VisionTransformer``, frozen, with lift_mm's light modules injected into its layers.

    Turn any mmpretrain ViT config into a light-weight fine-tuning one by changing ``type`` to
    ``'LightVisionTransformer'`` and adding ``light_modules``. The pretrained weights of ``init_cfg``
    (``dict(type='Pretrained', checkpoint=...)``) are loaded here, in ``__init__``, before the weights are frozen
    and the light modules injected, so test runs and DDP see them.

    Args:
        light_modules (Sequence[dict | str]): Light module configs, as for :class:`CLIPVisionTransformer`.
            Defaults to LIFT's AdaptFormer.
        num_classes (int, optional): Number of classes, for ``'auto'`` sizes. Defaults to None.
        compact_state_dict (bool): Leave the frozen weights out of the state dict. Without pretrained weights in
            ``init_cfg`` they are random, so no other process could rebuild them, and they are kept. Defaults to
            True.
        check_fingerprint (bool): Refuse checkpoints trained on other pretrained weights. Defaults to True.
        **kwargs: Arguments of mmpretrain's ``VisionTransformer`` (``arch``, ``img_size``, ``patch_size``,
            ``out_type``, ``init_cfg``, ...).
    """

    def __init__(self,
                 light_modules: Sequence[dict] = (dict(type='AdaptFormer'), ),
                 num_classes: Optional[int] = None,
                 compact_state_dict: bool = True,
                 check_fingerprint: bool = True,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if self.out_type in GRID_OUTPUTS and any(
                issubclass(light_module_cfg(entry)[1], VPTDeep) for entry in light_modules):
            raise ValueError(f"Visual prompts need out_type='cls_token' or 'raw', not {self.out_type!r}: appended "
                             'prompt tokens cannot be read back as a feature map.')
        self.init_weights()
        init_cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        # Without pretrained weights the foundation is random and no other process can rebuild it.
        pretrained = any(cfg and cfg.get('type') in ('Pretrained', PretrainedInit) for cfg in init_cfgs)
        self.build_light_weight('', light_modules, num_classes, compact_state_dict, check_fingerprint,
                                source_key='init_cfg', reproducible=pretrained)

    def add_light_modules(self, light_modules: Sequence[Union[dict, str]], num_classes: Optional[int]) -> None:
        """Wrap every transformer layer in an :class:`MMPretrainTunableBlock` holding its light modules."""
        num_tokens = self.patch_resolution[0] * self.patch_resolution[1] + self.num_extra_tokens
        inject_light_modules(self.layers, light_modules, MMPretrainTunableBlock, num_tokens=num_tokens,
                             patch_size=tuple(self.patch_embed.projection.kernel_size), num_classes=num_classes)
