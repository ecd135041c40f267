import torch
from torch import nn

from mmpretrain.registry import MODELS
from .bottleneck import Bottleneck
from .light_module import BlockContext, LightModule, resolve_bottleneck


@MODELS.register_module()
class AdaptFormer(LightModule):
    """AdaptFormer, a scaled bottleneck parallel to the MLP branch.

    From "AdaptFormer: Adapting Vision Transformers for Scalable Visual Recognition" (Chen et al., NeurIPS 2022),
    LIFT's default light module. With ``x`` the residual stream entering the MLP branch, the block computes
    ``x + mlp(ln_2(x)) + s * up(relu(down(ln(x))))``, where ``ln`` is this module's own LayerNorm and ``s`` a
    learnable scalar starting at 1. ``up`` starts at zero, so an untrained model equals the frozen one.

    Args:
        context (BlockContext): Sizes of the host transformer.
        bottleneck (int | str): Hidden width, or ``'auto'`` for LIFT's rule
            ``2 ** max(0, floor(log2(K / 2L)))``. Defaults to ``'auto'``.
    """
    order = 3

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        self.bottleneck = Bottleneck(context.embed_dims, resolve_bottleneck(bottleneck, context, 'AdaptFormer'))
        self.scale = nn.Parameter(torch.ones(1))

    def hooks(self) -> dict:
        return {'mlp_branch': self.forward}

    def forward(self, stream: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return branch + self.scale * self.bottleneck(stream)
