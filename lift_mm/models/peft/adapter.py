"""The adapter family: a bottleneck MLP added to the MLP branch, in series (Adapter) or in parallel (AdaptFormer)."""
import math
from typing import Union

import torch
from mmpretrain.registry import MODELS
from torch import nn
from torch.nn import functional as F

from .base import BlockContext, LightModule, resolve_bottleneck

# Initialisations of the down projection, both with negative slope sqrt(5): LIFT's Kaiming-normal and LIFT+'s
# Kaiming-uniform (the latter is also what nn.Linear starts from).
DOWN_INITS = {'kaiming_normal': nn.init.kaiming_normal_, 'kaiming_uniform': nn.init.kaiming_uniform_}
# LIFT+ sizes adapters (one bottleneck MLP of 2 C r weights per block) by K / 2L, as LIFT does but over the
# entry's blocks: about K C trained weights in all, those of the classifier.
ADAPTER_SIZE_RULES = {'auto': 2, 'auto_lift_plus': 2}


class AdapterMLP(nn.Module):
    """``up(relu(down(ln(x))))`` with ``up`` starting at zero, the core of Adapter and AdaptFormer.

    Args:
        width (int): Input and output width.
        hidden (int): Bottleneck width.
        down_init (str): Initialisation of the down projection's weight, a key of ``DOWN_INITS``.
            Defaults to ``'kaiming_normal'``.
    """

    def __init__(self, width: int, hidden: int, down_init: str = 'kaiming_normal') -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.down_proj = nn.Linear(width, hidden)
        self.up_proj = nn.Linear(hidden, width)
        # Zero biases and a zero up projection: the module adds nothing at the start.
        DOWN_INITS[down_init](self.down_proj.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down_proj.bias)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_proj(F.relu(self.down_proj(self.ln(x))))


def build_adapter_mlp(context: BlockContext, bottleneck: Union[int, str], down_init: str, kind: str) -> AdapterMLP:
    """The bottleneck MLP of an adapter kind, its width and initialisation checked.

    Raises:
        ValueError: If ``down_init`` is not a key of ``DOWN_INITS`` or the bottleneck is invalid.
    """
    if down_init not in DOWN_INITS:
        raise ValueError(f'{kind}: `down_init`={down_init!r} must be one of {list(DOWN_INITS)}.')
    return AdapterMLP(context.embed_dims, resolve_bottleneck(bottleneck, context, kind, ADAPTER_SIZE_RULES), down_init)


@MODELS.register_module()
class Adapter(LightModule):
    """Sequential bottleneck adapter after the MLP branch, with a residual connection.

    From "Parameter-Efficient Transfer Learning for NLP" (Houlsby et al., ICML 2019). The MLP branch output ``y``
    becomes ``y + up(relu(down(ln(y))))`` before it is added to the residual stream; ``up`` starts at zero.

    Args:
        context (BlockContext): Sizes of the host transformer.
        bottleneck (int | str): Hidden width, ``'auto'`` for LIFT's rule ``2 ** max(0, floor(log2(K / 2L)))``
            (L the encoder's blocks) or ``'auto_lift_plus'`` for LIFT+'s (the same with L the blocks of
            ``blocks``). Defaults to ``'auto'``.
        down_init (str): ``'kaiming_normal'`` (LIFT's) or ``'kaiming_uniform'`` (LIFT+'s), both with negative
            slope sqrt(5). Defaults to ``'kaiming_normal'``.
    """
    site_order = 2

    def __init__(self, context: BlockContext, bottleneck='auto', down_init: str = 'kaiming_normal') -> None:
        super().__init__()
        self.bottleneck = build_adapter_mlp(context, bottleneck, down_init, type(self).__name__)

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
        bottleneck (int | str): Hidden width, ``'auto'`` for LIFT's rule ``2 ** max(0, floor(log2(K / 2L)))``
            (L the encoder's blocks) or ``'auto_lift_plus'`` for LIFT+'s (the same with L the blocks of
            ``blocks``). Defaults to ``'auto'``.
        down_init (str): ``'kaiming_normal'`` (LIFT's) or ``'kaiming_uniform'`` (LIFT+'s), both with negative
            slope sqrt(5). Defaults to ``'kaiming_normal'``.
    """
    site_order = 3

    def __init__(self, context: BlockContext, bottleneck='auto', down_init: str = 'kaiming_normal') -> None:
        super().__init__()
        self.bottleneck = build_adapter_mlp(context, bottleneck, down_init, type(self).__name__)
        self.scale = nn.Parameter(torch.ones(1))

    def sites(self) -> dict:
        return {'mlp_branch': self.forward}

    def forward(self, stream: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        return branch + self.scale * self.bottleneck(stream)
