"""The adapter family: a bottleneck MLP added to the MLP branch, in series (Adapter) or in parallel (AdaptFormer)."""
import math

import torch
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn import functional as F

from .base import BlockContext, LightModule, resolve_bottleneck


class AdapterMLP(nn.Module):
    """``up(relu(down(ln(x))))`` with ``up`` starting at zero, the core of Adapter and AdaptFormer.

    Args:
        width (int): Input and output width.
        hidden (int): Bottleneck width.
    """

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.down_proj = nn.Linear(width, hidden)
        self.up_proj = nn.Linear(hidden, width)
        # LIFT's start: Kaiming-normal down projection, zero biases and zero up projection.
        nn.init.kaiming_normal_(self.down_proj.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down_proj.bias)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_proj(F.relu(self.down_proj(self.ln(x))))


@MODELS.register_module()
class Adapter(LightModule):
    """Sequential bottleneck adapter after the MLP branch, with a residual connection.

    From "Parameter-Efficient Transfer Learning for NLP" (Houlsby et al., ICML 2019). The MLP branch output ``y``
    becomes ``y + up(relu(down(ln(y))))`` before it is added to the residual stream; ``up`` starts at zero.

    Args:
        context (BlockContext): Sizes of the host transformer.
        bottleneck (int | str): Hidden width, or ``'auto'`` for LIFT's rule. Defaults to ``'auto'``.
    """
    site_order = 2

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        self.bottleneck = AdapterMLP(context.embed_dims, resolve_bottleneck(bottleneck, context, 'Adapter'))

    def sites(self) -> dict:
        return {'mlp_branch': self.forward}

    def forward(self, stream: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return branch + self.bottleneck(branch)


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
    site_order = 3

    def __init__(self, context: BlockContext, bottleneck='auto') -> None:
        super().__init__()
        self.bottleneck = AdapterMLP(context.embed_dims, resolve_bottleneck(bottleneck, context, 'AdaptFormer'))
        self.scale = nn.Parameter(torch.ones(1))

    def sites(self) -> dict:
        return {'mlp_branch': self.forward}

    def forward(self, stream: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return branch + self.scale * self.bottleneck(stream)
