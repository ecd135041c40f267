from typing import Optional, Sequence

from mmengine.model.weight_init import PretrainedInit
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.registry import MODELS
from ..peft import VPTDeep, inject_light_modules, light_module_cfg
from ..peft.mmpretrain_block import MMPretrainTunableBlock
from ..utils import FrozenFoundationMixin, freeze, make_state_dict_compact

# Output types that read the patch tokens back as a grid, which appended prompt tokens would break.
GRID_OUTPUTS = ('featmap', 'avg_featmap')


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
        freeze(self)
        init_cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        # Without pretrained weights the foundation is random and no other process can rebuild it.
        pretrained = any(cfg and cfg.get('type') in ('Pretrained', PretrainedInit) for cfg in init_cfgs)
        make_state_dict_compact(self, '', compact=compact_state_dict, check_fingerprint=check_fingerprint,
                                source_key='init_cfg', reproducible=pretrained)
        num_tokens = self.patch_resolution[0] * self.patch_resolution[1] + self.num_extra_tokens
        inject_light_modules(self.layers, light_modules, MMPretrainTunableBlock, num_tokens=num_tokens,
                             patch_size=tuple(self.patch_embed.projection.kernel_size), num_classes=num_classes)
        self.finish_construction(num_classes)

    def train(self, mode: bool = True) -> 'LightVisionTransformer':
        """Only light modules follow ``mode``; the frozen ViT always runs in eval mode."""
        super().train(False)
        for layer in self.layers:
            layer.light_modules.train(mode)
        return self
