from typing import Optional, Sequence, Tuple, Union

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS
from torch import nn

from ..utils import FrozenFoundationMixin, SharedCLIP
from .resnet_light_modules import ResNetLightModules


@MODELS.register_module()
class CLIPResNet(ResNetLightModules, FrozenFoundationMixin, BaseBackbone):
    """CLIP's ResNet image encoder (open_clip ``RN50``, ``RN101``, ...), frozen, with LIFT's options for it.

    The output is the attention-pooled feature, already in CLIP's joint space (1024-d for RN50), so heads
    initialised from text use the text features without a projection. The light-weight options LIFT offers for
    ResNets are bias tuning (``BitFit``), ``BatchNormTuning`` (tuned BatchNorm layers also update their running
    statistics in training), ``SSFOutput`` (scale and shift of the output feature) and ``FullFineTuning``; the
    host-tuning ones take ``within=['layer1', 'layer2', 'layer3', 'layer4']`` to leave the stem frozen, as LIFT+.

    Args:
        arch (str | dict): open_clip ResNet name (``'RN50'``, ``'RN101'``, ...) or model config. Defaults to
            ``'RN50'``.
        pretrained (str, optional): open_clip tag or local checkpoint path; None for fixed-seed random weights.
            A head with ``text_init`` takes its text features from this CLIP too. Defaults to ``'openai'``.
        quick_gelu (bool, optional): Whether the weights use QuickGELU (it only affects the text tower of ResNet
            CLIPs), as for :class:`CLIPVisionTransformer`. Defaults to None.
        light_modules (Sequence[dict | str]): Configs of the options above, or their names. Defaults to
            ``[dict(type='BitFit')]``.
        num_classes (int, optional): Number of classes (unused by these options; accepted for uniform configs).
            Defaults to None.
        compact_state_dict (bool): Leave the frozen weights out of the state dict. Defaults to True.
        check_fingerprint (bool): Refuse checkpoints trained on other CLIP weights. Defaults to True.
    """
    HOST_NAME = 'CLIP ResNets'

    def __init__(self,
                 arch: Union[str, dict] = 'RN50',
                 pretrained: Optional[str] = 'openai',
                 quick_gelu: Optional[bool] = None,
                 light_modules: Sequence[dict] = (dict(type='BitFit'), ),
                 num_classes: Optional[int] = None,
                 compact_state_dict: bool = True,
                 check_fingerprint: bool = True) -> None:
        super().__init__()
        # The whole CLIP stays loaded until a head has taken its text features from it (or the model is first
        # switched to train or eval mode, see ``train``), so that the weights are read once per run.
        self.shared_clip = SharedCLIP(arch, pretrained, quick_gelu, key_prefix='model.backbone.')
        visual = self.shared_clip.model.visual
        if not hasattr(visual, 'attnpool'):
            raise ValueError(f'`arch`={arch!r} is not a CLIP ResNet; use CLIPVisionTransformer for ViTs.')
        self.visual = visual
        self.build_light_weight('visual', light_modules, num_classes, compact_state_dict, check_fingerprint)

    def output_dims(self) -> int:
        return self.visual.output_dim

    def light_module_host(self) -> nn.Module:
        """The module whose weights light modules act on."""
        return self.visual

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor]:
        feature = self.visual(images)
        return (self.at_site('output', feature, feature), )
