import torch
from torch import nn
from torch.nn import functional as F

from mmpretrain.registry import MODELS
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
    site = 'mlp_branch'

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        width = context.embed_dims
        hidden = resolve_bottleneck(bottleneck, context, 'AdaptFormer')
        self.ln = nn.LayerNorm(width)
        self.down_proj = nn.Linear(width, hidden)
        self.up_proj = nn.Linear(hidden, width)
        self.scale = nn.Parameter(torch.ones(1))
        # Same start as the reference: Kaiming-normal down projection, zero biases and up projection.
        nn.init.kaiming_normal_(self.down_proj.weight, a=5**0.5)
        nn.init.zeros_(self.down_proj.bias)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, site_input: torch.Tensor, site_output: torch.Tensor) -> torch.Tensor:
        delta = self.up_proj(F.relu(self.down_proj(self.ln(site_input))))
        return site_output + self.scale * delta
